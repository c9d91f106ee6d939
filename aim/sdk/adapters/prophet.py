"""Prophet logger: ``AimLogger(prophet_model=model, experiment='forecast')``.

Prophet has no callbacks: the logger saves the model's hyperparameters (``growth``,
``changepoint_prior_scale``, seasonality settings, ...) as ``hparams`` when it is made,
and, once the model is fitted, its seasonalities and extra regressors under
``hparams`` too (``track_model()``, called by ``track_metrics`` as well); the metrics you
compute (``performance_metrics``, your own) go in with ``track_metrics(metrics, step=,
context=)``.
"""
from __future__ import annotations

from typing import Any

import prophet  # noqa: F401  (the framework this adapter serves; fails early without it)

from aim.sdk.adapters.adapter_run import AdapterRun, AdapterRunAccess, as_number, to_param_value

__all__ = ['AimLogger']

_HYPERPARAMETERS = ('growth', 'n_changepoints', 'changepoint_range', 'yearly_seasonality',
                    'weekly_seasonality', 'daily_seasonality', 'seasonality_mode',
                    'seasonality_prior_scale', 'changepoint_prior_scale',
                    'holidays_prior_scale', 'holidays_mode', 'mcmc_samples', 'interval_width',
                    'uncertainty_samples', 'scaling')


class AimLogger(AdapterRunAccess):
    """Saves a Prophet model's settings and the metrics given to it into an aim Run."""

    def __init__(self, prophet_model, repo=None, experiment: str | None = None,
                 run_hash: str | None = None, system_tracking_interval: float | None = 10,
                 log_system_params: bool = True, capture_terminal_logs: bool = True,
                 run=None):
        self._aim = AdapterRun(repo=repo, experiment=experiment, run_hash=run_hash,
                               system_tracking_interval=system_tracking_interval,
                               log_system_params=log_system_params,
                               capture_terminal_logs=capture_terminal_logs, run=run)
        self.model = prophet_model
        self._aim.set_params('hparams', {name: to_param_value(getattr(prophet_model, name))
                                         for name in _HYPERPARAMETERS
                                         if hasattr(prophet_model, name)})

    def track_model(self) -> None:
        """Save what fitting decided: seasonalities and extra regressors."""
        model = self.model
        fitted: dict[str, Any] = {}
        if getattr(model, 'seasonalities', None):
            fitted['seasonalities'] = to_param_value(model.seasonalities)
        if getattr(model, 'extra_regressors', None):
            fitted['extra_regressors'] = to_param_value(model.extra_regressors)
        if fitted:
            self._aim.set_params('hparams', fitted)

    def track_metrics(self, metrics: dict, step: int | None = None,
                      context: dict | None = None) -> None:
        """Track each number of ``metrics`` (a dict, or a one-row pandas frame/series)."""
        if hasattr(metrics, 'to_dict'):
            metrics = metrics.to_dict()
        self.track_model()
        for name, raw in metrics.items():
            if isinstance(raw, dict) and len(raw) == 1:   # a one-row frame's column
                raw = next(iter(raw.values()))
            value = as_number(raw)
            if value is not None:
                self._aim.track(value, name=str(name), step=step, context=context)

    def close(self) -> None:
        self._aim.close()
