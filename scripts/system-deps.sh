#!/usr/bin/env bash
# Install the Debian packages the enclave needs when they are missing (root only).
set -euo pipefail
need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
# The notebook sandbox: bubblewrap, nftables, and Debian's python3 venv for the session runtime.
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v nft >/dev/null 2>&1 || need+=(nftables)
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v npm >/dev/null 2>&1 || need+=(npm)
# OCR of figures at egress (PNG/JPEG outputs are scanned for identifiers), English and Korean.
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr)
[[ -e /usr/share/tesseract-ocr/5/tessdata/kor.traineddata ]] || need+=(tesseract-ocr-kor)
# The portal's tests drive Debian's Chromium with Playwright (no browser is downloaded).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ((${#need[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "missing Debian packages: ${need[*]} (run as root or install them; PostgreSQL tests, OCR and the portal's browser tests need them)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
