#!/usr/bin/env bash
# Sets up a development environment: a virtualenv in .venv with aimkit installed
# (editable) and the extras named in AIM_EXTRAS (default: web, pandas, test).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
EXTRAS="${AIM_EXTRAS:-web,pandas,test}"

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${EXTRAS}]"
