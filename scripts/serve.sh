#!/usr/bin/env bash
# Install (first run only) and start the sidecar with working defaults:
# ZeroMQ tcp://127.0.0.1:5555, HTTP 127.0.0.1:8765, SQLite ./sidecar.sqlite, no API key needed.
# Extra arguments go to `sidecar serve` (e.g. --config sidecar.toml, written by `sidecar init`).
# Later starts install nothing and need no network while constraints.txt and pyproject.toml are
# unchanged (scripts/bootstrap.sh keeps a stamp in .venv). The exit code is the sidecar's: non-zero
# when it cannot start (a busy port, an invalid configuration), so a supervisor restarts it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/sidecar serve "$@"
