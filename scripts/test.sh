#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine and runs every test:
# unit and integration tests, real-framework adapter tests, browser tests in
# Debian's Chromium, and the benchmarks in their quick mode.
set -euo pipefail
cd "$(dirname "$0")/.."

AIM_EXTRAS=web,pandas,postgres,test bash scripts/setup.sh
bash scripts/install_postgres.sh
PIP=.venv/bin/pip bash scripts/install_adapters.sh
bash scripts/setup_web.sh
# optional parts' test dependencies, each from its own script
for extra in scripts/install_mlflow.sh scripts/install_ecosystem.sh; do
    if [ -f "$extra" ]; then PIP=.venv/bin/pip bash "$extra"; fi
done
mkdir -p test-output
# lint and types first: a minute at most, and a failure names the line
.venv/bin/ruff check aim
.venv/bin/mypy aim
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
