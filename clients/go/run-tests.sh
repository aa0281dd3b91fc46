#!/usr/bin/env bash
# Runs the Go client's tests against the real server binary
# (target/release/liveproc), after checking the generated code is current.
set -euo pipefail
cd "$(dirname "$0")"
source ../../scripts/toolchain.sh
command -v go >/dev/null 2>&1 || missing_toolchain "the Go client tests: the go tool is not installed"
bash generate.sh --check
go vet ./...
LIVEPROC_BIN="$(cd ../.. && pwd)/target/release/liveproc" go test -count=1 ./...
