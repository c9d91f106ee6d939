"""Run: one experiment run — params, props and tracked series."""
from __future__ import annotations

import _thread
import atexit
import datetime as _dt
import os
import signal
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aim.errors import (
    MissingRunError,
    ParamsInputError,
    ReadOnlyRunError,
    RunError,
)
from aim.ext.exception_resistant import noexcept
from aim.storage.encoding import (
    MAX_PARAMS_BYTES,
    canonical_context,
    check_param_keys,
    check_text,
    delete_param_path,
    dumps_params,
    loads_params,
    set_param_path,
    short_repr,
    to_json_value,
)
from aim.storage.journal import RUN_HASH_RE

if TYPE_CHECKING:
    from aim.sdk.repo import Repo
    from aim.sdk.trace import Metric

DEFAULT_SYSTEM_TRACKING_INTERVAL = 10
_MISSING = object()


class _NotGiven:
    """Sentinel for "argument not given" where None means something."""

    def __repr__(self) -> str:
        return 'NOT_GIVEN'


NOT_GIVEN = _NotGiven()


def _new_hash() -> str:
    return os.urandom(12).hex()  # 24 hex characters, like Aim's


def _path(key) -> tuple:
    if isinstance(key, tuple):
        return key
    return (key,)


def _param_path(key) -> list[str]:
    """The keys of ``run[key] = ...``: str only, so that what is read back is what was
    written (``run['a', 1]`` would otherwise become ``{'a': {'1': ...}}``)."""
    path = _path(key)
    if not path:
        raise ParamsInputError('run[()] = value: the key path is empty; name the param, '
                               "e.g. run['hparams'] = {...}")
    for part in path:
        if not isinstance(part, str):
            raise ParamsInputError(f'run[{short_repr(key)}] = value: param keys must be str, got '
                                   f'{type(part).__name__} {short_repr(part)}. Use '
                                   f'run[{str(part)!r}], or a dict value.')
        check_text(part, f'the param key {short_repr(part)}')
    return list(path)


def _check_key(part) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, (int, float, bool)) or part is None:
        import json
        return json.dumps(part)
    raise TypeError(f'param keys must be str (or a tuple of str for a path), got '
                    f'{type(part).__name__}: {part!r:.40}')


class RunProps:
    """``run.props``: the structured properties of a run."""

    def __init__(self, run: Run):
        self._run = run

    def __getattr__(self, name):
        if name in ('name', 'experiment', 'tags', 'description', 'archived', 'creation_time',
                    'created_at', 'end_time', 'finalized_at', 'active', 'duration', 'hash',
                    'updated_at'):
            return getattr(self._run, name)
        raise AttributeError(name)

    def __repr__(self) -> str:
        r = self._run
        return (f'RunProps(name={r.name!r}, experiment={r.experiment!r}, tags={r.tags!r}, '
                f'creation_time={r.creation_time!r})')


