#!/usr/bin/env bash
# Install everything needed and run every test: Python suites and the MQL5 modules under g++.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v g++ >/dev/null || {
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq g++ >/dev/null
  else
    echo "test: g++ is required for tests/mql5 (sudo apt-get install g++)" >&2; exit 1
  fi
}
bash scripts/bootstrap.sh dev
.venv/bin/ruff check sidecar tests bench scripts
.venv/bin/ruff format --check sidecar tests bench scripts
# pytest exits 5 when it collected nothing: that is a failure here too.
exec .venv/bin/python -m pytest "$@"
