# Runs the sidecar on Windows, like the sample Coze's docs ship: `.\bootstrap.ps1`, then open the
# URL it prints. Everything it decides is in scripts/bootstrap.mjs, which bootstrap.sh runs too.
$ErrorActionPreference = 'Stop'
if (-not (Get-Command node -ErrorAction SilentlyContinue)) {
  Write-Error 'bootstrap: Node.js is not installed; install Node.js 22 or 24 (https://nodejs.org)'
  exit 1
}
& node (Join-Path $PSScriptRoot 'scripts/bootstrap.mjs') @args
exit $LASTEXITCODE
