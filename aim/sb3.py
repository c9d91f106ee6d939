"""``aim.sb3``: the sb3 adapter (see :mod:`aim.sdk.adapters.sb3`)."""
from aim.sdk.adapters.sb3 import AimCallback, AimOutputFormat

__all__ = ['AimCallback', 'AimOutputFormat']
