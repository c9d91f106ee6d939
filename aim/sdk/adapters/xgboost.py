"""XGBoost callback: ``xgb.train(params, dtrain, evals=[...], callbacks=[AimCallback()])``.

Every eval metric of every eval set is tracked at ``step=<boosting round>`` (counted
from the rounds the model already had when training continues), with
context ``{'subset': <eval set name>}``. Under ``xgb.cv`` the mean goes to that context
and the standard deviation to ``{'subset': <name>, 'stdv': True}``.
"""
from __future__ import annotations

import json

from xgboost import collective
from xgboost.callback import TrainingCallback

from aim.sdk.adapters.adapter_run import AdapterRun, to_param_value

__all__ = ['AimCallback']


def _is_xgboost_worker() -> bool:
    """True on the non-zero ranks of a distributed (Dask, Spark, collective) training."""
    try:
        return collective.is_distributed() and collective.get_rank() != 0
    except Exception:  # collective not initialised: a single process
        return False


class AimCallback(TrainingCallback):
    """Tracks XGBoost eval results per boosting round into an aim Run and saves the
    booster configuration as the ``xgboost`` param."""

    def __init__(self, repo=None, experiment: str | None = None, run_hash: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True, run=None):
        super().__init__()
        self._rounds_before = 0
        self._aim = AdapterRun(repo=repo, experiment=experiment, run_hash=run_hash,
                               system_tracking_interval=system_tracking_interval,
                               log_system_params=log_system_params,
                               capture_terminal_logs=capture_terminal_logs, run=run)

    @property
    def experiment(self):
        """The aim Run (created on first use; ``None`` outside rank 0)."""
        return None if _is_xgboost_worker() else self._aim.run

    run = experiment

    @property
    def run_hash(self) -> str | None:
        """The hash of the run written to (``None`` before it exists); pass it as
        ``run_hash=`` to continue the run later, without opening it now."""
        return self._aim.run_hash

    def before_training(self, model):
        # xgb.train(xgb_model=...) counts rounds from 0 again; the steps go on from the
        # rounds the model already has.
        try:
            self._rounds_before = int(model.num_boosted_rounds())
        except Exception:
            self._rounds_before = 0
        if _is_xgboost_worker():
            return model
        save_config = getattr(model, 'save_config', None)  # xgb.cv's packed booster has none
        if save_config is not None:
            self._aim.set_params('xgboost', to_param_value(json.loads(save_config())),
                                 merge=False)
        return model

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        if _is_xgboost_worker():
            return False
        step = self._rounds_before + epoch
        for subset, metrics in evals_log.items():
            for metric_name, history in metrics.items():
                if not history:
                    continue
                latest = history[-1]
                if isinstance(latest, tuple):  # xgb.cv: (mean, std)
                    mean, std = latest
                    self._aim.track_number(mean, metric_name, step, {'subset': subset})
                    self._aim.track_number(std, metric_name, step, {'subset': subset, 'stdv': True})
                else:
                    self._aim.track_number(latest, metric_name, step, {'subset': subset})
        return False

    def after_training(self, model):
        self._aim.close()
        return model

    def close(self) -> None:
        self._aim.close()

