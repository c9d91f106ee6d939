"""MLflow's tracking REST API on ``aim server`` (see docs/mlflow.md).

``mlflow.set_tracking_uri('http://HOST:PORT')`` makes MLflow's client (and its
autologging) write into the aimkit repository the server serves. Loaded by ``aim server``
only; ``import aim`` never imports it.
"""
from __future__ import annotations

from aim.mlflow_api.app import MlflowApp, is_mlflow_path

__all__ = ['MlflowApp', 'is_mlflow_path']
