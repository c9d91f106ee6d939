"""What every framework adapter shares: the run it writes to, the rank check, and the
translation of logged names and values into ``run.track`` arguments.

Adapters stay thin: they turn a framework's events into calls on :class:`AdapterRun`
and never touch storage or create runs themselves. Nothing here imports a framework.
"""
from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Environment variables that carry the global rank, in the order launchers set them
# (torchrun/accelerate/deepspeed, MPI implementations, SLURM).
GLOBAL_RANK_VARIABLES = ('RANK', 'PMI_RANK', 'OMPI_COMM_WORLD_RANK', 'SLURM_PROCID')
NODE_RANK_VARIABLES = ('NODE_RANK', 'GROUP_RANK')


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        return None


def is_global_rank_zero() -> bool:
    """Whether the launcher made this process global rank 0 (true when run alone)."""
    for name in GLOBAL_RANK_VARIABLES:
        rank = _int_env(name)
        if rank is not None:
            return rank == 0
    local_rank = _int_env('LOCAL_RANK')
    if local_rank is None:
        return True
    # Only LOCAL_RANK is set: rank 0 is the first process of the first node.
    node_rank = next((r for r in map(_int_env, NODE_RANK_VARIABLES) if r is not None), 0)
    return local_rank == 0 and node_rank == 0


_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """Warn about a side-channel problem once per process, then stay quiet."""
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


class AdapterRun:
    """The Run an adapter writes to, created on first use.

    Only the global rank 0 process creates and writes the run unless
    ``all_ranks=True``; on other ranks :attr:`run` is ``None`` and :meth:`track` and
    :meth:`set_params` do nothing. Given ``run_hash`` it continues that run. After
    :meth:`close`, the next use reopens the same run (Lightning's ``test()`` after
    ``fit()``, Hugging Face's ``evaluate()`` after ``train()``).
    """

    def __init__(self, repo=None, experiment: str | None = None, run_hash: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True, run=None, all_ranks: bool = False):
        self.repo = repo
        self.experiment = experiment
        self.run_hash = run_hash
        self.system_tracking_interval = system_tracking_interval
        self.log_system_params = log_system_params
        self.capture_terminal_logs = capture_terminal_logs
        self.all_ranks = all_ranks
        self._run = run
        # A run handed in by the caller belongs to the caller: we never close it.
        self._owns_run = run is None

    @property
    def writes(self) -> bool:
        """Whether this process writes (rank 0, or every rank when asked)."""
        return self.all_ranks or is_global_rank_zero()

    @property
    def is_open(self) -> bool:
        return self._run is not None

    @property
    def run(self):
        """The Run, created or resumed on first access; ``None`` on non-zero ranks."""
        if self._run is None and self.writes:
            self._run = self._open_run()
            self.run_hash = self._run.hash
        return self._run

    def _open_run(self):
        from aim.sdk.run import Run

        kwargs: dict[str, Any] = dict(
            repo=self.repo,
            system_tracking_interval=self.system_tracking_interval,
            log_system_params=self.log_system_params,
            capture_terminal_logs=self.capture_terminal_logs,
        )
        if self.experiment is not None:
            kwargs['experiment'] = self.experiment
        return Run(self.run_hash, **kwargs)

    def track(self, value, name: str, step: int | None = None, epoch: int | None = None,
              context: Mapping | None = None) -> None:
        run = self.run
        if run is None:
            return
        run.track(value, name=name, step=step, epoch=epoch, context=dict(context or {}))

    def track_number(self, value, name: str, step: int | None = None,
                     context: Mapping | None = None) -> None:
        """``track`` a value that may arrive as a numpy or torch scalar; anything that is
        not a number is skipped."""
        number = as_number(value)
        if number is not None:
            self.track(number, name=name, step=step, context=context)

    def set_params(self, key: str, params: Mapping, merge: bool = True) -> None:
        """``run[key] = params``, merged into what the run already holds under ``key``."""
        run = self.run
        if run is None:
            return
        value = to_param_value(params)
        if merge and isinstance(value, dict):
            current = run.get(key, None)
            if isinstance(current, dict):
                value = {**current, **value}
        run[key] = value

    def close(self) -> None:
        run, self._run = self._run, None
        if run is not None and self._owns_run:
            run.close()
        # A caller's run that we let go of is reopened by hash like any other.
        self._owns_run = True


class AdapterRunAccess:
    """The run accessors every adapter offers; the adapter keeps its ``AdapterRun`` in
    ``self._aim``."""

    _aim: AdapterRun

    @property
    def experiment(self):
        """The aim Run (created on first use; ``None`` where this process does not write)."""
        return self._aim.run

    @property
    def run(self):
        return self.experiment

    @property
    def run_hash(self) -> str | None:
        """The hash of the run written to (``None`` before it exists); pass it as
        ``run_hash=`` to continue the run later, without opening it now."""
        return self._aim.run_hash


