#!/bin/sh
# Installs headless Chromium from Debian for scripts/screenshot.ts (README screenshot of a report).
# playwright-core drives it through `executablePath`: its own browser download cannot reach the
# internet here. Idempotent.
set -e
if command -v chromium >/dev/null 2>&1; then
  echo "chromium: $(command -v chromium)"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $(command -v chromium)"
