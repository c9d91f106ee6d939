"""``aim convert tensorboard``: TensorBoard log folders into aim runs.

Which folders make a run (``discover_runs``): every folder holding event files is a run,
named by its path under the log directory, except a *context folder*: a folder without
event-holding sub-folders whose parent holds event files itself, or whose name is a
usual subset name (``train``, ``validation``, ``eval``, ``test``, ...). A context
folder's scalars belong to its parent's run with the context ``{'subset': <folder name>}``
(Keras writes ``<run>/train`` and ``<run>/validation``; ``SummaryWriter.add_hparams``
writes a sub-folder of the run). ``flat=True`` makes every folder a run of its own.

Scalars become metrics (the tag is the metric name; steps and wall times are kept), the
hparams plugin's values the ``hparams`` param. Images, histograms, text and audio become
``Image``, ``Distribution``, ``Text`` and ``Audio`` sequences named by their tag, in the
same contexts, at their steps and wall times (see :mod:`aim.converters.tb_events` for how
each is read; several images or clips at one step are a list). Converting again appends to
a run only what its event files gained (``__import__`` keeps their sizes and the plugins
of their tags); a file that shrank or went makes the run converted again, whole. What
cannot be converted (empty histograms, summaries of other plugins, an image aim cannot
read) is counted in ``ConvertReport.not_converted``.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from aim.converters.importing import ImportedRun, import_hash, import_state
from aim.converters.tb_events import (
    KIND_LABELS,
    FolderEvents,
    event_files,
    make_object,
    read_folder,
)
from aim.errors import TrackInputError

SUBSET_NAMES = frozenset({'train', 'training', 'val', 'valid', 'validation', 'eval',
                          'evaluation', 'test', 'testing', 'dev'})


@dataclass
class TbRun:
    """One run to convert: its folder, its name and its folders with their contexts."""
    path: str
    name: str
    folders: list[tuple[str, dict]]

    def files(self) -> list[str]:
        return [f for folder, _ in self.folders for f in event_files(folder)]

    def fingerprint(self) -> list:
        return sorted([os.path.relpath(f, self.path), os.path.getsize(f)]
                      for f in self.files())


@dataclass
class ConvertReport:
    """What a conversion did: runs written or already there, and what it left out."""
    converted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    points: int = 0
    not_converted: dict[str, int] = field(default_factory=dict)

    def add_skipped(self, what: str, n: int) -> None:
        if n:
            self.not_converted[what] = self.not_converted.get(what, 0) + n


def discover_runs(logdir: str, flat: bool = False) -> list[TbRun]:
    """The runs of a TensorBoard log directory (see the module docstring)."""
    logdir = os.path.abspath(logdir)
    with_events = []
    for folder, dirs, files in os.walk(logdir):
        dirs.sort()
        if any('tfevents' in f for f in files) and event_files(folder):
            with_events.append(folder)
    has_events = set(with_events)

    def has_event_children(folder: str) -> bool:
        prefix = folder + os.sep
        return any(other.startswith(prefix) for other in has_events)

    runs: dict[str, TbRun] = {}
    for folder in with_events:
        parent = os.path.dirname(folder)
        is_context = (not flat and folder != logdir and parent.startswith(logdir)
                      and not has_event_children(folder)
                      and (parent in has_events
                           or os.path.basename(folder).lower() in SUBSET_NAMES))
        run_dir = parent if is_context else folder
        context = {'subset': os.path.basename(folder)} if is_context else {}
        run = runs.get(run_dir)
        if run is None:
            rel = os.path.relpath(run_dir, logdir)
            name = os.path.basename(logdir) if rel == '.' else rel
            run = runs[run_dir] = TbRun(run_dir, name.replace(os.sep, '/'), [])
        run.folders.append((folder, context))
    return sorted(runs.values(), key=lambda r: r.name)


def _read_run(run: TbRun, offsets: dict[str, int] | None = None,
              plugin_state: dict | None = None) -> list[tuple[dict, FolderEvents, str]]:
    """Each folder's (context, events, folder relative to the run folder); from
    ``offsets`` (bytes already read, by path relative to the run folder) on, knowing the
    ``plugin_state`` of what was read before (the plugin of a tag comes with its first
    value only)."""
    out = []
    for folder, context in run.folders:
        rel = os.path.relpath(folder, run.path)
        plugins = dict((plugin_state or {}).get(rel) or {})
        start = {os.path.join(run.path, name): size for name, size in (offsets or {}).items()}
        out.append((context, read_folder(folder, start, plugins=plugins), rel))
    return out


def _map_ordered(runs: list[TbRun], workers: int):
    """``_read_run`` over the runs, in order; in worker processes when there are several.
    Only the reading goes to the workers: writing from them too was slower (6.5 s against
    3.7 s for 100 runs of 10,000 scalars on 2 cores), their commits queue on the one
    repository database."""
    if workers <= 1 or len(runs) <= 1:
        yield from map(_read_run, runs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    method = 'fork' if 'fork' in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        yield from pool.map(_read_run, runs, chunksize=1)


def _grown(old: list, new: list) -> dict[str, int] | None:
    """When the run's files only grew since ``old`` (a fingerprint): the bytes already
    read of each, by path relative to the run folder; None when one shrank or went."""
    sizes = {name: size for name, size in new}
    offsets = {}
    for name, size in old:
        if name not in sizes or sizes[name] < size:
            return None
        offsets[name] = size
    return offsets


def convert_tensorboard(repo, logdir: str, *, experiment: str | None = None,
                        flat: bool = False, workers: int | None = None,
                        progress: Callable[[str], None] | None = None) -> ConvertReport:
    """Convert every run of ``logdir`` into ``repo`` (an ``aim.Repo``). Runs converted
    before from unchanged files are left as they are; a run whose event files only grew
    since (training went on) gets the new records appended; any other change converts
    the run again."""
    report = ConvertReport()
    todo = []
    appends = []
    for run in discover_runs(logdir, flat):
        run_hash = import_hash('tensorboard', run.path)
        fingerprint = run.fingerprint()
        state = import_state(repo, run_hash)
        if state and state.get('complete'):
            offsets = _grown(state.get('fingerprint') or [], fingerprint)
            if offsets is not None and offsets == dict(fingerprint):
                report.unchanged.append(run_hash)
                if progress:
                    progress(run.name)
                continue
            if offsets is not None:
                appends.append((run, run_hash, state, offsets))
                continue
        if state is not None:
            repo.delete_run(run_hash)      # half-written, or its files changed
        todo.append((run, run_hash))
    for run, run_hash, state, offsets in appends:
        try:
            folders = _read_run(run, offsets, state.get('plugins'))
            _write_run(repo, run, run_hash, folders, experiment, report, appending=True)
        except Exception as e:  # one bad run does not stop the others
            report.failed.append((run.name, f'{type(e).__name__}: {e}'))
        if progress:
            progress(run.name)
    if workers is None:
        workers = min(len(todo), os.cpu_count() or 1, 8)
    for (run, run_hash), folders in zip(todo, _map_ordered([r for r, _ in todo], workers)):
        try:
            _write_run(repo, run, run_hash, folders, experiment, report)
        except Exception as e:  # one bad run does not stop the others
            report.failed.append((run.name, f'{type(e).__name__}: {e}'))
        if progress:
            progress(run.name)
    return report


def _write_run(repo, run: TbRun, run_hash: str, folders, experiment, report,
               appending: bool = False) -> None:
    before = repo.get_run(run_hash) if appending else None
    imported = ImportedRun(repo, run_hash, source='tensorboard', origin=run.path,
                           fingerprint=run.fingerprint(),
                           experiment=None if appending else experiment, name=run.name)
    try:
        hparams: dict = dict(before.get('hparams', {}) or {}) if before is not None else {}
        plugins = {}
        first = last = None
        for context, events, rel in folders:
            hparams.update(events.hparams)
            if events.plugins:
                plugins[rel] = events.plugins
            for tag, (steps, values, times) in events.scalars.items():
                imported.series(tag, context or None, steps, values, times)
            for (tag, kind), series in events.objects.items():
                _write_objects(imported, tag, kind, context or None, series, report)
            for what, n in events.skipped.items():
                report.add_skipped(what, n)
            if events.first_time is not None:
                first = events.first_time if first is None else min(first, events.first_time)
                last = events.last_time if last is None else max(last, events.last_time or 0)
        if hparams:
            imported.run['hparams'] = hparams
        imported.run['tensorboard'] = {'logdir': run.path}
        imported.keep_state(plugins=plugins)
    except BaseException:
        imported.abandon()
        raise
    if before is not None:       # the run keeps its start; its end moves on, if anything came
        first = before.creation_time
        last = last if last is not None else before.end_time
    imported.finish(first, last)
    report.points += imported.points
    report.converted.append(run_hash)


def _write_objects(imported: ImportedRun, tag: str, kind: str, context: dict | None,
                   series: tuple[list, list, list], report: ConvertReport) -> None:
    """One tag's images, histograms, texts or audio; a value aim cannot read (or a tag
    that already holds another type) is counted as not converted, the rest goes on."""
    steps, objects, times = [], [], []
    for step, payload, t in zip(*series):
        try:
            objects.append(make_object(kind, payload))
        except TrackInputError:
            report.add_skipped(f'unreadable {KIND_LABELS[kind]}', 1)
            continue
        steps.append(step)
        times.append(t)
    try:
        imported.series(tag, context, steps, objects, times)
    except TrackInputError:
        report.add_skipped(f'{KIND_LABELS[kind]} under a tag that holds other values',
                           len(steps))


__all__ = ['ConvertReport', 'TbRun', 'convert_tensorboard', 'discover_runs']
