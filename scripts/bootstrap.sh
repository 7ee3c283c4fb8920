#!/usr/bin/env bash
# Create .venv (if needed) and install the sidecar with pinned versions.
#   scripts/bootstrap.sh        runtime only
#   scripts/bootstrap.sh dev    runtime + test tools and oracles (pytest, hypothesis, TA-Lib, backtesting.py)
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"

py=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    py="$candidate"; break
  fi
done
[ -n "$py" ] || { echo "bootstrap: Python 3.11+ is required" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  if ! "$py" -m venv .venv 2>/dev/null; then
    # Debian ships venv/ensurepip separately.
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      rm -rf .venv && "$py" -m venv .venv
    else
      echo "bootstrap: '$py -m venv' failed; install python3-venv (sudo apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
if [ "$extra" = "dev" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e .
fi
