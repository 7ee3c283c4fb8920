#!/usr/bin/env bash
# Install (first run) and start the sidecar with working defaults:
# ZeroMQ tcp://127.0.0.1:5555, HTTP 127.0.0.1:8765, SQLite ./sidecar.sqlite, no API key needed.
# Extra arguments go to `sidecar serve` (e.g. --config configs/sidecar.example.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/sidecar serve "$@"
