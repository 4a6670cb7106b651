#!/usr/bin/env bash
# Runs the sidecar, like the sample Coze's docs ship: `bash bootstrap.sh`, then open the URL it
# prints. Safe to run again: it installs only when the lock file changed and builds only when the
# sources did. With nothing configured it starts the demo (tokens NOT valid at Coze).
#
# Everything it decides is in scripts/bootstrap.mjs, which bootstrap.ps1 (Windows) runs too.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null; then
  echo "bootstrap: Node.js is not installed; install Node.js 22 or 24 (https://nodejs.org)" >&2
  exit 1
fi
exec node scripts/bootstrap.mjs "$@"
