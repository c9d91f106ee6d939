"""``aim.prophet``: the prophet adapter (see :mod:`aim.sdk.adapters.prophet`)."""
from aim.sdk.adapters.prophet import AimLogger

__all__ = ['AimLogger']
