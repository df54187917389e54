#!/usr/bin/env bash
# Install the PostgreSQL server binaries the store tests need (initdb, pg_ctl, postgres).
#
# tests/store/conftest.py runs this when it finds no initdb; `make test` may run it up front.
# Debian/Ubuntu as root only: anywhere else it says what to install and exits 1.
set -euo pipefail

have_server() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        return 0
    fi
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1
}

if have_server; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_postgres.sh: no PostgreSQL server found; install it (Debian: apt-get install postgresql)" \
        "or set GRADUATE_SKIP_POSTGRES=1 to skip the PostgreSQL tests" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
have_server
