#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the browser tests (Playwright drives it;
# its own browser downloads do not work on a closed network). Quick when it is already there.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "browser: installing Debian's chromium and fonts" >&2
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
  chromium fonts-liberation fonts-dejavu-core >/dev/null
[ -x /usr/bin/chromium ] || { echo "browser: /usr/bin/chromium is still missing" >&2; exit 1; }
echo "browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)" >&2
