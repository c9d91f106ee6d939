#!/usr/bin/env bash
# The PostgreSQL server binaries the tests start their own cluster from (initdb + pg_ctl
# into a temporary folder, as an unprivileged user, on a free port: tests/pg/cluster.py).
# Installs Debian's `postgresql` package when no server binaries are found; idempotent.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# the package starts a system cluster of its own; the tests do not use it
$SUDO service postgresql stop >/dev/null 2>&1 || true
