#!/usr/bin/env bash
# Create .venv (if needed) and install the sidecar with pinned versions, only when needed.
#   scripts/bootstrap.sh          runtime only
#   scripts/bootstrap.sh dev      runtime + test tools and oracles (pytest, hypothesis, TA-Lib, backtesting.py)
#                                 + the `scale` extra (Dask: parameter sweeps), which its tests use
#   scripts/bootstrap.sh --check [dev]   exit 0 if installed and current, 1 if an install is due
#   scripts/bootstrap.sh --mark-installed [dev]   record .venv as current (after installing by hand)
#
# After a successful install a stamp (.venv/.sidecar-install) records a hash of constraints.txt,
# pyproject.toml, the extra and the Python version. While that hash is unchanged nothing is
# installed and no package index is contacted: a second start works offline and takes well under
# a second. Changing constraints.txt or pyproject.toml (or asking for `dev` after a runtime-only
# install) installs again. SIDECAR_BOOTSTRAP_FORCE=1 installs regardless.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=install
case "${1:-}" in
  --check) mode=check; shift ;;
  --mark-installed) mode=mark; shift ;;
esac
extra="${1:-}"
case "$extra" in
  ""|dev) ;;
  *) echo "bootstrap: unknown extra '$extra' (expected nothing or 'dev')" >&2; exit 2 ;;
esac
stamp=.venv/.sidecar-install

# The hash of what an install of $1 ("" or "dev") would install with this venv's Python.
install_hash() {
  .venv/bin/python - "$1" <<'PY'
import hashlib
import sys

h = hashlib.sha256()
for name in ("constraints.txt", "pyproject.toml"):
    with open(name, "rb") as fh:
        h.update(name.encode() + b"\0" + fh.read() + b"\0")
h.update(("extra=" + sys.argv[1] + "\0python=" + sys.version).encode())
print(h.hexdigest())
PY
}

# Up to date: the venv exists and the stamp holds the current hash for this extra.
up_to_date() {
  [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "${SIDECAR_BOOTSTRAP_FORCE:-0}" != "1" ] &&
    grep -qxF "$(install_hash "$extra")" "$stamp"
}

write_stamp() {
  {
    install_hash "$extra"
    # A dev install satisfies a runtime-only request too.
    if [ "$extra" = "dev" ]; then install_hash ""; fi
  } > "$stamp.tmp"
  mv -f "$stamp.tmp" "$stamp"
}

if [ "$mode" = mark ]; then
  [ -x .venv/bin/python ] || { echo "bootstrap: no .venv to mark" >&2; exit 1; }
  write_stamp
  echo "bootstrap: .venv recorded as installed (${extra:-runtime})"
  exit 0
fi
if up_to_date; then
  if [ "$mode" = check ]; then echo "bootstrap: up to date (${extra:-runtime})"; fi
  exit 0
fi
if [ "$mode" = check ]; then
  echo "bootstrap: install needed (${extra:-runtime}): .venv missing, or constraints.txt / pyproject.toml changed since the last install"
  exit 1
fi

py=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    py="$candidate"; break
  fi
done

if [ ! -x .venv/bin/python ]; then
  [ -n "$py" ] || { echo "bootstrap: Python 3.11+ is required" >&2; exit 1; }
  echo "bootstrap: creating .venv with $py"
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

rm -f "$stamp"  # an interrupted install must not look complete
echo "bootstrap: installing the sidecar${extra:+ with [$extra]} and the exact versions in constraints.txt into .venv"
echo "bootstrap: (only now: later starts skip this until constraints.txt or pyproject.toml change)"
# pip itself: only when older than 24 (no --upgrade, so a current pip needs no package index).
.venv/bin/python -m pip install -q --disable-pip-version-check "pip>=24"
target="."
[ "$extra" = "dev" ] && target=".[dev,scale]"
# Progress: pip's own lines (Collecting ..., Downloading ... with a bar on a terminal).
.venv/bin/python -m pip install --disable-pip-version-check \
  -c constraints.txt -e "$target"
write_stamp
echo "bootstrap: done"
