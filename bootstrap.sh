#!/usr/bin/env bash
# Runs the sidecar, like the sample Coze's docs ship: `bash bootstrap.sh`, then open
# http://127.0.0.1:8080. Safe to run again: it installs only when the lock file changed.
set -euo pipefail
cd "$(dirname "$0")"

fail () { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || fail "Node.js is not installed; install Node.js 20.19 or newer (https://nodejs.org)"
node -e '
  const [major, minor] = process.versions.node.split(".").map(Number)
  if (major < 20 || (major === 20 && minor < 19)) process.exit(1)
' || fail "Node.js $(node --version) is too old; install Node.js 20.19 or newer"
command -v npm >/dev/null || fail "npm is not installed; it comes with Node.js"

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
echo "bootstrap: building"
npm run --silent build

export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8080}"
echo "bootstrap: starting on http://${HOST}:${PORT} (Ctrl-C to stop)"
exec node dist/server.js
