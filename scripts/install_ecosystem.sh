#!/usr/bin/env bash
# Installs what the ecosystem tests (tests/ecosystem) read and write with: TensorBoard
# (event files, written there by torch.utils.tensorboard), MLflow (a file store and a
# SQLite store; mlflow-skinny plus SQLAlchemy and Alembic is all its stores need), pyarrow
# (Parquet export) and a Jupyter kernel with nbclient (the notebook tests).
# Idempotent: pip leaves packages that are already satisfied alone. torch stays pinned to
# the CPU build that scripts/install_adapters.sh installs, so that nothing here pulls a
# CUDA build.
set -euo pipefail

PIP="${PIP:-.venv/bin/pip}"
TORCH_PIN="torch==2.13.0"

"$PIP" install --quiet "$TORCH_PIN" \
    "tensorboard>=2.14" \
    "mlflow-skinny>=2.10" \
    "sqlalchemy>=2.0" \
    "alembic>=1.12" \
    "pyarrow>=14" \
    "nbclient>=0.10" \
    "nbformat>=5.9" \
    "ipykernel>=6.29"
