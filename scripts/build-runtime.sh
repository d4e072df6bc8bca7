#!/usr/bin/env bash
# Build the Python runtime that sandboxed notebook sessions run (see enclave_api/hub/spawner.py).
#
#   scripts/build-runtime.sh [RUNTIME_DIR]      (default: $ENCLAVE_RUNTIME_DIR or /opt/enclave-runtime)
#
# A venv of Debian's own /usr/bin/python3 (never the project's .venv, which the sandbox uid cannot read)
# with JupyterLab, jupyterhub-singleuser, the analysis stack and the enclave notebook client, installed
# without the service's heavy dependencies. Root-owned and world-readable; the sandbox mounts it
# read-only. Idempotent: each of its two layers (third-party packages; this project + the lock-down
# config) is rebuilt only when the hash of its inputs changed, recorded in a stamp file.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNTIME="${1:-${ENCLAVE_RUNTIME_DIR:-/opt/enclave-runtime}}"
PYTHON="${ENCLAVE_RUNTIME_PYTHON:-/usr/bin/python3}"

# Top-level packages of the session runtime, pinned. The client's own dependencies (httpx, polars,
# pyarrow) match constraints.txt where Debian's Python 3.11 allows.
PACKAGES=(
  jupyterhub==6.1.1
  jupyterlab==4.6.6
  jupyter-server==2.21.1
  ipykernel==7.4.0
  httpx==0.28.1
  polars==1.36.1
  pyarrow==26.0.1
  numpy==2.4.6
  pandas==2.3.3
  scikit-learn==1.9.1
  scipy==1.17.1
  matplotlib==3.11.2
  lifelines==0.30.3
  statsmodels==0.15.0
)

if [[ $(id -u) -ne 0 && ! -w "$(dirname "$RUNTIME")" ]]; then
  echo "build-runtime: not root and $(dirname "$RUNTIME") is not writable: notebook sessions stay off" >&2
  exit 0
fi
umask 022

sha() { sha256sum | cut -d' ' -f1; }
python_version="$("$PYTHON" -c 'import sys; print(sys.version)')"
# Bump when the way the third-party layer is built changes.
RECIPE=2
deps_hash="$( { printf '%s\n' "$RECIPE" "$python_version" "${PACKAGES[@]}"; } | sha)"
# The project layer: every file the wheel ships, plus the lock-down config and this script.
project_hash="$(
  cd "$ROOT"
  { find enclave_api privacy audit -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
      | sort -z | xargs -0 sha256sum
    sha256sum pyproject.toml scripts/build-runtime.sh; } | sha
)"

if [[ -f "$RUNTIME/.deps-stamp" && "$(cat "$RUNTIME/.deps-stamp")" == "$deps_hash" ]]; then
  deps_ok=1
else
  deps_ok=0
fi
if ((deps_ok)) && [[ -f "$RUNTIME/.project-stamp" && "$(cat "$RUNTIME/.project-stamp")" == "$project_hash" ]]; then
  echo "build-runtime: $RUNTIME is up to date"
  exit 0
fi

if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "build-runtime: $PYTHON lacks venv/ensurepip (Debian package python3-venv)" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi

if ((!deps_ok)); then
  echo "build-runtime: building $RUNTIME (third-party packages; a few minutes the first time)"
  rm -rf "$RUNTIME"
  "$PYTHON" -m venv "$RUNTIME"
  "$RUNTIME/bin/python" -m pip install --quiet --upgrade pip
  "$RUNTIME/bin/python" -m pip install --quiet "${PACKAGES[@]}"
  # rfc3987-syntax (via jupyter-events -> jsonschema[format-nongpl]) compiles a Lark grammar on
  # import: 2.7 s of every server start. Without it jsonschema just skips the "iri" formats.
  "$RUNTIME/bin/python" -m pip uninstall --quiet --yes rfc3987-syntax lark
  echo "$deps_hash" >"$RUNTIME/.deps-stamp"
fi

echo "build-runtime: installing the enclave client and the session lock-down into $RUNTIME"
# --no-deps: the client needs only httpx, polars and pyarrow (above), not the service's stack.
"$RUNTIME/bin/python" -m pip install --quiet --no-deps --force-reinstall --no-compile "$ROOT"
"$RUNTIME/bin/python" -m compileall -q "$RUNTIME/lib" >/dev/null || true
config="$RUNTIME/etc/jupyter"
mkdir -p "$config/labconfig/page_config.d"
lockdown="$ROOT/enclave_api/hub/lockdown"
# jupyter_server_config.json: only jpserver_extensions are merged from .d directories, so the file
# itself (the environment level of the config path, above the user level).
install -m 0644 "$lockdown/jupyter_server_config.json" "$config/"
install -m 0644 "$lockdown/labconfig/page_config.d/enclave-lockdown.json" "$config/labconfig/page_config.d/"
# The import the lock-down relies on must work with nothing but the runtime.
"$RUNTIME/bin/python" -I -c 'import enclave_api.hub.lockdown, enclave_api.client'
chmod -R a+rX,go-w "$RUNTIME"
echo "$project_hash" >"$RUNTIME/.project-stamp"
echo "build-runtime: $RUNTIME ready"
