"""``aim.keras``: the keras adapter (see :mod:`aim.sdk.adapters.keras`)."""
from aim.sdk.adapters.keras import AimCallback

__all__ = ['AimCallback']
