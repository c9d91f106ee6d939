"""``aim.xgboost``: the xgboost adapter (see :mod:`aim.sdk.adapters.xgboost`)."""
from aim.sdk.adapters.xgboost import AimCallback

__all__ = ['AimCallback']