class Run:
    """A run of an experiment: track series with :meth:`track`, set params with ``run[key]``.

    ``Run()`` creates a new run in the default repository (the nearest ``.aim`` upwards
    from the working directory, created if there is none). ``Run(hash)`` reopens a run for
    writing and continues its series; ``Run(hash, read_only=True)`` only reads it.
    """

    def __init__(self, run_hash: str | None = None, *, repo=None, read_only: bool = False,
                 experiment: str | None = None, force_resume: bool = False,
                 system_tracking_interval: float | None = DEFAULT_SYSTEM_TRACKING_INTERVAL,
                 log_system_params: bool = False, capture_terminal_logs: bool = True,
                 hashname: str | None = None, offline: bool | None = None):
        from aim.sdk.repo import Repo
        if hashname is not None:
            if run_hash is not None and run_hash != hashname:
                raise ValueError('give either run_hash or hashname (they are the same), not both')
            run_hash = hashname
        self.repo: Repo = Repo._resolve(repo, init=not read_only)
        self.read_only = read_only
        self._live: Any = None
        self._index_row: dict | None = None
        self._params: Any = _MISSING
        self._closed = False
        self._side_channels: list = []
        self._close_lock = threading.Lock()
        self._artifacts_lock = threading.Lock()
        if run_hash is not None and not isinstance(run_hash, str):
            raise TypeError(f'run_hash must be a str, got {type(run_hash).__name__}')
        if read_only:
            if run_hash is None:
                raise ValueError('Run(read_only=True) needs the hash of an existing run')
            self.hash = run_hash
            self._load_readonly()
            return
        store = self.repo._store
        remote = getattr(store, 'remote', False)
        if offline is None:
            offline = remote and os.environ.get('AIM_OFFLINE', '').lower() in ('1', 'true',
                                                                               'yes', 'on')
        if offline and not remote:
            raise ValueError("offline=True is for remote repositories (repo='aim://host:port'); "
                             'a local run is always written at once.')
        if remote and not offline:
            store.check()   # one clear error now if the server cannot be reached
        if run_hash is None:
            run_hash = _new_hash()
            exists = False
        else:
            if not RUN_HASH_RE.match(run_hash):
                raise ValueError(f'invalid run hash {run_hash!r}: use up to 64 letters, digits, '
                                 f'"-", "_" or "."')
            exists = False if remote else store.run_exists(run_hash)
        self.hash = run_hash
        now = time.time()
        props: dict[str, Any] = {}
        if not exists:
            props.update(name=f'Run: {run_hash}', experiment=experiment or 'default',
                         description=None, tags=[], archived=False, creation_time=now)
        elif experiment is not None:
            props['experiment'] = experiment
        if remote:
            from aim.remote.store import RemoteLiveRun
            self._live = RemoteLiveRun(store, run_hash, initial_props=props,
                                       offline=bool(offline), force_resume=force_resume,
                                       experiment=experiment)
        else:
            from aim.storage.repository import LiveRun
            self._live = LiveRun(store, run_hash, create=not exists, initial_props=props)
        # the hot path, bound once: no extra call layer
        self.track = self._live.writer.track  # type: ignore[method-assign]
        from aim.ext.exception_resistant import is_safe_mode_enabled, noexcept
        if is_safe_mode_enabled():  # read once, when the run is created
            self.track = noexcept(self.track)  # type: ignore[method-assign]
        _register_live(self)
        self._start_side_channels(system_tracking_interval, log_system_params,
                                  capture_terminal_logs)

    # construction helpers ---------------------------------------------------------------
    @classmethod
    def _from_index_row(cls, repo: Repo, row: dict) -> Run:
        """A read-only Run over an index row, without touching the run file."""
        run = cls.__new__(cls)
        run.repo = repo
        run.read_only = True
        run._live = None
        run._index_row = row
        run._params = _MISSING
        run._closed = False
        run._side_channels = []
        run._close_lock = threading.Lock()
        run.hash = row['hash']
        return run

    def _load_readonly(self) -> None:
        row = self.repo._store.index.run_row(self.hash)
        if row is None:
            if not self.repo._store.run_exists(self.hash):
                raise MissingRunError(f'Cannot find run {self.hash!r} in the repository at '
                                      f'{self.repo.path}.', self.hash)
            store = self.repo._store
            store.recover_run(self.hash)
            row = store.index.run_row(self.hash)
            if row is None:  # data without an index row: index it now (or just read it)
                row = store.index_row_from_data(self.hash)
        self._index_row = row

    def _start_side_channels(self, interval, log_system_params, capture_terminal_logs) -> None:
        tracker_class: Any
        try:
            from aim.ext.resource_tracker import ResourceTracker as tracker_class
        except ImportError:
            tracker_class = None
        if tracker_class is not None:
            check = getattr(tracker_class, 'check_interval', None)
            interval = check(interval) if check else interval
            if interval:
                tracker = tracker_class(_weak_side_track(self), interval)
                tracker.start()
                self._side_channels.append(tracker)
        if capture_terminal_logs:
            try:
                from aim.ext.terminal_capture import TerminalLogCapture
                assert self._live is not None
                capture = TerminalLogCapture(self._live.add_log_lines)
                capture.start()
                self._side_channels.append(capture)
            except Exception as e:  # a side channel never stops a training script
                warnings.warn(f'aim: terminal log capture is off ({e})', RuntimeWarning,
                    stacklevel=2)
        if log_system_params:
            try:
                from aim.ext.environment import collect_system_params
                self['__system_params'] = collect_system_params()
            except Exception as e:
                warnings.warn(f'aim: could not record system params ({e})', RuntimeWarning,
                    stacklevel=2)


    # tracking -----------------------------------------------------------------------------
    def track(self, value, name: str | None = None, step: int | None = None,
              epoch: int | None = None, *, context: dict | None = None) -> None:
        """Track ``value`` (a number) in the series ``name``/``context`` at ``step``.

        ``step=None`` continues after the series' last step; a value at an existing step
        replaces it. ``context=None`` is the same as ``{}``. A dict value with
        ``name=None`` tracks each of its keys.
        """
        # Write-mode runs replace this method with the journal writer's bound method.
        if self._closed:
            raise RunError(f'Run {self.hash} is closed; open Run(run_hash={self.hash!r}) to '
                           f'continue tracking into it.', self.hash)
        raise ReadOnlyRunError(f'Run {self.hash} is open read-only; it cannot track values.',
                               self.hash)

    # params -------------------------------------------------------------------------------
    def _params_tree(self) -> dict:
        if self._params is _MISSING:
            if self._live is not None:
                texts = [self._live.params_text]
            else:
                texts = [(self._index_row or {}).get('params') or '{}']
            for attempt in range(2):
                try:
                    self._params = loads_params(texts[-1]) or {}
                    break
                except ValueError:
                    if attempt or self._live is not None:
                        raise RunError(
                            f'The params of run {self.hash} are damaged (not valid JSON); its '
                            f'points still read. `aim storage check` names what is damaged.',
                            self.hash) from None
                    # the index row is a derived copy: read the run's own data instead
                    texts.append(self.repo._store.run_data(self.hash).get_params_text()
                                 or '{}')
        return self._params

    def _require_writable(self) -> None:
        if self._live is None:
            what = 'closed' if self._closed else 'open read-only'
            raise ReadOnlyRunError(f'Run {self.hash} is {what}; open Run(run_hash={self.hash!r}) '
                                   f'to change it.', self.hash)

    @noexcept
    def __setitem__(self, key, value) -> None:
        self._require_writable()
        keys = None if key is Ellipsis else _param_path(key)
        where = f'run[{short_repr(key)}]'
        clean = to_json_value(value, where)
        check_param_keys(dict.fromkeys(keys or ()), 'run[...]')
        check_param_keys(clean, where)
        tree = self._params_tree()
        if keys is None:
            if not isinstance(clean, dict):
                raise TypeError('run[...] = value needs a dict of params')
            new_tree = clean
        else:
            import copy
            new_tree = copy.deepcopy(tree)
            set_param_path(new_tree, keys, clean)
        text = dumps_params(new_tree)
        size = len(text) if text.isascii() else len(text.encode('utf-8'))
        if size > MAX_PARAMS_BYTES:
            raise ParamsInputError(
                f'{where} = ... would make the params of run {self.hash} {size / 1e6:.1f} MB '
                f'as JSON, over the {MAX_PARAMS_BYTES / 1e6:g} MB a run may hold (every '
                f'change rewrites them, and queries read them). Save large data to a file '
                f'and store its path; the params are unchanged.')
        assert self._live is not None
        if getattr(self._live, 'remote', False):
            # the change itself travels: a run resumed offline does not know the
            # server's params, and setting one key must not replace the others
            self._live.set_param(keys, dumps_params(clean), text)
        else:
            self._live.set_params_text(text)
        self._params = new_tree

    @noexcept
    def set(self, key, value, strict: bool = True) -> None:
        try:
            self[key] = value
        except TypeError:
            if strict:
                raise
            self[key] = repr(value)

    def __getitem__(self, key):
        import copy
        tree = self._params_tree()
        if key is Ellipsis:
            return copy.deepcopy(tree)
        node = tree
        for part in _path(key):
            part = _check_key(part)
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f'No key {_path(key)!r} is present in the params of run '
                               f'{self.hash}.')
            node = node[part]
        return copy.deepcopy(node)

    def get(self, key, default: Any = None, strict: bool = True):
        try:
            return self[key]
        except KeyError:
            return default

    def __delitem__(self, key) -> None:
        self._require_writable()
        import copy
        tree = copy.deepcopy(self._params_tree())
        path = [_check_key(p) for p in _path(key)] if key is not Ellipsis else None
        assert self._live is not None  # _require_writable() checked
        remote = getattr(self._live, 'remote', False)
        if path is None:
            tree = {}
        elif not delete_param_path(tree, path) and not (remote and self._live.offline):
            return   # nothing to delete (offline, the server may have it: sent anyway)
        if remote:
            self._live.del_param(path, dumps_params(tree))
        else:
            self._live.set_params_text(dumps_params(tree))
        self._params = tree

    def __contains__(self, key) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    # props --------------------------------------------------------------------------------
    def _props(self) -> dict:
        if self._live is not None:
            return self._live.props
        row = self._index_row or {}
        import json
        return {**row, 'tags': json.loads(row.get('tags') or '[]'),
                'archived': bool(row.get('archived'))}

    def _set_prop(self, **props) -> None:
        if self._live is None:
            # Aim edits the props of a stored run in place (``repo.get_run(h).archived =
            # True``); params and series stay read-only.
            self._set_props_at_rest(props)
            return
        self._live.set_props(props)

    def _set_props_at_rest(self, props: dict) -> None:
        """Change the props of a run that no Run of this process writes, under its write
        lock (so that no writer can start meanwhile and later overwrite them)."""
        store = self.repo._store
        if not hasattr(store, 'set_props_at_rest'):
            raise ReadOnlyRunError(
                f'Run {self.hash} is read-only here and its repository cannot change props '
                f'at rest; open Run(run_hash={self.hash!r}, repo=...) to change them.',
                self.hash)
        # a local repository, a database, or an aim server (aim://, which writes them under
        # the same rules: refused while a writer holds the run)
        current, changes = store.set_props_at_rest(self.hash, props)
        import json
        row = dict(self._index_row or {})
        row.update(changes)
        row['tags'] = json.dumps(current.get('tags') or [], ensure_ascii=False)
        row['archived'] = 1 if current.get('archived') else 0
        self._index_row = row

    @property
    def hashname(self) -> str:
        return self.hash

    @property
    def props(self) -> RunProps:
        return RunProps(self)

    @property
    def name(self) -> str | None:
        return self._props().get('name')

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f'run name must be a str, got {type(value).__name__}')
        check_text(value, 'run name')
        self._set_prop(name=value)

    @property
    def description(self) -> str | None:
        return self._props().get('description')

    @description.setter
    def description(self, value: str | None) -> None:
        if value is not None and not isinstance(value, str):
            raise TypeError(f'run description must be a str, got {type(value).__name__}')
        if value is not None:
            check_text(value, 'run description')
        self._set_prop(description=value)

    @property
    def notes(self) -> str | None:
        """The run's notes (markdown text; the UI's run page edits them in its Notes tab),
        kept with the run's props: ``copy_runs``, export and ``aim server`` carry them.
        None when there are none."""
        value = self._stored_props().get('notes')
        return value if isinstance(value, str) else None

    @notes.setter
    def notes(self, value: str | None) -> None:
        if value is not None and not isinstance(value, str):
            raise TypeError(f'run notes must be a str, got {type(value).__name__}')
        if value is not None:
            check_text(value, 'run notes')
        self._set_prop(notes=value)

    @property
    def experiment(self) -> str | None:
        return self._props().get('experiment')

    @experiment.setter
    def experiment(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise TypeError('experiment must be a non-empty str')
        check_text(value, 'experiment')
        self._set_prop(experiment=value)

    @property
    def tags(self) -> list[str]:
        return list(self._props().get('tags') or [])

    def add_tag(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise TypeError('a tag must be a non-empty str')
        check_text(value, 'tag')
        tags = self.tags
        if value in tags:
            return
        self._set_prop(tags=tags + [value])

    def remove_tag(self, value: str) -> bool:
        tags = self.tags
        if value not in tags:
            return False
        tags.remove(value)
        self._set_prop(tags=tags)
        return True

    @property
    def archived(self) -> bool:
        return bool(self._props().get('archived'))

    @archived.setter
    def archived(self, value: bool) -> None:
        self._set_prop(archived=bool(value))

    @property
    def creation_time(self) -> float | None:
        return self._props().get('creation_time')

    @property
    def created_at(self) -> _dt.datetime | None:
        ts = self.creation_time
        return None if ts is None else _utc_naive(ts)

    @property
    def active(self) -> bool:
        if self._live is not None:
            return True
        if self._props().get('end_time') is not None:
            return False
        return self.repo._store.is_active(self.hash)

    @property
    def end_time(self) -> float | None:
        end = self._props().get('end_time')
        if end is None and self._live is None and not self.active:
            # the writer died without closing: its last sign of life
            props = self._props()
            end = props.get('updated_at') or props.get('creation_time')
        return end

    @property
    def finalized_at(self) -> _dt.datetime | None:
        end = self.end_time
        return None if end is None else _utc_naive(end)

    @property
    def updated_at(self) -> _dt.datetime | None:
        ts = self._props().get('updated_at')
        return None if ts is None else _utc_naive(ts)

    @property
    def duration(self) -> float | None:
        start = self.creation_time
        if start is None:
            return None
        end = None if self.active else self.end_time
        return (end if end is not None else time.time()) - start

    # traces -------------------------------------------------------------------------------
    def _series_rows(self) -> list[dict]:
        if self._live is not None:
            self._live.flush()
        return self.repo._store.index.series_rows(self.hash)

    def _series_summary(self, name: str, context_json: str) -> dict | None:
        if self._live is not None:
            self._live.flush()
        return self.repo._store.index.series_row(self.hash, name, context_json)

    def _read_series(self, metric: Metric, first_step=None, last_step=None, columns=None):
        if self._live is not None:
            self._live.flush()
        return self.repo._store.run_data(self.hash).read_series_by_key(
            metric.name, metric.context_json, first_step, last_step, columns)

    def _metric_from_row(self, row: dict) -> Metric:
        import json

        from aim.sdk.trace import Metric
        return Metric(self, row['name'], json.loads(row['context']), row)

    def get_metric(self, name: str, context: dict | None = None) -> Metric | None:
        """The series ``name``/``context`` of this run, or None if it was never tracked."""
        if not isinstance(name, str):
            raise TypeError(f'metric name must be a str, got {type(name).__name__}')
        if context is not None and not isinstance(context, dict):
            raise TypeError(f'context must be a dict, got {type(context).__name__}')
        context_json = canonical_context(context)
        try:
            check_text(name, 'metric name')
            check_text(context_json, 'context')
        except ParamsInputError:
            return None  # track() refuses such text, so no series has it
        row = self._series_summary(name, context_json)
        return self._metric_from_row(row) if row else None

    get_trace = get_metric

    def metrics(self) -> list[Metric]:
        """Every series of this run."""
        return [self._metric_from_row(r) for r in
                sorted(self._series_rows(), key=lambda r: (r['name'], r['context']))]

    traces = metrics

    def iter_metrics_info(self) -> Iterator[tuple[str, dict, Run]]:
        for m in self.metrics():
            yield m.name, m.context, self

    iter_all_traces = iter_metrics_info

    def get_traces_overview(self) -> list[dict]:
        return [{'name': m.name, 'metric_name': m.name, 'context': m.context,
                 'last_value': m.last_value, 'last_step': m.last_step, 'count': m.count}
                for m in self.metrics()]

    collect_metrics_info = get_traces_overview

    # rich objects -----------------------------------------------------------------------
    def _object_series_rows(self, kind: str | None = None) -> list[dict]:
        if self._live is not None:
            self._live.flush()
        return self.repo._store.object_series_rows(self.hash, kind)

    def _object_series_row(self, name: str, context_json: str) -> dict | None:
        for row in self._object_series_rows():
            if row['name'] == name and row['context'] == context_json:
                return row
        return None

    def _get_sequence(self, kind: str, name: str, context: dict | None):
        from aim.sdk.sequences import sequence_from_row
        if not isinstance(name, str):
            raise TypeError(f'sequence name must be a str, got {type(name).__name__}')
        if context is not None and not isinstance(context, dict):
            raise TypeError(f'context must be a dict, got {type(context).__name__}')
        try:
            context_json = canonical_context(context)
        except (TypeError, ValueError):
            return None
        row = self._object_series_row(name, context_json)
        if row is None or row['kind'] != kind or not row['count']:
            return None
        return sequence_from_row(self, row)

    def get_image_sequence(self, name: str, context: dict | None = None):
        """The images tracked as ``name``/``context`` (an ``Images`` sequence), or None."""
        return self._get_sequence('image', name, context)

    def get_text_sequence(self, name: str, context: dict | None = None):
        return self._get_sequence('text', name, context)

    def get_audio_sequence(self, name: str, context: dict | None = None):
        return self._get_sequence('audio', name, context)

    def get_distribution_sequence(self, name: str, context: dict | None = None):
        return self._get_sequence('distribution', name, context)

    def get_figure_sequence(self, name: str, context: dict | None = None):
        return self._get_sequence('figure', name, context)

    def object_sequences(self, sequence_type=None) -> list:
        """Every object sequence of this run (of one type: 'images', Images, ...)."""
        from aim.sdk.sequences import kind_of, sequence_from_row
        kind = None if sequence_type is None else kind_of(sequence_type)
        if sequence_type is not None and kind is None:
            raise ValueError(f'unknown sequence type {sequence_type!r}')
        return [sequence_from_row(self, r) for r in self._object_series_rows(kind)
                if r['count']]

    def iter_sequence_info_by_type(self, dtypes) -> Iterator[tuple[str, Any, Run]]:
        """(name, context, run) of each sequence whose type is one of ``dtypes`` (Aim's
        names: 'float', 'int', 'aim.image', 'list(aim.image)', 'aim.text', ...)."""
        from aim.sdk.sequences import kind_of
        dtypes = [dtypes] if isinstance(dtypes, str) else list(dtypes)
        if any(d in ('float', 'float64', 'int', 'number', 'metric') for d in dtypes):
            for m in self.metrics():
                yield m.name, m.context, self
        kinds = {kind_of(d) for d in dtypes} - {None}
        for seq in self.object_sequences():
            if seq.KIND in kinds:
                yield seq.name, seq.context, self

    def collect_sequence_info(self, sequence_types='metric', skip_last_value: bool = False
                              ) -> dict:
        """Aim 3.x's overview: ``{'metric': [{'name', 'context', 'values': {...}}],
        'images': [{'name', 'context', 'values': {first_step, last_step, count}}], ...}``."""
        from aim.sdk.sequences import kind_of
        types = [sequence_types] if isinstance(sequence_types, str) else list(sequence_types)
        out: dict = {t: [] for t in types}
        kinds = {t: kind_of(t) for t in types if t != 'metric'}
        unknown = [t for t, k in kinds.items() if k is None]
        if unknown:
            raise ValueError(f'unknown sequence type {unknown[0]!r}: use metric, images, '
                             f'texts, distributions, audios or figures')
        if kinds:
            for seq in self.object_sequences():
                for t, k in kinds.items():
                    if seq.KIND == k:
                        out[t].append({'name': seq.name, 'context': seq.context.to_dict(),
                                       'values': {'first_step': seq.first_step(),
                                                  'last_step': seq.last_step(),
                                                  'count': seq.count}})
        if 'metric' in out:
            for m in self.metrics():
                values = {'first_step': m.first_step, 'last_step': m.last_step,
                          'min': m.min, 'max': m.max, 'count': m.count}
                if not skip_last_value:
                    values['last'] = m.last_value
                out['metric'].append({'name': m.name, 'context': m.context.to_dict(),
                                      'values': values})
        return out

    def _log_rows(self) -> list[tuple[int, float, str]]:
        if self._live is not None:
            self._live.flush()
            return self._live.runfile.read_logs()
        runfile = self.repo._store.open_run_file(self.hash)
        try:
            return runfile.read_logs()
        finally:
            runfile.close()

    def get_terminal_logs(self) -> TerminalLogs:
        return TerminalLogs(self._log_rows())

    # log records and progress (Aim 3.29) --------------------------------------------------
    def _log(self, level: int, msg, kwargs: dict) -> None:
        from aim.sdk.log_records import format_line
        self._require_writable()
        assert self._live is not None
        self._live.add_log_lines([(time.time(), format_line(str(msg), level, kwargs))])

    def log_debug(self, msg: str, **kwargs) -> None:
        """Keep a DEBUG record with the run (``get_log_records()``; the run page shows it
        among the terminal output). Keyword arguments are kept with it."""
        self._log(10, msg, kwargs)

    def log_info(self, msg: str, **kwargs) -> None:
        """Keep an INFO record with the run (see ``log_debug``)."""
        self._log(20, msg, kwargs)

    def log_warning(self, msg: str, **kwargs) -> None:
        """Keep a WARNING record with the run (see ``log_debug``)."""
        self._log(30, msg, kwargs)

    def log_error(self, msg: str, **kwargs) -> None:
        """Keep an ERROR record with the run (see ``log_debug``)."""
        self._log(40, msg, kwargs)

    def get_log_records(self):
        """The run's log records (``log_info`` ...), oldest first: a ``LogRecords``."""
        from aim.sdk.log_records import LogRecords, parse_line
        records = (parse_line(t, line) for _, t, line in self._log_rows())
        return LogRecords([r for r in records if r is not None])

    def report_progress(self, *, expect_next_in: int = 0, block: bool = False) -> None:
        """Say the run is alive; ``expect_next_in`` seconds is when to expect the next
        report (kept as the ``progress`` prop: ``{'reported_at', 'expect_next_in'}``).
        ``block`` is accepted for Aim compatibility: the report is written at once."""
        self._set_prop(progress={'reported_at': time.time(),
                                 'expect_next_in': int(expect_next_in)})

    def report_successful_finish(self, *, block: bool = True) -> None:
        """Mark that the run's work ended well (the ``successful_finish`` prop), as Aim's
        status watcher is told; closing the run is still what ends it."""
        self._set_prop(successful_finish=True,
                       progress={'reported_at': time.time(), 'expect_next_in': 0})

    def _stored_props(self) -> dict:
        """Every prop the run's data holds, also those the index does not keep."""
        if self._live is not None:
            return dict(self._live.props)
        data = self.repo._store.run_data(self.hash)
        get = getattr(data, 'get_props', None)
        return get() if get is not None else {}

    @property
    def progress(self) -> dict | None:
        return self._stored_props().get('progress')

    @property
    def successful_finish(self) -> bool:
        return bool(self._stored_props().get('successful_finish'))

    # artifacts (Aim 3.29) -----------------------------------------------------------------
    def set_artifacts_uri(self, uri: str) -> None:
        """Where ``log_artifact`` copies files: ``file:///path`` (each run's files go to
        ``<uri>/<run hash>/``)."""
        from aim.sdk.artifacts import ARTIFACTS_URI_PROP, check_uri
        self._set_prop(**{ARTIFACTS_URI_PROP: check_uri(uri)})

    def log_artifact(self, path: str, name: str | None = None, *, block: bool = False) -> None:
        """Copy the file ``path`` to the artifacts URI as ``name`` (default: its file name)
        and list it in ``run.artifacts``. With ``block=False`` (the default, as in Aim) the
        copy or upload happens in the background, in the order files were logged, and the
        artifact is listed once stored; ``run.close()`` waits for it. Pass ``block=True``
        for a file about to be changed or removed. A bad name, a missing file or no
        artifacts URI raise here either way."""
        from aim.sdk.artifacts import (
            ARTIFACTS_URI_PROP,
            ArtifactError,
            ArtifactUploader,
            check_name,
        )
        self._require_writable()
        path = os.path.abspath(os.fspath(path))
        base = self._stored_props().get(ARTIFACTS_URI_PROP)
        if not base:
            raise ArtifactError(f'Run {self.hash} has no artifacts URI: call '
                                f"run.set_artifacts_uri('file:///path/to/artifacts') (or "
                                f"'s3://bucket/prefix') first.")
        name = check_name(name if name is not None else os.path.basename(path))
        if not os.path.isfile(path):
            raise ArtifactError(f'No file at {path!r} to log as an artifact.')
        if block:
            self._store_artifact(base, path, name)
            return
        with self._close_lock:
            self._require_writable()
            uploader = next((c for c in self._side_channels
                             if isinstance(c, ArtifactUploader)), None)
            if uploader is None:
                uploader = ArtifactUploader(f'aim-artifacts-{self.hash}')
                self._side_channels.append(uploader)

        def store() -> None:
            try:
                self._store_artifact(base, path, name)
            except ArtifactError as e:   # the uploader warns with this message
                raise ArtifactError(f'artifact {name!r} of run {self.hash} was not stored: '
                                    f'{e}', e.uri) from e
        uploader.submit(store)

    def _store_artifact(self, base: str, path: str, name: str) -> None:
        from aim.sdk.artifacts import ARTIFACTS_PROP, store_file
        uri = store_file(base, self.hash, path, name)
        with self._artifacts_lock:
            artifacts = dict(self._stored_props().get(ARTIFACTS_PROP) or {})
            artifacts[name] = {'uri': uri, 'path': path}
            self._set_prop(**{ARTIFACTS_PROP: artifacts})

    def log_artifacts(self, path: str, name: str | None = None, *, block: bool = False) -> None:
        """Log every file under the folder ``path`` (names keep their relative paths,
        under ``name/`` when given)."""
        from aim.sdk.artifacts import ArtifactError
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise ArtifactError(f'No folder at {path!r} to log as artifacts.')
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for file_name in sorted(files):
                full = os.path.join(folder, file_name)
                rel = os.path.relpath(full, path).replace(os.sep, '/')
                self.log_artifact(full, f'{name.rstrip("/")}/{rel}' if name else rel)

    @property
    def artifacts(self) -> dict:
        """``{name: Artifact}`` for every logged artifact."""
        from aim.sdk.artifacts import ARTIFACTS_PROP, Artifact
        stored = self._stored_props().get(ARTIFACTS_PROP) or {}
        return {name: Artifact(name, info['uri'], info.get('path'))
                for name, info in sorted(stored.items())}

    def dataframe(self, include_props: bool = True, include_params: bool = True):
        try:
            import pandas as pd
        except ImportError:
            raise ImportError('Run.dataframe() needs pandas: pip install "aimkit[pandas]"') \
                from None
        from aim.sdk.trace import _flatten
        row: dict[str, Any] = {'hash': self.hash}
        if include_props:
            row.update(name=self.name, description=self.description, archived=self.archived,
                       creation_time=self.creation_time, end_time=self.end_time,
                       active=self.active, experiment=self.experiment, tags=list(self.tags))
        if include_params:
            row.update({k[1:]: v for k, v in _flatten(self._params_tree(), '').items()})
        return pd.DataFrame([row])

    # lifecycle ----------------------------------------------------------------------------
    def flush(self) -> None:
        if self._live is not None:
            self._live.flush()

    def close(self) -> None:
        """Stop the side channels, write every pending point, record the end time.

        Safe to call from several threads at once: one closes, the others wait for it.
        """
        with self._close_lock:
            if self._live is None:
                return
            for channel in reversed(self._side_channels):
                try:
                    channel.stop()
                except Exception as e:
                    warnings.warn(f'aim: a side channel failed to stop ({e})', RuntimeWarning,
                                  stacklevel=2)
            self._side_channels = []
            live, self._live = self._live, None
            self._closed = True
            self.track = Run.track.__get__(self)  # type: ignore[method-assign]
            try:
                live.close()
            finally:
                _unregister_live(self)
            props = dict(live.props)
            props['params'] = live.params_text
            self._index_row = {**props, 'hash': self.hash,
                               'tags': __import__('json').dumps(props.get('tags') or [])}

    finalize = close

    def __del__(self):
        # A run dropped without close() (Aim closes on garbage collection too).
        try:
            if getattr(self, '_live', None) is not None:
                self.close()
        except Exception:
            pass

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __eq__(self, other) -> bool:
        return isinstance(other, Run) and other.hash == self.hash and \
            other.repo.path == self.repo.path

    def __hash__(self) -> int:
        return hash((self.hash, self.repo.path))

    def __repr__(self) -> str:
        mode = 'read-only' if self._live is None else 'writing'
        return f'<Run {self.hash} ({mode}) in {self.repo.path}>'

    def _repr_html_(self) -> str:
        """Jupyter's view of a run: props, params and series (see aim.notebook)."""
        from aim.notebook import run_html
        return run_html(self)


class TerminalLogs:
    """Captured terminal output of a run: ``(line number, time, text)`` records."""

    def __init__(self, records: list[tuple[int, float, str]]):
        self._records = records

    @property
    def lines(self) -> list[str]:
        return [r[2] for r in self._records]

    @property
    def timestamps(self) -> list[float]:
        return [r[1] for r in self._records]

    def values_list(self) -> list[str]:
        return self.lines

    @property
    def values(self) -> TerminalLogs:
        return self

    def text(self) -> str:
        return '\n'.join(self.lines)

    def __iter__(self):
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, i):
        return self.lines[i]


def _weak_side_track(run: Run):
    """A track callback for side channels that does not keep the Run alive."""
    ref = weakref.ref(run)

    def track(value, name, context) -> None:
        target = ref()
        if target is not None and not target._closed:
            target.track(value, name=name, context=context)
    return track


def _utc_naive(ts: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).replace(tzinfo=None)


# finalisation at exit and on SIGTERM/SIGINT ------------------------------------------------
# See docs/signals-and-limits.md. A signal handler runs in the main thread between two
# bytecodes of whatever that thread was doing, possibly inside track() or a flush holding
# a lock the close needs; so the handlers act only once the main thread is outside
# aimkit's writing code, and until then put the signal back to be handled again.
_live_runs: weakref.WeakValueDictionary[int, Run] = weakref.WeakValueDictionary()
_atexit_registered = False
_handlers_installed = False
_creator_pid = os.getpid()
_RUN_FILE = _path.__code__.co_filename
_STORAGE_DIR = os.path.dirname(canonical_context.__code__.co_filename) + os.sep
_deferred_signals: set[int] = set()
_interrupt_id = 0  # id() of the last KeyboardInterrupt raised for SIGINT


def _register_live(run: Run) -> None:
    global _atexit_registered, _handlers_installed
    _live_runs[id(run)] = run
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(_at_exit)
    # Python sets handlers from the main thread only: a run created elsewhere first leaves
    # it to the next run the main thread creates
    if not _handlers_installed and threading.current_thread() is threading.main_thread():
        _handlers_installed = True
        # Only dispositions left at their defaults are replaced: a script's own handler,
        # and a signal the process inherited as ignored (a background job's SIGINT), stay.
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_signal)
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                signal.signal(signal.SIGINT, _on_signal)
        except (ValueError, OSError):
            pass


