"""``aim convert wandb``: W&B's local run folders into aim runs, offline.

A W&B run writes everything it logs to a transaction log, ``run-<id>.wandb``, in its run
folder (``wandb/run-YYYYMMDD_HHMMSS-<id>/``; ``offline-run-...`` for ``mode='offline'``).
The log is read with W&B's own reader (``wandb.sdk.internal.datastore.DataStore`` for the
LevelDB-style framing, ``wandb.proto.wandb_internal_pb2.Record`` for the records); no
server is needed. wandb 0.30 dropped that reader from the package, hence ``wandb<0.30``
(see pyproject.toml's ``wandb`` extra); the format itself did not change, so logs written
by any recent wandb are read.

Each run folder becomes one aim run:

- history: every numeric value becomes a metric named by its key (``train/loss`` stays
  ``train/loss``, as the TensorBoard and MLflow converters keep tags and keys; a nested
  dict logs as ``outer.inner``, as W&B names it), empty context, at the row's ``_step``,
  stamped with its ``_timestamp``; an integer ``epoch`` in the same row becomes the
  points' epoch. An image becomes an ``Image`` holding the file W&B saved under
  ``files/`` byte for byte (with its caption), a histogram of equal bins a
  ``Distribution``, both under the key at their steps; other media (tables, audio, video,
  several images at a step, ...) and values that are not numbers are counted, not
  converted.
- system metrics (``stats`` records) become ``__system__<key>`` metrics.
- config (the run record's and later updates) goes to ``hparams``; name, tags and notes
  become the run's name, tags and description; the W&B project the experiment (unless
  one is given).
- the ``wandb`` param holds the run id, project, entity, group, job type, the final
  summary (less the descriptions of media: images, tables, ...), the exit code and the
  folder name, so ``run.wandb.run_id == '...'`` finds a run.

A run's hash comes from its folder's name (which holds W&B's start time and run id), so
converting again finds the run; with the log's size and modification time as the
fingerprint, an unchanged run is skipped without reading it. A damaged record costs the
rest of its 32 KiB block: reading resumes at the next block, and the summary names the
run and how many parts of its log could not be read.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from struct import error as struct_error
from typing import Any

from aim.converters.importing import ImportedRun, import_hash, needs_import
from aim.converters.tensorboard import ConvertReport
from aim.errors import AimError
from aim.ext.log_lines import LineAssembler

_BLOCK = 32768           # the log's block size (LevelDB's)
_HEADER = 7              # a record's header: CRC, length, type
# what W&B's reader raises on a damaged or cut-short record
_DAMAGE = (AssertionError, struct_error, ValueError, IndexError)
_ROW_KEYS = ('_step', '_timestamp', '_runtime', '_wandb')   # W&B's own, in every row


@dataclass
class WandbRun:
    """A run folder to convert: the folder and its transaction log."""
    folder: str
    log: str

    @property
    def name(self) -> str:
        return os.path.basename(self.folder)


def discover_wandb_runs(path: str) -> list[WandbRun]:
    """The run folders under ``path`` (a ``wandb`` folder, a folder above one, or one run
    folder): every folder holding a ``run-<id>.wandb`` log, sorted by folder name."""
    path = os.path.realpath(path)   # wandb/latest-run is a link: its folder's own name
    runs = []
    for folder, dirs, files in os.walk(path):   # does not follow latest-run, a link
        dirs.sort()
        logs = sorted(f for f in files if f.startswith('run-') and f.endswith('.wandb'))
        if logs:
            runs.append(WandbRun(folder, os.path.join(folder, logs[0])))
    runs.sort(key=lambda r: (r.name, r.folder))
    return runs


def _fingerprint(run: WandbRun) -> list:
    st = os.stat(run.log)
    return [st.st_size, st.st_mtime_ns]


@dataclass
class _Series:
    steps: list = field(default_factory=list)
    values: list = field(default_factory=list)
    times: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    at: dict = field(default_factory=dict)     # step -> index: a step holds one value

    def add(self, step: int, value: Any, t: float | None, epoch: int | None) -> None:
        i = self.at.get(step)
        if i is None:
            self.at[step] = len(self.steps)
            self.steps.append(step)
            self.values.append(value)
            self.times.append(t)
            self.epochs.append(epoch)
        else:   # logged again at the same step: the last value stays, as in aim
            self.values[i], self.times[i], self.epochs[i] = value, t, epoch


@dataclass
class _RunData:
    """What a run's log holds, once read."""
    run_id: str | None = None
    project: str | None = None
    entity: str | None = None
    name: str | None = None
    notes: str | None = None
    group: str | None = None
    job_type: str | None = None
    tags: list[str] = field(default_factory=list)
    start_time: float | None = None
    runtime: float | None = None
    exit_code: int | None = None
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    metrics: dict[str, _Series] = field(default_factory=dict)
    system: dict[str, _Series] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    damaged: int = 0        # parts of the log that could not be read
    damage: str = ''        # the first reader error
    last_time: float | None = None
    # name -> (kind, series of payloads): 'image' (the file's path under files/, caption),
    # 'distribution' (counts, first edge, last edge)
    objects: dict[str, tuple[str, _Series]] = field(default_factory=dict)
    # the console output W&B captured: (wall time, line), in the order it was written
    console: list[tuple[float, str]] = field(default_factory=list)
    _streams: dict[int, LineAssembler] = field(default_factory=dict)

    def add_output(self, stream: int, t: float, text: str) -> None:
        """A chunk of console output (stdout or stderr): chunks are assembled into the
        lines a terminal showed, one assembler a stream, so that a line is never cut by the
        other stream's chunk; ``\\r`` redraws (progress bars) keep their last state."""
        assembler = self._streams.get(stream)
        if assembler is None:
            assembler = self._streams[stream] = LineAssembler()
        self.console.extend((t, line) for line in assembler.feed_text(text))

    def end_output(self, t: float) -> None:
        for stream in sorted(self._streams):
            self.console.extend((t, line) for line in self._streams[stream].finish())
        self._streams.clear()

    def skip(self, what: str, n: int = 1) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + n


