#!/usr/bin/env bash
# Installs what the MLflow API tests (tests/mlflow) and bench/bench_mlflow.py use: MLflow's
# client, its own tracking server (to compare search results and throughput with) and
# scikit-learn (for autologging). Idempotent: pip leaves what is satisfied alone.
# Only the client is needed to use the API; `pip install mlflow-skinny` is enough there.
set -euo pipefail

PIP="${PIP:-.venv/bin/pip}"
"$PIP" install --quiet "mlflow>=3.0,<4" "scikit-learn>=1.3" "requests>=2.28"
