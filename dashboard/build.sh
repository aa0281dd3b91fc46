#!/usr/bin/env bash
# Builds the dashboard into dashboard/dist (embedded in the server binary
# by src/http/dashboard.rs): installs the pinned npm packages where they
# are missing or stale (the dashboard's, and the TypeScript client's whose
# browser entry it bundles), type-checks, and bundles with esbuild.
set -euo pipefail
cd "$(dirname "$0")"
if ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  echo "error: the dashboard needs node and npm: run make deps" >&2
  exit 1
fi
install() {
  # npm ci only when package-lock.json changed since the last install.
  if [ ! -f "$1/node_modules/.package-lock.json" ] ||
     [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    (cd "$1" && npm ci --no-audit --no-fund --silent)
  fi
}
install ../clients/typescript
install .
npm run --silent check
npm run --silent build