def _path(item) -> list[str]:
    return list(item.nested_key) if item.nested_key else [item.key]


def _set(tree: dict, path: list[str], value: Any) -> None:
    for key in path[:-1]:
        child = tree.get(key)
        if not isinstance(child, dict):
            child = tree[key] = {}
        tree = child
    tree[path[-1]] = value


def _remove(tree: dict, path: list[str]) -> None:
    for key in path[:-1]:
        tree = tree.get(key)   # type: ignore[assignment]
        if not isinstance(tree, dict):
            return
    tree.pop(path[-1], None)


def _loads(text: str) -> Any:
    try:
        # W&B writes NaN and ±Infinity as Python's json reads them; an int beyond int64
        # (aim's limit for a value and a param) becomes a float
        return json.loads(text, parse_int=_int)
    except ValueError:
        return text


def _int(text: str) -> int | float:
    value = int(text)
    return value if -2**63 <= value < 2**63 else float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flat_values(row: dict, prefix: str = '') -> Iterator[tuple[str, Any]]:
    """(name, value) of a history row; a nested dict's keys joined with '.', as W&B names
    them; a dict with ``_type`` (an image, a table, ...) is one value."""
    for key, value in row.items():
        name = prefix + key
        if isinstance(value, dict) and '_type' not in value:
            yield from _flat_values(value, name + '.')
        else:
            yield name, value


