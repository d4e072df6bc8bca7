#!/usr/bin/env bash
# Print the newest usable Python ≥ 3.11 (3.12 preferred: the Helm tests need it).
# pyenv shims can exist for interpreters that are not selected, so each candidate is run once.
for candidate in python3.12 /root/.pyenv/versions/3.12*/bin/python3.12 python3.13 python3.11 python3; do
  if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
    command -v "$candidate" 2>/dev/null || echo "$candidate"
    exit 0
  fi
done
echo "no Python 3.11+ found" >&2
exit 1
