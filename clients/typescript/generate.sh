#!/usr/bin/env bash
# Regenerates the TypeScript code of the API from ../../proto
# (`make clients`): src/gen for Node.js (ts-proto messages, grpc-js
# services) and src/web/gen for browsers (protobuf-es messages and service
# descriptors, called over grpc-web with Connect). With --check, generates
# into a temporary folder and fails if the committed code differs.
set -euo pipefail
cd "$(dirname "$0")"
[ -x node_modules/.bin/protoc-gen-ts_proto ] && [ -x node_modules/.bin/protoc-gen-es ] ||
  npm ci --no-audit --no-fund --silent
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
protos=(../../proto/liveproc/v1/*.proto proto/google/rpc/status.proto)
mkdir -p "$out/node" "$out/web"
bash ../../scripts/protoc.sh --plugin="$PWD/node_modules/.bin/protoc-gen-ts_proto" \
  --ts_proto_out="$out/node" \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,env=node,useDate=false,forceLong=number \
  -I ../../proto -I proto "${protos[@]}"
bash ../../scripts/protoc.sh --plugin="$PWD/node_modules/.bin/protoc-gen-es" \
  --es_out="$out/web" --es_opt=target=ts,import_extension=none \
  -I ../../proto -I proto "${protos[@]}"
if [ "${1:-}" = "--check" ]; then
  if ! diff -r "$out/node" src/gen || ! diff -r "$out/web" src/web/gen; then
    echo "clients/typescript: generated code is out of date; run: make clients" >&2
    exit 1
  fi
  echo "clients/typescript: generated code is up to date"
else
  rm -rf src/gen src/web/gen
  mkdir -p src/gen src/web/gen
  cp -r "$out/node"/. src/gen/
  cp -r "$out/web"/. src/web/gen/
fi
