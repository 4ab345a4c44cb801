#!/usr/bin/env bash
# Install Debian's chromium for the browser tests (tests/browser/).
#
# Idempotent: exits 0 at once when /usr/bin/chromium is already there. As root it
# installs the distribution package (no browser download through playwright is
# needed or possible: the tests drive /usr/bin/chromium with the playwright
# Python package's own driver). Not root: prints the command and exits 1.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
    if [ ! -x "$CHROMIUM" ]; then
        echo "install-chromium.sh: apt-get finished but $CHROMIUM is missing" >&2
        exit 1
    fi
    exit 0
fi

cat >&2 <<MSG
install-chromium.sh: $CHROMIUM not found, and installing it needs root.
Install Debian's chromium package, then re-run the tests:
    sudo tools/install-chromium.sh
or
    sudo apt-get update && sudo apt-get install -y chromium
MSG
exit 1