class ContextFromAffixes:
    """Turns a logged name such as ``val_loss`` into ``('loss', {'subset': 'val'})``.

    ``prefixes`` and ``postfixes`` map an affix to the context it stands for; the longest
    matching affix wins, and a name that is nothing but the affix is left as it is.
    """

    def __init__(self, prefixes: Mapping[str, Mapping] | None = None,
                 postfixes: Mapping[str, Mapping] | None = None,
                 default_context: Mapping | None = None):
        self.prefixes = sorted((prefixes or {}).items(), key=lambda kv: -len(kv[0]))
        self.postfixes = sorted((postfixes or {}).items(), key=lambda kv: -len(kv[0]))
        self.default_context = dict(default_context or {})

    @classmethod
    def subsets(cls, prefixes: Mapping[str, str | None], **kwargs) -> ContextFromAffixes:
        """From ``{'train_': 'train', ...}``; an empty or ``None`` prefix is skipped."""
        contexts = {prefix: {'subset': subset} for prefix, subset in prefixes.items()
                    if prefix and subset}
        return cls(contexts, **kwargs)

    def split(self, name: str) -> tuple[str, dict]:
        context: dict = {}
        matched = False
        for prefix, prefix_context in self.prefixes:
            if name.startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix):]
                context.update(prefix_context)
                matched = True
                break
        for postfix, postfix_context in self.postfixes:
            if name.endswith(postfix) and len(name) > len(postfix):
                name = name[:-len(postfix)]
                context.update(postfix_context)
                matched = True
                break
        if not matched:
            context.update(self.default_context)
        return name, context


def as_number(value) -> int | float | None:
    """A plain int or float for a logged scalar (Python, numpy, torch, Keras, TF), else None.

    Libraries are recognised by the methods their scalars have, so none is imported.
    """
    if value is None or isinstance(value, (str, bytes)):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    for method in ('item', 'numpy'):
        convert = getattr(value, method, None)
        if callable(convert):
            try:
                converted = convert()
            except Exception:
                continue
            if converted is not value:
                result = as_number(converted)
                if result is not None:
                    return result
    if hasattr(value, 'shape') and tuple(value.shape) in ((), (1,)):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    return None


def number_or_warn(raw_value, logged_name: str, who: str) -> int | float | None:
    """``as_number(raw_value)``; for anything else, one warning per name that ``who``
    (``'AimCallback'``, ``'AimLogger'``) skipped it, and None."""
    value = as_number(raw_value)
    if value is None:
        warn_once(f'{who}-skip-{logged_name}', f'{who} skipped log {logged_name!r}: '
                                               f'{type(raw_value).__name__} is not a number')
    return value


def epoch_index(epoch) -> int | None:
    """The 0-based index of the epoch a fractional epoch counter is in.

    Trainers that count epochs as floats report 1.0 at the end of the first epoch; that
    point belongs to epoch 0, as Lightning and Keras number it.
    """
    number = as_number(epoch)
    if number is None or not math.isfinite(number):
        return None
    return max(0, math.ceil(number) - 1) if isinstance(number, float) else max(0, number)


def to_param_value(value, _depth: int = 0):
    """A JSON-like copy of ``value`` that ``run[key] = ...`` accepts.

    Dict keys become strings; tuples, sets and other sequences (OmegaConf lists) become
    lists; numpy/torch scalars become numbers; anything else becomes its ``str`` so that a
    config never fails to save.
    """
    if _depth > 32:
        return str(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        # params hold int64 exactly; a larger int (a 128-bit seed) is kept as its digits
        return value if isinstance(value, float) or -2 ** 63 <= value < 2 ** 63 else str(value)
    if isinstance(value, Mapping):
        return {str(k): to_param_value(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (Sequence, set, frozenset)) and \
            not isinstance(value, (bytes, bytearray)):  # lists, tuples, OmegaConf ListConfig
        items: Iterable = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_param_value(v, _depth + 1) for v in items]
    number = as_number(value)
    if number is not None:
        return number
    return str(value)


def namespace_to_dict(params) -> dict:
    """Hyperparameters as a dict from a dict, ``argparse.Namespace`` or OmegaConf config."""
    if params is None:
        return {}
    if type(params).__module__.startswith('omegaconf'):
        from omegaconf import OmegaConf  # only reached when the caller passed one

        container = OmegaConf.to_container(params, resolve=True)
        return container if isinstance(container, dict) else {'params': container}
    if isinstance(params, Mapping):
        return dict(params)
    if hasattr(params, '__dict__'):
        return dict(vars(params))
    raise TypeError(
        f'hyperparameters must be a dict, argparse.Namespace or OmegaConf config, '
        f'not {type(params).__name__}; convert them to a dict before logging')
