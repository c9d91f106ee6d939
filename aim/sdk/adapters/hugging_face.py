"""Hugging Face Trainer callback: ``Trainer(..., callbacks=[AimCallback(experiment='glue')])``."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers.trainer_callback import ExportableState, TrainerCallback

from aim.sdk.adapters.adapter_run import (
    AdapterRun,
    AdapterRunAccess,
    ContextFromAffixes,
    epoch_index,
    number_or_warn,
    to_param_value,
)

__all__ = ['AimCallback']

DEFAULT_PREFIXES = {'train_': 'train', 'eval_': 'eval', 'test_': 'test'}


class AimCallback(AdapterRunAccess, TrainerCallback, ExportableState):
    """Tracks a Trainer's ``TrainingArguments`` (as ``hparams``), the model config (as
    ``model``) and every logged number, at ``step=state.global_step`` and with the epoch.

    ``train_``/``eval_``/``test_`` prefixes become context ``{'subset': ...}``; other
    names (``loss``, ``learning_rate``, ``grad_norm``) get an empty context. With several
    evaluation datasets (``eval_dataset={'a': ..., 'b': ...}``) the Trainer logs
    ``eval_a_loss``; that is ``loss`` with ``{'subset': 'eval', 'sub_dataset': 'a'}``. Only the
    world's main process writes. The run hash is saved in every checkpoint, so
    ``trainer.train(resume_from_checkpoint=...)`` continues the same run; ``run_hash``
    continues a given one.
    """

    def __init__(self, repo=None, experiment: str | None = None, run_hash: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True,
                 context_prefixes: Mapping[str, str] | None = None):
        self._aim = AdapterRun(repo=repo, experiment=experiment, run_hash=run_hash,
                               system_tracking_interval=system_tracking_interval,
                               log_system_params=log_system_params,
                               capture_terminal_logs=capture_terminal_logs)
        self._context_prefixes = dict(context_prefixes or DEFAULT_PREFIXES)
        self._names = ContextFromAffixes.subsets(self._context_prefixes)

    # -- checkpoint state: the run hash travels with trainer_state.json -------------
    def state(self) -> dict:
        repo = self._aim.repo
        return {
            'args': {
                'repo': getattr(repo, 'path', repo),
                'experiment': self._aim.experiment,
                'run_hash': self._aim.run_hash,
                'system_tracking_interval': self._aim.system_tracking_interval,
                'log_system_params': self._aim.log_system_params,
                'capture_terminal_logs': self._aim.capture_terminal_logs,
                'context_prefixes': self._context_prefixes,
            },
            'attributes': {},
        }

    def _adopt_checkpoint_run_hash(self, state) -> None:
        if self._aim.run_hash is not None:
            return
        saved = (getattr(state, 'stateful_callbacks', None) or {}).get(type(self).__name__)
        if isinstance(saved, list):
            saved = saved[0] if saved else None
        if isinstance(saved, dict):
            self._aim.run_hash = (saved.get('args') or {}).get('run_hash')

    # -- trainer events ---------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, **kwargs: Any):
        if not state.is_world_process_zero:
            return
        self._adopt_checkpoint_run_hash(state)
        self._aim.set_params('hparams', args.to_sanitized_dict())
        config = getattr(model, 'config', None)
        if config is not None and hasattr(config, 'to_dict'):
            self._aim.set_params('model', to_param_value(config.to_dict()), merge=False)

    def on_log(self, args, state, control, logs: Mapping[str, Any] | None = None,
               **kwargs: Any):
        if not state.is_world_process_zero or not logs:
            return
        epoch = epoch_index(state.epoch) if state.epoch is not None else None
        datasets = _evaluated_datasets(logs)
        for logged_name, raw_value in logs.items():
            if logged_name == 'epoch':
                continue
            value = number_or_warn(raw_value, logged_name, 'aim.hugging_face.AimCallback')
            if value is None:
                continue
            name, context = self._names.split(logged_name)
            name, context = _sub_dataset(name, context, datasets)
            self._aim.track(value, name=name, step=state.global_step, epoch=epoch,
                            context=context)

    def on_train_end(self, args, state, control, **kwargs: Any):
        self._aim.close()

    def close(self) -> None:
        """Close the run now (a later log reopens it)."""
        self._aim.close()


# Every evaluation the Trainer logs carries ``<prefix>_runtime``; with several evaluation
# datasets the prefix is ``eval_<name>``, which is how the names are told apart from
# metrics whose own names hold underscores (``eval_samples_per_second``).
_RUNTIME_SUFFIX = '_runtime'


def _evaluated_datasets(logs: Mapping[str, Any]) -> list[str]:
    """The dataset names of ``eval_<name>_runtime`` keys, longest first."""
    names = set()
    for key in logs:
        for prefix in ('eval_', 'test_'):
            if key.startswith(prefix) and key.endswith(_RUNTIME_SUFFIX):
                middle = key[len(prefix):-len(_RUNTIME_SUFFIX)]
                if middle:
                    names.add(middle)
    return sorted(names, key=len, reverse=True)


def _sub_dataset(name: str, context: dict, datasets: list[str]) -> tuple[str, dict]:
    """``a_loss`` in an evaluation of dataset ``a`` -> ``loss`` with ``sub_dataset``."""
    if not datasets or not context.get('subset'):
        return name, context
    for dataset in datasets:
        if name.startswith(dataset + '_') and len(name) > len(dataset) + 1:
            return name[len(dataset) + 1:], dict(context, sub_dataset=dataset)
    return name, context
