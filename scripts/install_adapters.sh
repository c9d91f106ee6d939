#!/usr/bin/env bash
# Installs the ML frameworks that the adapter tests (tests/adapters) train with.
# Idempotent: pip leaves packages that are already satisfied alone.
#
# torch comes first and stays pinned in the second command too: with no torch
# installed, a plain "torch" requirement from another package pulls a CUDA build
# of several GB, while torch==2.13.0 is the CPU build these machines keep on disk.
# xgboost-cpu instead of xgboost: the default wheel drags in NCCL (hundreds of MB).
# Keras 3 runs on the torch backend, so TensorFlow is not installed here; see
# docs/adapters.md for the opt-in TensorFlow test.
set -euo pipefail

PIP="${PIP:-.venv/bin/pip}"
TORCH_PIN="torch==2.13.0"

"$PIP" install --quiet "$TORCH_PIN"
"$PIP" install --quiet "$TORCH_PIN" \
    "lightning>=2.2" \
    "pytorch-lightning>=2.2" \
    "transformers>=4.40" \
    "accelerate>=0.26" \
    "keras>=3.0" \
    "xgboost-cpu>=2.0" \
    "lightgbm>=4.0" \
    "optuna>=3.0" \
    "omegaconf>=2.3"
