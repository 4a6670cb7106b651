#!/usr/bin/env bash
# `npm test`'s pretest: the browser test (test/page/browser.test.ts) drives Debian's chromium
# through playwright-core, which never downloads a browser of its own. Installs it when it is
# missing and we may (root, apt-get); quiet when it is already there.
set -euo pipefail

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$chromium" ] && exit 0

say () { printf 'ensure-chromium: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  say "$chromium is missing and installing it needs root; run: sudo apt-get install -y chromium"
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  say "$chromium is missing and this is not a Debian-like system (no apt-get); install chromium and set CHROMIUM_PATH"
  exit 1
fi

say "installing Debian's chromium for the browser test (apt-get, once)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
[ -x "$chromium" ] || { say "apt-get installed chromium, but $chromium is still missing"; exit 1; }
say "installed $("$chromium" --version 2>/dev/null || echo chromium)"
