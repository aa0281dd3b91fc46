#!/usr/bin/env bash
# Runs the Python client's tests against the real server binary
# (target/debug/liveproc), in a virtualenv under target/py.
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)
if ! command -v python3 >/dev/null 2>&1; then
  echo "################################################################" >&2
  echo "### SKIPPING the Python client tests: python3 is not installed ###" >&2
  echo "################################################################" >&2
  exit 0
fi
venv="$repo/target/py"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
PYTHON="$venv/bin/python" bash generate.sh --check
PYTHONPATH=src LIVEPROC_BIN="$repo/target/debug/liveproc" "$venv/bin/python" -m pytest -q tests
