#!/usr/bin/env bash
# The main job, end to end: set up, track a demo training run into the default
# repository (.aim in this directory), query it, then serve the UI on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

AIM_EXTRAS=web,pandas bash scripts/setup.sh
.venv/bin/aim init
.venv/bin/python examples/demo.py
exec .venv/bin/aim up --host 127.0.0.1 --port "${AIM_PORT:-43800}"
