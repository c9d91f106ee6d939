#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine and runs every test:
# unit and integration tests, real-framework adapter tests, browser tests in
# Debian's Chromium, the PostgreSQL backend against a cluster the tests start from
# Debian's postgresql, and the benchmarks in their quick mode.
set -euo pipefail
cd "$(dirname "$0")/.."

AIM_EXTRAS=web,pandas,postgres,test bash scripts/setup.sh
bash scripts/install_postgres.sh
PIP=.venv/bin/pip bash scripts/install_adapters.sh
PIP=.venv/bin/pip bash scripts/install_mlflow.sh      # tests/mlflow: MLflow's client and server
PIP=.venv/bin/pip bash scripts/install_ecosystem.sh   # tests/ecosystem: converters, integrations
bash scripts/setup_web.sh
mkdir -p test-output
# lint and types first: a minute at most, and a failure names the line
.venv/bin/ruff check aim
.venv/bin/mypy aim
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
