#!/usr/bin/env bash
# Runs the sidecar, like the sample Coze's docs ship: `bash bootstrap.sh`, then open
# http://127.0.0.1:8080. Safe to run again: it installs only when the lock file changed.
#
# With a Coze app configured (any of COZE_APP_ID, COZE_KEY_ID, COZE_PRIVATE_KEY_FILE,
# COZE_PRIVATE_KEY, COZE_OAUTH_CONFIG in the environment, or ./coze_oauth_config.json) it runs
# against Coze; with none, it starts the demo (SIDECAR_DEMO=true): a built-in Coze emulator whose
# tokens are NOT valid at Coze. An explicit SIDECAR_DEMO is always obeyed.

# "demo" or "real", from the environment and ./coze_oauth_config.json (run it where that is).
bootstrap_mode () {
  case "${SIDECAR_DEMO:-}" in
    true | 1) echo demo; return ;;
    ?*) echo real; return ;;
  esac
  local name
  for name in COZE_APP_ID COZE_KEY_ID COZE_PRIVATE_KEY_FILE COZE_PRIVATE_KEY COZE_OAUTH_CONFIG; do
    if [ -n "${!name:-}" ]; then echo real; return; fi
  done
  if [ -f coze_oauth_config.json ]; then echo real; else echo demo; fi
}

# Sourced (by the tests): the function only.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

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
if [ "$(bootstrap_mode)" = demo ]; then
  if [ -z "${SIDECAR_DEMO:-}" ]; then
    echo "bootstrap: no Coze app is configured (no COZE_APP_ID, COZE_KEY_ID, COZE_PRIVATE_KEY_FILE, ... nor ./coze_oauth_config.json);"
    echo "bootstrap: to use yours, see keys.example/README.md"
  fi
  export SIDECAR_DEMO=true
  echo "bootstrap: DEMO MODE (SIDECAR_DEMO=true): tokens come from a built-in Coze emulator and are NOT valid at Coze"
else
  echo "bootstrap: using the Coze app configured in the environment or ./coze_oauth_config.json"
fi
case "$HOST" in
  0.0.0.0 | :: | "[::]") url_host=127.0.0.1 ;;
  \[*) url_host=$HOST ;;
  *:*) url_host="[$HOST]" ;;
  *) url_host=$HOST ;;
esac
echo "bootstrap: starting on http://${url_host}:${PORT} (Ctrl-C to stop)"
exec node dist/server.js
