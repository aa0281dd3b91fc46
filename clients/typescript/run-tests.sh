#!/usr/bin/env bash
# Builds the TypeScript client and runs its tests against the real server
# binary (target/debug/liveproc), after checking the generated code.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "######################################################################" >&2
  echo "### SKIPPING the TypeScript client tests: node/npm are not installed ###" >&2
  echo "######################################################################" >&2
  exit 0
fi
npm ci --no-audit --no-fund --silent
bash generate.sh --check
LIVEPROC_BIN="$(cd ../.. && pwd)/target/debug/liveproc" npm test --silent