def _add_history(data: _RunData, history, row_index: int) -> None:
    row: dict = {}
    for item in history.item:
        _set(row, _path(item), _loads(item.value_json))
    step = row.get('_step')
    if not isinstance(step, int) or isinstance(step, bool):
        step = history.step.num if history.HasField('step') else row_index
    stamp = row.get('_timestamp')
    t: float | None
    if isinstance(stamp, int | float) and math.isfinite(stamp):
        data.last_time = t = float(stamp)
    else:   # a row without its time: the time of the row before, else the run's start
        t = data.last_time if data.last_time is not None else data.start_time
    epoch = row.get('epoch')
    epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None
    for key in _ROW_KEYS:
        row.pop(key, None)
    for name, value in _flat_values(row):
        if _is_number(value):
            series = data.metrics.get(name)
            if series is None:
                series = data.metrics[name] = _Series()
            series.add(step, value, t, epoch)
        elif isinstance(value, dict):
            payload = _object_payload(value)
            if payload is None:
                data.skip(f'W&B {value.get("_type")} value(s)')
                continue
            kind = payload[0]
            entry = data.objects.get(name)
            if entry is None:
                entry = data.objects[name] = (kind, _Series())
            if entry[0] != kind:
                data.skip(f'W&B {value.get("_type")} value(s) under a key that holds '
                          f'other values')
                continue
            entry[1].add(step, payload[1], t, epoch)
        else:
            data.skip('W&B history value(s) that are not numbers (text, booleans, lists)')


def _object_payload(value: dict) -> tuple[str, Any] | None:
    """('image', (path, caption)) for an image file, ('distribution', (counts, lo, hi))
    for a histogram of equal bins; None for what aim has no type for."""
    kind = value.get('_type')
    if kind == 'image-file' and isinstance(value.get('path'), str):
        caption = value.get('caption')
        return 'image', (value['path'], caption if isinstance(caption, str) else '')
    if kind == 'histogram':
        counts, edges = value.get('values'), value.get('bins')
        if (isinstance(counts, list) and isinstance(edges, list) and counts
                and len(edges) == len(counts) + 1
                and all(_is_number(x) and math.isfinite(x) for x in counts + edges)):
            width = (edges[-1] - edges[0]) / len(counts)
            if width > 0 and all(abs(edges[i] - (edges[0] + i * width)) <= 1e-6 * width
                                 for i in range(len(edges))):
                return 'distribution', (counts, edges[0], edges[-1])
    return None


def _add_stats(data: _RunData, stats) -> None:
    t = stats.timestamp.seconds + stats.timestamp.nanos / 1e9
    for item in stats.item:
        value = _loads(item.value_json)
        if not _is_number(value):
            continue
        series = data.system.get(item.key)
        if series is None:
            series = data.system[item.key] = _Series()
        series.add(len(series.steps), value, t, None)


def _add_run(data: _RunData, run) -> None:
    data.run_id = run.run_id or data.run_id
    data.project = run.project or data.project
    data.entity = run.entity or data.entity
    data.name = run.display_name or data.name
    data.notes = run.notes or data.notes
    data.group = run.run_group or data.group
    data.job_type = run.job_type or data.job_type
    if run.tags:
        data.tags = list(run.tags)
    if run.HasField('start_time'):
        data.start_time = run.start_time.seconds + run.start_time.nanos / 1e9
    _add_config(data, run.config)
    for item in run.summary.update:
        _set(data.summary, _path(item), _loads(item.value_json))


def _add_config(data: _RunData, config) -> None:
    for item in config.update:
        _set(data.config, _path(item), _loads(item.value_json))
    for item in config.remove:
        _remove(data.config, _path(item))


