"""KerasTuner callback: ``tuner.search(x, y, callbacks=[AimCallback(tuner=tuner)])``.

Each trial gets a run of its own: the trial's hyperparameters are its ``hparams`` param
and ``trial`` holds its id; every epoch's logs are tracked at ``step=epoch`` as in
``aim.keras`` (``val_*`` without the prefix and with ``{'subset': 'val'}``, the others
with ``{'subset': 'train'}``). The run closes when the trial's training ends. KerasTuner
deep-copies the callbacks for each trial; the copies share the tuner and the options.
"""
from __future__ import annotations

import keras

from aim.sdk.adapters.adapter_run import AdapterRun, as_number, to_param_value

__all__ = ['AimCallback']


class AimCallback(keras.callbacks.Callback):
    """Tracks every KerasTuner trial into its own aim Run."""

    def __init__(self, tuner=None, repo=None, experiment: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True):
        super().__init__()
        self.tuner = tuner
        self._options = dict(repo=repo, experiment=experiment,
                             system_tracking_interval=system_tracking_interval,
                             log_system_params=log_system_params,
                             capture_terminal_logs=capture_terminal_logs)
        self._aim: AdapterRun | None = None
        self.run_hashes: list[str] = []

    def __deepcopy__(self, memo):
        copy = type(self)(self.tuner, **self._options)
        copy.run_hashes = self.run_hashes          # shared: every trial's run is listed
        return copy

    @property
    def experiment(self):
        """The current trial's aim Run (``None`` between trials)."""
        return self._aim.run if self._aim is not None else None

    def _trial(self):
        oracle = getattr(self.tuner, 'oracle', None)
        trials = list(getattr(oracle, 'ongoing_trials', {}).values()) if oracle else []
        return trials[0] if len(trials) == 1 else None

    def on_train_begin(self, logs=None) -> None:
        self._aim = AdapterRun(**self._options)
        run = self._aim.run
        if run is None:
            return
        self.run_hashes.append(run.hash)
        trial = self._trial()
        if trial is not None:
            run['hparams'] = to_param_value(trial.hyperparameters.values)
            run['trial'] = {'trial_id': str(trial.trial_id)}

    def on_epoch_end(self, epoch, logs=None) -> None:
        if self._aim is None:
            return
        for key, raw in (logs or {}).items():
            value = as_number(raw)
            if value is None:
                continue
            name, subset = (key[4:], 'val') if key.startswith('val_') else (key, 'train')
            self._aim.track(value, name=name, step=epoch, epoch=epoch,
                            context={'subset': subset})

    def on_train_end(self, logs=None) -> None:
        if self._aim is not None:
            self._aim.close()
            self._aim = None
