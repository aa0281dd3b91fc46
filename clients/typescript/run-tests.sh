#!/usr/bin/env bash
# Builds the TypeScript client and runs its tests against the real server
# binary (target/release/liveproc), after checking the generated code.
set -euo pipefail
cd "$(dirname "$0")"
source ../../scripts/toolchain.sh
{ command -v node && command -v npm; } >/dev/null 2>&1 ||
  missing_toolchain "the TypeScript client tests: node/npm are not installed"
npm ci --no-audit --no-fund --silent
bash generate.sh --check
LIVEPROC_BIN="$(cd ../.. && pwd)/target/release/liveproc" npm test --silent
