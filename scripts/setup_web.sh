#!/usr/bin/env bash
# What the web UI and its browser tests need beyond the Python extras: Debian's Chromium
# (driven by Playwright through executable_path; `playwright install` is never run) and the
# web extra in the virtualenv. Idempotent: installed pieces are left alone.
#
# The UI's JavaScript is our own plain ES modules served from aim/web/static; it uses no
# npm package, so there is nothing to `npm ci` and nothing to build (see docs/ui.md).
set -euo pipefail
cd "$(dirname "$0")/.."

PIP="${PIP:-.venv/bin/pip}"

if [ -x "$PIP" ]; then
    "$PIP" install --quiet "fastapi>=0.110" "uvicorn>=0.27" "httpx>=0.27" "playwright>=1.40"
fi

if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null || true
