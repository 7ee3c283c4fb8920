#!/usr/bin/env bash
# Install everything needed and run every test: Python suites and the MQL5 modules under g++.
set -euo pipefail
cd "$(dirname "$0")/.."
# System packages the tests use: g++ (the MQL5 modules) and Chromium (the backtest report is
# opened headless). Installed through apt-get when missing and running as root.
missing=()
command -v g++ >/dev/null || missing+=(g++)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)  # promtool + prometheus (tests/monitoring)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)  # amtool + alertmanager
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test: ${missing[*]} required (sudo apt-get install ${missing[*]})" >&2; exit 1
  fi
fi
bash scripts/bootstrap.sh dev
.venv/bin/ruff check sidecar tests bench scripts
.venv/bin/ruff format --check sidecar tests bench scripts
# pytest exits 5 when it collected nothing: that is a failure here too.
exec .venv/bin/python -m pytest "$@"
