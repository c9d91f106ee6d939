"""``aim.tensorflow``: the tensorflow adapter (see :mod:`aim.sdk.adapters.tensorflow`)."""
from aim.sdk.adapters.tensorflow import AimCallback

__all__ = ['AimCallback']
