"""LightGBM callback: ``lgb.train(params, train, valid_sets=[...], callbacks=[AimCallback()])``.

Each eval result is tracked at ``step=<iteration>`` with context
``{'subset': <data_name>}``; under ``lgb.cv`` the mean goes to that context and the
standard deviation to ``{'subset': <data_name>, 'stdv': True}``. The training params
are saved as ``hparams``. The run is closed after the last iteration; when early
stopping ends training sooner, call ``callback.close()`` (or let the process exit).
"""
from __future__ import annotations

import lightgbm  # noqa: F401  (the framework this adapter serves; fails early without it)

from aim.sdk.adapters.adapter_run import AdapterRun, AdapterRunAccess

__all__ = ['AimCallback']

CV_AGGREGATE = 'cv_agg'  # lightgbm < 4.7 names cv results ('cv_agg', '<data> <metric>')


class AimCallback(AdapterRunAccess):
    """Tracks LightGBM eval results per iteration into an aim Run."""

    def __init__(self, repo=None, experiment: str | None = None, run_hash: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True, run=None):
        self._aim = AdapterRun(repo=repo, experiment=experiment, run_hash=run_hash,
                               system_tracking_interval=system_tracking_interval,
                               log_system_params=log_system_params,
                               capture_terminal_logs=capture_terminal_logs, run=run)
        self._params_saved = False
        # LightGBM sorts callbacks by the instance's `order` (it fills in one of its own
        # when missing): after record_evaluation (20), before early_stopping (30), so the
        # round that stops training is still tracked.
        self.order = 25
        self.before_iteration = False

    def __call__(self, env) -> None:
        if not self._params_saved or env.iteration == env.begin_iteration:
            self._aim.set_params('hparams', env.params)
            self._params_saved = True
        for result in env.evaluation_result_list or ():
            data_name, metric_name, value = result[0], result[1], result[2]
            std = result[4] if len(result) > 4 else None
            if data_name == CV_AGGREGATE and ' ' in metric_name:
                data_name, metric_name = metric_name.split(' ', 1)
            self._aim.track_number(value, metric_name, env.iteration, {'subset': data_name})
            if std is not None:
                self._aim.track_number(std, metric_name, env.iteration,
                                       {'subset': data_name, 'stdv': True})
        if env.iteration + 1 >= env.end_iteration:
            self._aim.close()

    def close(self) -> None:
        """Close the run now (a later iteration reopens it)."""
        self._aim.close()