def _unregister_live(run: Run) -> None:
    _live_runs.pop(id(run), None)


def _close_all() -> None:
    for run in list(_live_runs.values()):
        try:
            run.close()
        except Exception as e:
            warnings.warn(f'aim: could not close run {run.hash} ({e}); its points are kept in '
                          f'its journal and recovered when the repository is next opened.',
                          RuntimeWarning, stacklevel=2)


def _in_writing_code(frame) -> bool:
    """Whether ``frame`` or a caller runs aimkit's run or storage code (which may hold a
    lock that closing a run takes)."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename == _RUN_FILE or filename.startswith(_STORAGE_DIR):
            return True
        frame = frame.f_back
    return False


def _on_signal(signum, frame) -> None:
    """SIGTERM: close every run, then end the process as SIGTERM would. SIGINT: raise
    KeyboardInterrupt (the interpreter closes the runs at exit, unless the script catches
    it). Either waits until the main thread has left aimkit's writing code."""
    if _in_writing_code(frame):
        _deferred_signals.add(signum)
        return _RAISE_AGAIN[signum]  # see _RaiseAgain
    _deferred_signals.discard(signum)
    if signum == signal.SIGINT:
        global _interrupt_id
        interrupt = KeyboardInterrupt()
        _interrupt_id = id(interrupt)
        raise interrupt
    _close_all()
    _die_by(signum)


