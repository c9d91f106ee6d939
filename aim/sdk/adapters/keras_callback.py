"""The Keras callback's behaviour, shared by ``aim.keras`` (Keras 3) and
``aim.tensorflow`` (``tf.keras``). Each of those modules imports its own framework and
builds ``AimCallback`` on that framework's ``Callback`` class with
:func:`callback_class`; this module imports neither.
"""
from __future__ import annotations

from typing import Any

from aim.sdk.adapters.adapter_run import (
    AdapterRun,
    AdapterRunAccess,
    ContextFromAffixes,
    as_number,
    number_or_warn,
    to_param_value,
    warn_once,
)

EPOCH_NAMES = ContextFromAffixes.subsets({'val_': 'val'},
                                         default_context={'subset': 'train'})
LEARNING_RATE_NAMES = ('learning_rate', 'lr')


class _KerasCallbackBehaviour(AdapterRunAccess):
    """Tracks Keras ``fit`` logs into an aim Run.

    At each epoch end every log value is tracked at ``step=epoch, epoch=epoch``, ``val_*``
    without the prefix and with context ``{'subset': 'val'}``, the others with
    ``{'subset': 'train'}``; the optimizer's learning rate is tracked as ``lr``. With
    ``batch_log_interval=n`` every n-th training batch's logs are tracked too, at the
    global batch number and with context ``{'subset': 'train', 'batch': True}``. The
    model and optimizer configs are saved as params ``model`` and ``optimizer``, the
    ``fit`` arguments Keras reports (epochs, steps) under ``hparams``.
    """
    # set by Keras on the Callback class this behaviour is mixed into
    model: Any
    params: Any

    def __init__(self, repo=None, experiment: str | None = None, run_hash: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True, *, batch_log_interval: int | None = None,
                 run=None):
        super().__init__()
        if batch_log_interval is not None and batch_log_interval < 1:
            raise ValueError(f'batch_log_interval must be a positive number of batches or '
                             f'None, not {batch_log_interval!r}')
        self._aim = AdapterRun(repo=repo, experiment=experiment, run_hash=run_hash,
                               system_tracking_interval=system_tracking_interval,
                               log_system_params=log_system_params,
                               capture_terminal_logs=capture_terminal_logs, run=run)
        self._batch_log_interval = batch_log_interval
        self._batches_seen = 0

    # -- Keras events ------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self._aim.writes:
            return
        model = self.model
        self._aim.set_params('hparams', {k: v for k, v in (self.params or {}).items()
                                         if k != 'verbose'})
        self._aim.set_params('model', self._config_of(model, 'model'), merge=False)
        optimizer = getattr(model, 'optimizer', None)
        if optimizer is not None:
            self._aim.set_params('optimizer', self._config_of(optimizer, 'optimizer'),
                                 merge=False)
        self._batches_seen = int(as_number(getattr(optimizer, 'iterations', 0)) or 0)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches_seen += 1
        if not self._batch_log_interval or self._batches_seen % self._batch_log_interval:
            return
        for name, value in self._numbers(logs).items():
            self._aim.track(value, name=name, step=self._batches_seen,
                            context={'subset': 'train', 'batch': True})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        numbers = self._numbers(logs)
        for logged_name, value in numbers.items():
            name, context = EPOCH_NAMES.split(logged_name)
            self._aim.track(value, name=name, step=epoch, epoch=epoch, context=context)
        if not any(name in numbers for name in LEARNING_RATE_NAMES):
            learning_rate = self._learning_rate()
            if learning_rate is not None:
                self._aim.track(learning_rate, name='lr', step=epoch, epoch=epoch, context={})

    def on_train_end(self, logs: dict | None = None) -> None:
        self._aim.close()

    def close(self) -> None:
        """Close the run now (a later event reopens it)."""
        self._aim.close()

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def _numbers(logs: dict | None) -> dict[str, float]:
        numbers = {}
        for name, raw_value in (logs or {}).items():
            value = number_or_warn(raw_value, name, 'aim.keras.AimCallback')
            if value is None:
                continue
            numbers[name] = value
        return numbers

    @staticmethod
    def _config_of(obj: Any, what: str) -> dict:
        config: dict[str, Any] = {'class': type(obj).__name__}
        name = getattr(obj, 'name', None)
        if isinstance(name, str):
            config['name'] = name
        try:
            config['config'] = to_param_value(obj.get_config())
        except Exception as error:  # a custom layer without get_config must not stop fit()
            warn_once(f'keras-config-{what}',
                      f'AimCallback could not save the {what} config ({error}); '
                      f'implement get_config() on it to have it saved')
        return config

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.model, 'optimizer', None)
        if optimizer is None:
            return None
        try:
            learning_rate = getattr(optimizer, 'learning_rate', None)
            if learning_rate is None:
                learning_rate = getattr(optimizer, 'lr', None)
            if callable(learning_rate) and not hasattr(learning_rate, 'numpy'):
                learning_rate = learning_rate(optimizer.iterations)  # a schedule
            return as_number(learning_rate)
        except Exception:
            return None


def callback_class(callback_base: type, module: str) -> type:
    """``AimCallback`` built on ``callback_base`` (``keras.callbacks.Callback`` or
    ``tf.keras.callbacks.Callback``)."""
    return type('AimCallback', (_KerasCallbackBehaviour, callback_base), {
        '__module__': module,
        '__qualname__': 'AimCallback',
        '__doc__': _KerasCallbackBehaviour.__doc__,
    })
