#!/usr/bin/env bash
# Regenerates the Python code of the API from ../../proto (`make clients`).
# With --check, generates into a temporary folder and fails if the
# committed code differs (CI).
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
out=src
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
else
  rm -rf "$out/liveproc"
fi
"$python" -m grpc_tools.protoc -I ../../proto \
  --python_out="$out" --grpc_python_out="$out" --pyi_out="$out" \
  ../../proto/liveproc/v1/*.proto
touch "$out/liveproc/__init__.py" "$out/liveproc/v1/__init__.py"
if [ "${1:-}" = "--check" ]; then
  if ! diff -r -x __pycache__ "$out/liveproc" src/liveproc; then
    echo "clients/python: generated code is out of date; run: make clients" >&2
    exit 1
  fi
  echo "clients/python: generated code is up to date"
fi
