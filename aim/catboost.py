"""``aim.catboost``: the catboost adapter (see :mod:`aim.sdk.adapters.catboost`)."""
from aim.sdk.adapters.catboost import AimLogger

__all__ = ['AimLogger']
