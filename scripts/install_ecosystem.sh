#!/usr/bin/env bash
# Installs what the ecosystem tests (tests/ecosystem) read, write and train with:
# TensorBoard (event files, written there by torch.utils.tensorboard), MLflow (a file store
# and a SQLite store; mlflow-skinny plus SQLAlchemy and Alembic is all its stores need),
# W&B (offline runs; below 0.30, which dropped the Python reader of .wandb logs),
# pyarrow (Parquet export), a Jupyter kernel with nbclient (the notebook tests), and the
# frameworks of the integration tests: pytorch-ignite, CatBoost, fastai, KerasTuner,
# Stable-Baselines3 with Gymnasium, Prophet.
# Idempotent: pip leaves packages that are already satisfied alone.
#
# torch stays pinned to the CPU build that scripts/install_adapters.sh installs, so that
# nothing here pulls a CUDA build. fastai is installed without its dependencies, which are
# then listed here minus torchvision: PyPI's torchvision is built against the CUDA torch,
# fails to load its operators next to the CPU torch, and its presence breaks
# `from transformers import Trainer` (the Hugging Face adapter tests). fastai's tabular
# and plain-tensor learners, which the tests train, need no torchvision.
set -euo pipefail

PIP="${PIP:-.venv/bin/pip}"
TORCH_PIN="torch==2.13.0"

"$PIP" install --quiet "$TORCH_PIN" \
    "tensorboard>=2.14" \
    "mlflow-skinny>=2.10" \
    "sqlalchemy>=2.0" \
    "alembic>=1.12" \
    "pyarrow>=14" \
    "wandb>=0.17,<0.30" \
    "nbclient>=0.10" \
    "nbformat>=5.9" \
    "ipykernel>=6.29" \
    "pytorch-ignite>=0.5" \
    "catboost>=1.2" \
    "keras-tuner>=1.4" \
    "stable-baselines3>=2.3" \
    "gymnasium>=0.29.1" \
    "prophet>=1.1.5"
"$PIP" install --quiet --no-deps "fastai>=2.7"
"$PIP" install --quiet "$TORCH_PIN" \
    "fastdownload>=0.0.8,<2" "fastcore>=2.2.22" "fasttransform>=0.0.3" "fastprogress>=0.2.4" \
    "plum-dispatch<2.10" "spacy<4" matplotlib pandas requests pyyaml "pillow>=9.0.0" \
    scikit-learn scipy packaging cloudpickle
if "$PIP" show --quiet torchvision >/dev/null 2>&1 && \
        ! "${PIP%pip}python" -c 'import torchvision.ops' >/dev/null 2>&1; then
    "$PIP" uninstall --quiet -y torchvision   # a CUDA-built one left by an earlier install
fi