class _RaiseAgain(dict):
    """``_RAISE_AGAIN[signum]`` marks the signal pending again (as if it had just arrived,
    without a system call), so that its handler runs at the next check the interrupted
    code makes. It is a subscript because a subscript is no call instruction: the
    interpreter runs pending handlers after each call, so a plain call here would run the
    handler again inside the handler itself, without end (``signal.raise_signal`` and
    ``os.kill`` also run them before they return). A lock wait is not spun: the signal
    is pending, not re-sent, while the wait resumes."""

    __missing__ = staticmethod(_thread.interrupt_main)


_RAISE_AGAIN = _RaiseAgain()


def _die_by(signum: int) -> None:
    for stream in (sys.stdout, sys.stderr):  # what the script printed still comes out
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # terminate as the default action would
    os._exit(128 + signum)        # only if the signal is blocked in this thread


def _at_exit() -> None:
    _close_all()
    # a signal that came while the interpreter was already closing the runs
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signum in _deferred_signals and signal.getsignal(signum) is _on_signal:
            _die_by(signum)
    # A script ended by an uncaught KeyboardInterrupt exits as by SIGINT (so that a shell
    # or a scheduler sees the Ctrl-C). The interpreter forgets that it should when code
    # run from a string (a dataclass, a namedtuple) executes at exit, as closing the runs
    # may do: so it is done here, once the runs are closed.
    if id(getattr(sys, 'last_value', None)) == _interrupt_id and \
            not sys.flags.interactive and not hasattr(sys, 'ps1'):
        _die_by(signal.SIGINT)