def _records(log: str, data: _RunData) -> Iterator[bytes]:
    """The records of the log, in order; a damaged part is counted in ``data`` and
    skipped (to the next block, where the framing starts afresh)."""
    from wandb.sdk.internal.datastore import DataStore
    store = DataStore()
    copy = None
    try:
        try:
            store.open_for_scan(log)   # opens the file 'r+b': a read-only log is copied
        except PermissionError:
            fd, copy = tempfile.mkstemp(suffix='.wandb')
            os.close(fd)
            shutil.copyfile(log, copy)
            store.open_for_scan(copy)
        size = os.path.getsize(copy or log)
        while True:
            offset = store.get_offset()
            try:
                record = store.scan_data()
            except _DAMAGE as exc:
                data.damaged += 1
                data.damage = data.damage or (str(exc) or type(exc).__name__)
                next_block = (offset // _BLOCK + 1) * _BLOCK
                if next_block >= size or not _resync(store, next_block, size):
                    return
                continue
            if record is None:
                return
            yield record
    finally:
        store.close()
        if copy:
            os.unlink(copy)


def _resync(store, offset: int, size: int) -> bool:
    """Move to the first whole record at or after the block boundary ``offset``: the
    fragments there (the middle and last parts of a record that began in the damaged
    block) are passed over. False when the rest of the log holds no whole record."""
    from wandb.sdk.internal.datastore import LEVELDBLOG_LAST, LEVELDBLOG_MIDDLE
    while offset < size:
        store.seek(offset)
        try:
            fragment = store.scan_record()
        except _DAMAGE:
            offset = (offset // _BLOCK + 1) * _BLOCK   # damaged too: the next block
            continue
        if fragment is None:
            return False
        if fragment[0] not in (LEVELDBLOG_MIDDLE, LEVELDBLOG_LAST):
            store.seek(offset)
            return True
        offset = store.get_offset()
        if _BLOCK - offset % _BLOCK < _HEADER:   # the block's zero trailer
            offset = (offset // _BLOCK + 1) * _BLOCK
    return False


def read_wandb_run(run: WandbRun) -> _RunData:
    """Everything the run's log holds that aim keeps (see the module docstring)."""
    from wandb.proto import wandb_internal_pb2 as pb
    data = _RunData()
    rows = 0
    last_output = 0.0
    for raw in _records(run.log, data):
        record = getattr(pb, 'Record')()   # noqa: B009  (generated: mypy sees no Record)
        try:
            record.ParseFromString(raw)
        except Exception as exc:   # protobuf's DecodeError: a record that passed its CRC
            data.damaged += 1
            data.damage = data.damage or f'{type(exc).__name__}: {exc}'
            continue
        kind = record.WhichOneof('record_type')
        if kind == 'history':
            _add_history(data, record.history, rows)
            rows += 1
        elif kind == 'run':
            _add_run(data, record.run)
        elif kind == 'config':
            _add_config(data, record.config)
        elif kind == 'summary':
            for item in record.summary.update:
                _set(data.summary, _path(item), _loads(item.value_json))
            for item in record.summary.remove:
                _remove(data.summary, _path(item))
        elif kind == 'stats':
            _add_stats(data, record.stats)
        elif kind == 'exit':
            data.exit_code = record.exit.exit_code
            data.runtime = float(record.exit.runtime)
        elif kind == 'output_raw' or kind == 'output':
            out = getattr(record, kind)
            t = out.timestamp.seconds + out.timestamp.nanos / 1e9
            last_output = t
            # output_raw holds raw chunks ('\n' often a chunk of its own); output, of
            # older wandb, whole lines
            data.add_output(out.output_type, t, out.line if kind == 'output_raw'
                            else out.line.rstrip('\n') + '\n')
        elif kind == 'artifact':
            data.skip('W&B artifact(s)')
    data.end_output(last_output)
    if not data.console:
        _read_output_file(run, data)
    return data


def _read_output_file(run: WandbRun, data: _RunData) -> None:
    """The console output from ``files/output.log``, which W&B writes for runs whose log
    holds no output records (it has no times: the lines get the run's start time)."""
    path = os.path.join(run.folder, 'files', 'output.log')
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError:
        return
    t = data.start_time or os.path.getmtime(path)
    assembler = LineAssembler()
    lines = assembler.feed(raw) + assembler.finish()
    data.console.extend((t, line) for line in lines)


def convert_wandb(repo, path: str, runs: list[WandbRun] | None = None, *,
                  experiment: str | None = None,
                  progress: Callable[[str], None] | None = None) -> ConvertReport:
    """Convert the W&B run folders under ``path`` (``discover_wandb_runs``) into ``repo``;
    runs converted before whose logs have not changed since are left as they are."""
    if runs is None:
        runs = discover_wandb_runs(path)
    report = ConvertReport()
    for run in runs:
        run_hash = import_hash('wandb', run.name)
        try:
            fingerprint = _fingerprint(run)
            if needs_import(repo, run_hash, fingerprint):
                _convert_run(repo, run, run_hash, fingerprint, experiment, report)
            else:
                report.unchanged.append(run_hash)
        except Exception as e:  # one bad run does not stop the others
            report.failed.append((run.name, f'{type(e).__name__}: {e}'))
        if progress:
            progress(run.name)
    return report


def _write_objects(imported: ImportedRun, run: WandbRun, name: str, kind: str, s: _Series,
                   data: _RunData) -> None:
    """One key's images (read from the run's files/ folder) or histograms; an image whose
    file is missing or unreadable is counted as not converted."""
    from aim.errors import TrackInputError
    from aim.sdk.objects import Distribution, Image
    steps, objects, times, epochs = [], [], [], []
    for step, payload, t, epoch in zip(s.steps, s.values, s.times, s.epochs):
        if kind == 'image':
            path = os.path.join(run.folder, 'files', *payload[0].split('/'))
            try:
                with open(path, 'rb') as f:
                    obj: Any = Image(f.read(), caption=payload[1])
            except (OSError, TrackInputError):
                data.skip('W&B image-file value(s) whose file is missing or unreadable')
                continue
        else:
            try:
                obj = Distribution.from_histogram(payload[0], (payload[1], payload[2]))
            except (TrackInputError, ValueError, TypeError):
                data.skip('W&B histogram value(s) aim cannot read')
                continue
        steps.append(step)
        objects.append(obj)
        times.append(t)
        epochs.append(epoch)
    has_epochs = any(e is not None for e in epochs)
    try:
        imported.series(name, None, steps, objects, times, epochs if has_epochs else None)
    except TrackInputError:   # the key also holds numbers
        data.skip(f'W&B {kind} value(s) under a key that holds other values', len(steps))


def _user_keys(tree: dict, *, media: bool = True) -> dict:
    return {k: v for k, v in tree.items() if k not in _ROW_KEYS
            and (media or not (isinstance(v, dict) and '_type' in v))}


def _convert_run(repo, run: WandbRun, run_hash: str, fingerprint: list,
                 experiment: str | None, report: ConvertReport) -> None:
    data = read_wandb_run(run)
    if data.run_id is None:
        raise AimError(f'{os.path.basename(run.log)} holds no run record'
                       + (f' (damaged: {data.damage})' if data.damaged else '')
                       + '; nothing to convert.')
    imported = ImportedRun(repo, run_hash, source='wandb', origin=run.folder,
                           fingerprint=fingerprint,
                           experiment=experiment or data.project or None,
                           name=data.name or data.run_id)
    try:
        if data.notes:
            imported.run.description = data.notes
        for tag in data.tags:
            imported.run.add_tag(tag)
        config = _user_keys(data.config)
        if config:
            imported.run['hparams'] = config
        imported.run['wandb'] = {
            'run_id': data.run_id, 'project': data.project, 'entity': data.entity,
            'group': data.group, 'job_type': data.job_type, 'folder': run.name,
            'exit_code': data.exit_code,
            'summary': _user_keys(data.summary, media=False)}
        for name in sorted(data.metrics):
            s = data.metrics[name]
            epochs = s.epochs if any(e is not None for e in s.epochs) else None
            imported.series(name, None, s.steps, s.values, s.times, epochs)
        for key in sorted(data.system):
            s = data.system[key]
            imported.series(f'__system__{key}', None, s.steps, s.values, s.times)
        for name in sorted(data.objects):
            kind, s = data.objects[name]
            _write_objects(imported, run, name, kind, s, data)
        if data.console:
            imported.log_lines(data.console)
    except BaseException:
        imported.abandon()
        raise
    end = None
    if data.start_time is not None and data.runtime is not None:
        end = max(data.start_time + data.runtime, imported.last_time or 0.0)
    imported.finish(data.start_time, end)
    report.points += imported.points
    report.converted.append(run_hash)
    for what, n in data.skipped.items():
        report.add_skipped(what, n)
    if data.damaged:
        report.add_skipped(f'damaged or cut-short part(s) of {run.name}/'
                           f'{os.path.basename(run.log)} ({data.damage}; the readable '
                           f'records are converted)', data.damaged)


__all__ = ['WandbRun', 'convert_wandb', 'discover_wandb_runs', 'read_wandb_run']
