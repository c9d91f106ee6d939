"""``aim.pytorch_ignite``: the Ignite adapter (see :mod:`aim.sdk.adapters.pytorch_ignite`)."""
from aim.sdk.adapters.pytorch_ignite import AimLogger, OptimizerParamsHandler, OutputHandler

__all__ = ['AimLogger', 'OptimizerParamsHandler', 'OutputHandler']
