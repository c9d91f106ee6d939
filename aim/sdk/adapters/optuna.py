"""Optuna callback: ``study.optimize(objective, n_trials=20, callbacks=[AimCallback()])``.

One run for the whole study (the default): each finished trial's objective value(s) and
numeric params are tracked at ``step=trial.number`` (params with context
``{'type': 'param'}``). With ``as_multirun=True``: one run per trial, holding the trial's
params as ``hparams`` and its objective value(s) as metrics. Either way the study name is
the param ``study_name`` and, unless ``experiment`` is given, the runs' experiment.

Optuna has no "study finished" event: in single-run mode call ``callback.close()`` after
``optimize`` (or let the process exit, which closes the run too).
"""
from __future__ import annotations

from collections.abc import Sequence

import optuna  # noqa: F401  (the framework this adapter serves; fails early without it)

from aim.sdk.adapters.adapter_run import AdapterRun, as_number, to_param_value

__all__ = ['AimCallback']


class AimCallback:
    """Tracks Optuna trials into aim runs."""

    def __init__(self, metric_name: str | Sequence[str] = 'value', as_multirun: bool = False,
                 repo=None, experiment: str | None = None, run_hash: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True, experiment_name: str | None = None):
        if experiment_name is not None:  # the name Aim 3's Optuna callback uses
            if experiment is not None and experiment != experiment_name:
                raise ValueError('give either experiment or experiment_name (they are the '
                                 'same), not both')
            experiment = experiment_name
        if as_multirun and run_hash is not None:
            raise ValueError('run_hash continues one run; it cannot be combined with '
                             'as_multirun=True, which makes a new run for every trial')
        self.metric_name = metric_name
        self.as_multirun = as_multirun
        self._run_options = dict(repo=repo, experiment=experiment,
                                 system_tracking_interval=system_tracking_interval,
                                 log_system_params=log_system_params,
                                 capture_terminal_logs=capture_terminal_logs)
        self._study_run = AdapterRun(run_hash=run_hash, **self._run_options)

        self._trial_runs: dict[int, AdapterRun] = {}   # opened by track_in_aim, by trial
        self._current_trial: int | None = None

    @property
    def experiment(self):
        """The aim Run to track into: the study's run in single-run mode; with
        ``as_multirun=True``, the run of the trial that a ``track_in_aim`` objective is
        running (``None`` outside one)."""
        if not self.as_multirun:
            return self._study_run.run
        trial_run = self._trial_runs.get(self._current_trial)  # type: ignore[arg-type]
        return trial_run.run if trial_run is not None else None

    run = experiment

    def track_in_aim(self):
        """Decorate the objective so that it can track into aim while a trial runs::

            @callback.track_in_aim()
            def objective(trial):
                x = trial.suggest_float('x', -10, 10)
                callback.experiment.track(x ** 2, name='x_squared')
                return (x - 2) ** 2

        With ``as_multirun=True`` the trial's run is opened before the objective starts
        (the callback then completes and closes it); otherwise ``callback.experiment`` is
        the study's run.
        """
        import functools

        def decorator(objective):
            @functools.wraps(objective)
            def wrapper(trial, *args, **kwargs):
                study_name = trial.study.study_name
                if self._run_options['experiment'] is None:
                    self._study_run.experiment = study_name
                if self.as_multirun:
                    self._trial_runs[trial.number] = self._open_trial_run(study_name, trial)
                previous, self._current_trial = self._current_trial, trial.number
                try:
                    return objective(trial, *args, **kwargs)
                finally:
                    self._current_trial = previous
            return wrapper
        return decorator

    def __call__(self, study, trial) -> None:
        if self._run_options['experiment'] is None:
            self._study_run.experiment = study.study_name
        if self.as_multirun:
            self._track_trial_run(study, trial)
        else:
            self._track_in_study_run(study, trial)

    def close(self) -> None:
        """Close the study's run (single-run mode)."""
        self._study_run.close()

    # -- modes ---------------------------------------------------------------------------
    def _track_in_study_run(self, study, trial) -> None:
        aim_run = self._study_run
        if not aim_run.writes:
            return
        run = aim_run.run
        if run.get('study_name', None) != study.study_name:
            run['study_name'] = study.study_name
        for name, value in self._objective_values(trial):
            aim_run.track(value, name=name, step=trial.number)
        for name, raw_value in trial.params.items():
            param_value = as_number(raw_value)
            if param_value is not None:
                aim_run.track(param_value, name=name, step=trial.number,
                              context={'type': 'param'})

    def _open_trial_run(self, study_name: str, trial) -> AdapterRun:
        options = dict(self._run_options)
        options['experiment'] = options['experiment'] or study_name
        trial_run = AdapterRun(**options)
        if trial_run.writes:
            trial_run.run['study_name'] = study_name
            trial_run.run['trial'] = {'number': trial.number, 'state': 'RUNNING'}
        return trial_run

    def _track_trial_run(self, study, trial) -> None:
        trial_run = self._trial_runs.pop(trial.number, None) or \
            self._open_trial_run(study.study_name, trial)
        if not trial_run.writes:
            return
        try:
            run = trial_run.run
            run['study_name'] = study.study_name
            run['trial'] = {'number': trial.number, 'state': trial.state.name}
            trial_run.set_params('hparams', to_param_value(trial.params), merge=False)
            for name, value in self._objective_values(trial):
                trial_run.track(value, name=name, step=0)
        finally:
            trial_run.close()

    def _objective_values(self, trial) -> list[tuple[str, float]]:
        values = trial.values or []
        names = self.metric_name
        if isinstance(names, str):
            names = [names] if len(values) <= 1 else [f'{names}_{i}' for i in range(len(values))]
        if len(names) != len(values):
            raise ValueError(f'metric_name names {len(names)} objectives but the study has '
                             f'{len(values)}: pass one name per objective')
        pairs = []
        for name, raw_value in zip(names, values):
            value = as_number(raw_value)
            if value is not None:
                pairs.append((name, value))
        return pairs