def _after_fork_in_child() -> None:
    # A forked child (DataLoader worker, sweep) must never write its parent's runs: its
    # copies become read-only and are not closed at its exit.
    from aim.storage.sqlite import _inherited
    for run in list(_live_runs.values()):
        _inherited.append(run._live)  # keep the parent's files untouched, never closed here
        run._live = None
        run._closed = True
        run._side_channels = []
        run._close_lock = threading.Lock()  # a parent's thread may have held it at the fork
        run.track = _forked_track  # type: ignore[method-assign]
    _live_runs.clear()
    # Locks that another thread of the parent held at the fork (a Repo being opened, a
    # warning being recorded) would stay held forever in the child, whose only thread
    # would wait on them in its own Run(): every lock the child may take is new.
    from aim.sdk import repo as repo_module
    repo_module._pool_lock = threading.Lock()
    for db in _fork_held_databases:
        db.lock = threading.RLock()
    _fork_held_databases.clear()
    from aim.storage.writer import FlushService
    FlushService._instance_lock = threading.Lock()
    from aim.ext import exception_resistant, warn_once
    warn_once._seen_lock = threading.Lock()
    exception_resistant._lock = threading.Lock()


# The databases whose locks the forking thread holds across a fork. SQLite keeps the state
# of its file locks in process memory: a child forked while another thread is inside a
# write transaction inherits a copy that says "locked by another connection of this
# process", and every write of the child's own connections then waits (busy) for a
# transaction that, in the child, never ends. Taking each database's lock before the
# fork waits for the transaction in progress (milliseconds) and keeps new ones out.
_fork_held_databases: list = []


def _before_fork() -> None:
    from aim.sdk import repo as repo_module
    stores = {id(r._store): r._store for r in list(repo_module._pool.values())}
    for run in list(_live_runs.values()):
        repo = getattr(run, 'repo', None)
        if repo is not None:
            stores[id(repo._store)] = repo._store
    for store in stores.values():
        db = getattr(store, 'db', None)   # a remote repository has none here
        if db is not None and db.lock.acquire(timeout=120):  # never block a fork forever
            _fork_held_databases.append(db)


def _after_fork_in_parent() -> None:
    for db in _fork_held_databases:
        db.lock.release()
    _fork_held_databases.clear()


def _forked_track(*args, **kwargs) -> None:
    warnings.warn('aim: a forked child process cannot track into its parent\'s Run; create '
                  'a new Run in the child instead. The value was not tracked.', RuntimeWarning,
                  stacklevel=2)


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)
