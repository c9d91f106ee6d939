"""PyTorch Lightning logger: ``Trainer(logger=AimLogger(experiment='mnist'))``.

Works with both ``import lightning`` and ``import pytorch_lightning``: ``AimLogger`` is
built on the package the program imported (``lightning`` first when both are), and
:func:`logger_class_for` builds it on the other one.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

from aim.sdk.adapters.adapter_run import (
    AdapterRun,
    ContextFromAffixes,
    as_number,
    namespace_to_dict,
    number_or_warn,
)

__all__ = ['AimLogger', 'logger_class_for']

PACKAGES = ('lightning.pytorch', 'pytorch_lightning')


class _AimLoggerBehaviour:
    """A Lightning logger that writes hparams and metrics to an aim Run.

    Metrics named ``train_*``/``val_*``/``test_*`` are tracked without the prefix and
    with context ``{'subset': 'train' | 'val' | 'test'}`` (``context_prefixes`` and
    ``context_postfixes`` map other affixes to other contexts); ``epoch`` is popped from
    each logged dict and becomes the points' epoch. Aim objects (``Image``, ``Text``, ...,
    or a list of them) passed to ``logger.log_metrics`` are tracked as they are, as Aim's
    logger does; ``logger.experiment`` is the Run, for ``logger.experiment.track(Image(x),
    name=..., step=...)``. Only global rank 0 writes. Pass
    ``run_hash`` to continue a run (for instance when resuming from a checkpoint: the
    run hash is the logger's ``version`` and names the checkpoint folder).
    """
    # Lightning's rank_zero_only, set on the class built by logger_class_for
    _rank_zero_only: Any

    def __init__(self, repo=None, experiment: str | None = None, run_hash: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True, *,
                 train_metric_prefix: str | None = 'train_',
                 val_metric_prefix: str | None = 'val_',
                 test_metric_prefix: str | None = 'test_',
                 context_prefixes: Mapping[str, Mapping] | None = None,
                 context_postfixes: Mapping[str, Mapping] | None = None,
                 run_name: str | None = None, run=None):
        super().__init__()
        self._aim = AdapterRun(repo=repo, experiment=experiment, run_hash=run_hash,
                               system_tracking_interval=system_tracking_interval,
                               log_system_params=log_system_params,
                               capture_terminal_logs=capture_terminal_logs, run=run)
        self._run_name = run_name
        prefixes: Any = context_prefixes
        if prefixes is None:
            prefixes = ContextFromAffixes.subsets({
                train_metric_prefix or '': 'train', val_metric_prefix or '': 'val',
                test_metric_prefix or '': 'test'}).prefixes
        self._names = ContextFromAffixes(dict(prefixes), context_postfixes)

    # -- what Lightning asks of a logger --------------------------------------------
    @property
    def experiment(self):
        """The aim Run (``None`` outside global rank 0)."""
        if not self._rank_zero():
            return None
        run = self._aim.run
        if run is not None and self._run_name is not None and run.name != self._run_name:
            run.name = self._run_name
        return run

    @property
    def name(self) -> str:
        return self._aim.experiment or 'aim'

    @property
    def version(self) -> str | None:
        """The run hash; Lightning names the checkpoint folder after it."""
        if self._aim.run_hash is None:
            _ = self.experiment  # creates the run (on rank 0), which gives it its hash
        return self._aim.run_hash

    @property
    def save_dir(self) -> None:
        # Checkpoints belong in the trainer's root dir, not in the aim repository.
        return None

    @property
    def run_hash(self) -> str | None:
        return self.version

    def log_hyperparams(self, params, *args: Any, **kwargs: Any) -> None:
        if not self._rank_zero():
            return
        self._aim.set_params('hparams', namespace_to_dict(params))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if not self._rank_zero():
            return
        metrics = dict(metrics)
        epoch = as_number(metrics.pop('epoch', None))
        for logged_name, raw_value in metrics.items():
            value: Any = raw_value if _is_objects(raw_value) else number_or_warn(
                raw_value, logged_name, 'aim.pytorch_lightning.AimLogger')
            if value is None:
                continue
            name, context = self._names.split(logged_name)
            self._aim.track(value, name=name, step=step,
                            epoch=int(epoch) if epoch is not None else None, context=context)

    def finalize(self, status: str) -> None:
        # Lightning calls this after fit/validate/test; a later stage reopens the run.
        self._aim.close()

    def log_graph(self, model, input_array=None) -> None:
        pass

    def after_save_checkpoint(self, checkpoint_callback) -> None:
        pass

    def _rank_zero(self) -> bool:
        rank = getattr(self._rank_zero_only, 'rank', None)
        if rank is None:
            return self._aim.writes
        return rank == 0


def _is_objects(value: Any) -> bool:
    """An Image, Text, Distribution, Audio or Figure, or a non-empty list of them."""
    from aim.sdk.objects import is_object
    if isinstance(value, (list, tuple)):
        return bool(value) and all(is_object(v) for v in value)
    return is_object(value)


_classes: dict[str, type] = {}


def logger_class_for(package: str) -> type:
    """``AimLogger`` built on the ``Logger`` base of ``'lightning.pytorch'`` or
    ``'pytorch_lightning'``. Both trainers accept either (they duck-type loggers); this is
    for code that checks ``isinstance(logger, <package>.loggers.Logger)``."""
    if package not in PACKAGES:
        raise ValueError(f'package must be one of {PACKAGES}, not {package!r}')
    if package not in _classes:
        loggers = importlib.import_module(f'{package}.loggers.logger')
        utilities = importlib.import_module(f'{package}.utilities')
        _classes[package] = type('AimLogger', (_AimLoggerBehaviour, loggers.Logger), {
            '__module__': __name__,
            '__qualname__': 'AimLogger',
            '__doc__': _AimLoggerBehaviour.__doc__,
            '_rank_zero_only': staticmethod(utilities.rank_zero_only),
        })
    return _classes[package]


def _default_package() -> str:
    # Prefer the package the program already imported.
    for package in PACKAGES:
        if package in sys.modules:
            return package
    for package in PACKAGES:
        try:
            importlib.import_module(package)
            return package
        except ImportError:
            continue
    raise ImportError('aim.pytorch_lightning needs Lightning: pip install lightning '
                      '(or pytorch-lightning)')


AimLogger = logger_class_for(_default_package())
