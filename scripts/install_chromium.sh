#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the report's browser test (tests/evaluate/test_report_browser.py).
#
# The test runs this when it finds no Chromium; `make test` runs it up front. Debian/Ubuntu as root
# only: anywhere else it says what to install and exits 1.
set -euo pipefail

find_chromium() {
    for name in chromium chromium-browser google-chrome; do
        if command -v "$name" >/dev/null 2>&1; then
            return 0
        fi
    done
    return 1
}

if find_chromium; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: no Chromium found; install it (Debian: apt-get install chromium)" \
        "or set GRADUATE_SKIP_BROWSER=1 to skip the browser test" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
find_chromium
