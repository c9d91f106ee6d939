"""``aim.optuna``: the optuna adapter (see :mod:`aim.sdk.adapters.optuna`)."""
from aim.sdk.adapters.optuna import AimCallback

__all__ = ['AimCallback']
