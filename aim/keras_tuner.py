"""``aim.keras_tuner``: the keras_tuner adapter (see :mod:`aim.sdk.adapters.keras_tuner`)."""
from aim.sdk.adapters.keras_tuner import AimCallback

__all__ = ['AimCallback']
