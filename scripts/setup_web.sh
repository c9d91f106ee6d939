#!/usr/bin/env bash
# What the web UI and its browser tests need beyond the Python extras: Debian's Chromium
# (driven by Playwright through executable_path; `playwright install` is never run) and the
# web extra in the virtualenv. Idempotent: installed pieces are left alone.
#
# The UI's JavaScript is our own plain ES modules served from aim/web/static; the only
# npm package is plotly.js (figures page), installed below; nothing is built (docs/ui.md).
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

# plotly.js for the figures explorer, from the npm registry into a git-ignored folder
# (aim/web/static/vendor/, served as /static/vendor/plotly.min.js; nothing third-party is
# committed). The page says how to run this when the file is missing.
PLOTLY="aim/web/static/vendor/plotly.min.js"
PLOTLY_VERSION="${PLOTLY_VERSION:-2.35.2}"
if [ ! -f "$PLOTLY" ]; then
    if command -v npm >/dev/null 2>&1; then
        mkdir -p aim/web/static/vendor
        npm install --silent --no-save --no-audit --no-fund \
            --prefix aim/web/static/vendor/npm "plotly.js-dist-min@$PLOTLY_VERSION"
        cp aim/web/static/vendor/npm/node_modules/plotly.js-dist-min/plotly.min.js "$PLOTLY"
        rm -rf aim/web/static/vendor/npm
    else
        echo "npm not found: the figures page needs $PLOTLY (install Node.js and npm, then" \
             "run this script again)" >&2
    fi
fi

# uPlot for bench/bench_chart_render.py only (aimkit's chart measured against it; the UI
# does not use it): from the npm registry into the git-ignored bench/.vendor/uplot/.
UPLOT_DIR="bench/.vendor/uplot"
UPLOT_VERSION="${UPLOT_VERSION:-1.6.32}"
if [ ! -f "$UPLOT_DIR/uPlot.iife.min.js" ]; then
    if command -v npm >/dev/null 2>&1; then
        mkdir -p "$UPLOT_DIR"
        npm install --silent --no-save --no-audit --no-fund \
            --prefix "$UPLOT_DIR/npm" "uplot@$UPLOT_VERSION"
        cp "$UPLOT_DIR/npm/node_modules/uplot/dist/uPlot.iife.min.js" \
           "$UPLOT_DIR/npm/node_modules/uplot/dist/uPlot.min.css" \
           "$UPLOT_DIR/npm/node_modules/uplot/package.json" \
           "$UPLOT_DIR/npm/node_modules/uplot/LICENSE" "$UPLOT_DIR/"
        rm -rf "$UPLOT_DIR/npm"
    else
        echo "npm not found: bench/bench_chart_render.py needs $UPLOT_DIR (install Node.js" \
             "and npm, then run this script again)" >&2
    fi
fi
