"""``aim.pytorch_lightning``: the pytorch_lightning adapter.

See :mod:`aim.sdk.adapters.pytorch_lightning`.
"""
from aim.sdk.adapters.pytorch_lightning import AimLogger, logger_class_for

__all__ = ['AimLogger', 'logger_class_for']
