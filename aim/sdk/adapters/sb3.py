"""Stable-Baselines3 callback: ``model.learn(10_000, callback=AimCallback(experiment_name='ppo'))``.

Everything SB3's logger records (``rollout/ep_rew_mean``, ``train/loss``, ``time/fps``,
...) is tracked when the logger dumps, at ``step=<timesteps so far>``: the part after the
last ``/`` is the metric name, the part before it the context ``{'subset': ...}``
(``train/loss`` -> ``loss``, ``{'subset': 'train'}``). Values that are not numbers
(videos, figures) and keys excluded for ``'aim'`` are skipped. The algorithm, policy and
main settings are saved as ``hparams``; the run closes when training ends.
"""
from __future__ import annotations

from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter

from aim.sdk.adapters.adapter_run import AdapterRun, AdapterRunAccess, as_number

__all__ = ['AimCallback', 'AimOutputFormat']

_SETTINGS = ('learning_rate', 'n_steps', 'batch_size', 'n_epochs', 'gamma', 'gae_lambda',
             'ent_coef', 'vf_coef', 'max_grad_norm', 'buffer_size', 'tau', 'train_freq',
             'gradient_steps', 'learning_starts', 'seed', 'n_envs')


class AimOutputFormat(KVWriter):
    """An SB3 logger output format that tracks into an aim Run."""

    def __init__(self, aim_run: AdapterRun):
        self._aim = aim_run

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any],
              step: int = 0) -> None:
        for key, raw in key_values.items():
            excluded = key_excluded.get(key)
            if excluded is not None and 'aim' in excluded:
                continue
            value = as_number(raw)
            if value is None:
                continue
            subset, _, name = key.rpartition('/')
            self._aim.track(value, name=name, step=int(step),
                            context={'subset': subset} if subset else None)

    def close(self) -> None:
        pass


class AimCallback(AdapterRunAccess, BaseCallback):
    """Adds an aim output format to the model's logger for the length of training."""

    def __init__(self, repo=None, experiment_name: str | None = None, verbose: int = 0,
                 experiment: str | None = None, run_hash: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True, run=None):
        super().__init__(verbose)
        self._aim = AdapterRun(repo=repo, experiment=experiment or experiment_name,
                               run_hash=run_hash,
                               system_tracking_interval=system_tracking_interval,
                               log_system_params=log_system_params,
                               capture_terminal_logs=capture_terminal_logs, run=run)
        self._format: AimOutputFormat | None = None

    def _on_training_start(self) -> None:
        model = self.model
        hparams: dict[str, Any] = {'algo': type(model).__name__,
                                   'policy': type(model.policy).__name__}
        for name in _SETTINGS:
            value = getattr(model, name, None)
            number = as_number(value)
            if number is not None:
                hparams[name] = number
            elif isinstance(value, str):
                hparams[name] = value
        self._aim.set_params('hparams', hparams)
        self._format = AimOutputFormat(self._aim)
        self.logger.output_formats.append(self._format)

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if self._format is not None and self._format in self.logger.output_formats:
            self.logger.output_formats.remove(self._format)
        self._format = None
        self._aim.close()
