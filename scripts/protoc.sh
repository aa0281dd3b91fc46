#!/usr/bin/env bash
# The one protoc the project uses to generate client code: the compiler
# bundled in the pinned grpcio-tools (clients/python/requirements-dev.txt),
# with the well-known types that ship beside it. No system protoc or
# /usr/include tree is needed. The venv lives in target/py.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/target/py"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import grpc_tools' 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$repo/clients/python/requirements-dev.txt"
fi
include=$("$venv/bin/python" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
exec "$venv/bin/python" -m grpc_tools.protoc -I "$include" "$@"
