#!/usr/bin/env bash
# Runs the Python client's tests against the real server binary
# (target/release/liveproc), in a virtualenv under target/py.
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)
source ../../scripts/toolchain.sh
command -v python3 >/dev/null 2>&1 || missing_toolchain "the Python client tests: python3 is not installed"
python3 -c "import venv, ensurepip" 2>/dev/null ||
  missing_toolchain "the Python client tests: python3 cannot make a venv (python3-venv)"
venv="$repo/target/py"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
PYTHON="$venv/bin/python" bash generate.sh --check
PYTHONPATH=src LIVEPROC_BIN="$repo/target/release/liveproc" "$venv/bin/python" -m pytest -q tests
