#!/usr/bin/env bash
# Regenerates the TypeScript code of the API (ts-proto, grpc-js services)
# from ../../proto into src/gen (`make clients`). With --check, generates
# into a temporary folder and fails if the committed code differs.
set -euo pipefail
cd "$(dirname "$0")"
[ -x node_modules/.bin/protoc-gen-ts_proto ] || npm ci --no-audit --no-fund --silent
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash ../../scripts/protoc.sh --plugin="$PWD/node_modules/.bin/protoc-gen-ts_proto" \
  --ts_proto_out="$out" \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,env=node,useDate=false,forceLong=number \
  -I ../../proto -I proto \
  ../../proto/liveproc/v1/*.proto proto/google/rpc/status.proto
if [ "${1:-}" = "--check" ]; then
  if ! diff -r "$out" src/gen; then
    echo "clients/typescript: generated code is out of date; run: make clients" >&2
    exit 1
  fi
  echo "clients/typescript: generated code is up to date"
else
  rm -rf src/gen
  mkdir -p src/gen
  cp -r "$out"/. src/gen/
fi
