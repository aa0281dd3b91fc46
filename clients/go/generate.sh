#!/usr/bin/env bash
# Regenerates the Go code of the API from ../../proto (`make clients`).
# With --check, generates into a temporary folder and fails if the
# committed code differs. Installs the pinned protoc plugins if missing;
# protoc is the project's pinned one (scripts/protoc.sh).
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$(go env GOPATH)/bin:$PATH"
command -v protoc-gen-go >/dev/null || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
command -v protoc-gen-go-grpc >/dev/null || go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash ../../scripts/protoc.sh -I ../../proto \
  --plugin=protoc-gen-go="$(command -v protoc-gen-go)" \
  --plugin=protoc-gen-go-grpc="$(command -v protoc-gen-go-grpc)" \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  ../../proto/liveproc/v1/*.proto
if [ "${1:-}" = "--check" ]; then
  if ! diff -r "$out/liveproc/v1" liveprocv1; then
    echo "clients/go: generated code is out of date; run: make clients" >&2
    exit 1
  fi
  echo "clients/go: generated code is up to date"
else
  rm -f liveprocv1/*.pb.go
  cp "$out"/liveproc/v1/*.go liveprocv1/
fi
