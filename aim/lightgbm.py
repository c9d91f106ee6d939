"""``aim.lightgbm``: the lightgbm adapter (see :mod:`aim.sdk.adapters.lightgbm`)."""
from aim.sdk.adapters.lightgbm import AimCallback

__all__ = ['AimCallback']
