"""PyTorch-Ignite logger: ``AimLogger().attach_output_handler(trainer, Events.ITERATION_COMPLETED,
tag='train', output_transform=lambda loss: {'loss': loss})``.

A handler's values are tracked at the engine's global step (or ``global_step_transform``)
with the engine's epoch and the context ``{'subset': <tag>}``; optimizer params
(``attach_opt_params_handler``) as ``<param_name>`` with ``{'param_group': i}``.
``log_params`` saves hyperparameters as ``hparams``.
"""
from __future__ import annotations

from typing import Any

from ignite.handlers.base_logger import (
    BaseLogger,
    BaseOptimizerParamsHandler,
    BaseOutputHandler,
)

from aim.sdk.adapters.adapter_run import AdapterRun, AdapterRunAccess, as_number

__all__ = ['AimLogger', 'OptimizerParamsHandler', 'OutputHandler']


class AimLogger(AdapterRunAccess, BaseLogger):
    """An Ignite logger writing to an aim Run (created on first use)."""

    def __init__(self, repo=None, experiment: str | None = None, run_hash: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True, run=None):
        self._aim = AdapterRun(repo=repo, experiment=experiment, run_hash=run_hash,
                               system_tracking_interval=system_tracking_interval,
                               log_system_params=log_system_params,
                               capture_terminal_logs=capture_terminal_logs, run=run)

    def log_params(self, params: dict) -> None:
        """Save hyperparameters (merged into the ``hparams`` param)."""
        self._aim.set_params('hparams', params)

    def log_metrics(self, metrics: dict, step: int | None = None, epoch: int | None = None,
                    context: dict | None = None) -> None:
        for name, raw in metrics.items():
            value = as_number(raw)
            if value is not None:
                self._aim.track(value, name=name, step=step, epoch=epoch, context=context)

    def close(self) -> None:
        self._aim.close()

    def _create_output_handler(self, *args: Any, **kwargs: Any) -> OutputHandler:
        return OutputHandler(*args, **kwargs)

    def _create_opt_params_handler(self, *args: Any, **kwargs: Any) -> OptimizerParamsHandler:
        return OptimizerParamsHandler(*args, **kwargs)


class OutputHandler(BaseOutputHandler):
    """Tracks an engine's metrics, output and state attributes (see Ignite's handlers)."""

    def __call__(self, engine, logger: AimLogger, event_name) -> None:
        if not isinstance(logger, AimLogger):
            raise TypeError('OutputHandler works only with aim.pytorch_ignite.AimLogger')
        values = self._setup_output_metrics_state_attrs(engine, key_tuple=True)
        step = self.global_step_transform(engine, event_name)
        if not isinstance(step, int):
            raise TypeError(f'global_step must be an int, got {type(step).__name__}: check '
                            f'the global_step_transform')
        metrics = {}
        for key, value in values.items():
            parts = [str(p) for p in (key if isinstance(key, tuple) else (key,))]
            if parts and parts[0] == self.tag:
                parts = parts[1:]
            metrics['/'.join(parts)] = value
        logger.log_metrics(metrics, step=step, epoch=engine.state.epoch,
                           context={'subset': self.tag})


class OptimizerParamsHandler(BaseOptimizerParamsHandler):
    """Tracks an optimizer param (``lr`` by default) of every param group."""

    def __call__(self, engine, logger: AimLogger, event_name) -> None:
        if not isinstance(logger, AimLogger):
            raise TypeError('OptimizerParamsHandler works only with '
                            'aim.pytorch_ignite.AimLogger')
        step = engine.state.get_event_attrib_value(event_name)
        for i, group in enumerate(self.optimizer.param_groups):
            context: dict = {'param_group': i}
            if self.tag:
                context['subset'] = self.tag
            logger.log_metrics({self.param_name: group[self.param_name]}, step=step,
                               context=context)
