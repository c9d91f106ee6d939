"""Writing runs that come from elsewhere (TensorBoard, MLflow, an export) into a repository.

An imported run has a hash derived from where it came from, so that converting the same
source twice finds the run instead of making a second one (``import_hash``). The param
``__import__`` records the source, a fingerprint of it and whether the conversion finished:
a run left half-written by an interrupted conversion, or whose source changed since, is
converted again from scratch; one that is complete and unchanged is skipped.

Points keep the timestamps of their source: ``track()`` stamps each point with the time
the run's writer reads from ``aim.storage.writer._now`` when the run is opened, so an
imported run is opened with a clock this module sets before each point.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import Any

from aim.sdk.repo import Repo
from aim.sdk.run import Run

IMPORT_PARAM = '__import__'


def import_hash(source: str, key: str) -> str:
    """A run hash (24 hex characters, like aim's) for the run ``key`` of ``source``."""
    return hashlib.sha256(f'{source}\0{key}'.encode()).hexdigest()[:24]


class SourceClock:
    """The time track() stamps on a point: ``t`` when set, else the current time."""

    __slots__ = ('t',)

    def __init__(self) -> None:
        self.t: float | None = None

    def __call__(self) -> float:
        t = self.t
        return time.time() if t is None else t


def import_state(repo: Repo, run_hash: str) -> dict | None:
    """The ``__import__`` param of an already imported run, or None if there is none."""
    run = repo.get_run(run_hash)
    if run is None:
        return None
    state = run.get(IMPORT_PARAM)
    return state if isinstance(state, dict) else {}


def needs_import(repo: Repo, run_hash: str, fingerprint: Any) -> bool:
    """False when the run is already imported, complete, from the same source state.
    A run that is there but incomplete or stale is deleted, to be imported again."""
    state = import_state(repo, run_hash)
    if state is None:
        return True
    import json
    as_stored = json.loads(json.dumps(fingerprint))   # tuples read back as lists
    if state.get('complete') and state.get('fingerprint') == as_stored:
        return False
    repo.delete_run(run_hash)
    return True


class ImportedRun:
    """A run being imported: ``point()`` writes a point with its own timestamp; ``finish()``
    sets the source's start and end times and marks the import complete."""

    def __init__(self, repo: Repo, run_hash: str, *, source: str, origin: str,
                 fingerprint: Any, experiment: str | None = None, name: str | None = None):
        self.clock = SourceClock()
        import aim.storage.writer as writer_module
        saved = writer_module._now
        writer_module._now = self.clock   # read once, as the run's writer is built
        try:
            self.run = Run(run_hash, repo=repo, experiment=experiment,
                           system_tracking_interval=None, capture_terminal_logs=False,
                           log_system_params=False)
        finally:
            writer_module._now = saved
        self._state = {'source': source, 'origin': origin, 'fingerprint': fingerprint,
                       'complete': False}
        self.run[IMPORT_PARAM] = self._state
        if name:
            self.run.name = name
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.points = 0

    def keep_state(self, **values: Any) -> None:
        """More to remember in the ``__import__`` param (written by ``finish()``)."""
        self._state.update(values)

    def series(self, name: str, context: dict | None, steps: Iterable, values: Iterable,
               times: Iterable, epochs: Iterable | None = None) -> None:
        """Write one series' points (steps, values, wall times; epochs or None)."""
        track, clock = self.run.track, self.clock
        n = 0
        first = last = None
        if epochs is None:
            for step, value, t in zip(steps, values, times):
                clock.t = t
                track(value, name, step, None, context=context)
                n += 1
                if first is None:
                    first = t
                last = t
        else:
            for step, value, t, epoch in zip(steps, values, times, epochs):
                clock.t = t
                track(value, name, step, epoch, context=context)
                n += 1
                if first is None:
                    first = t
                last = t
        clock.t = None
        self.points += n
        if first is not None:
            lo, hi = (min(first, last), max(first, last)) if last is not None else (first, first)
            self.first_time = lo if self.first_time is None else min(self.first_time, lo)
            self.last_time = hi if self.last_time is None else max(self.last_time, hi)

    def log_lines(self, lines: list[tuple[float, str]]) -> None:
        """Terminal output with its own wall times (shown as the run's logs)."""
        live = self.run._live
        for i in range(0, len(lines), 1000):
            live.add_log_lines(lines[i:i + 1000])

    def finish(self, start_time: float | None = None, end_time: float | None = None, *,
               keep_state: bool = True) -> None:
        """Close the run, with the source's start and end times when known. Without
        ``keep_state`` the ``__import__`` param goes (the run then reads as it was)."""
        start = start_time if start_time is not None else self.first_time
        end = end_time if end_time is not None else self.last_time
        self._state['complete'] = True
        if keep_state:
            self.run[IMPORT_PARAM] = self._state
        else:
            del self.run[IMPORT_PARAM]
        if start is not None:
            self.run._set_prop(creation_time=float(start))
        self.run.close()
        if end is not None:
            self.run._set_prop(end_time=float(max(end, start or end)))

    def abandon(self) -> None:
        """Close the run as it is (incomplete: the next conversion starts it again)."""
        self.run.close()


__all__ = ['IMPORT_PARAM', 'ImportedRun', 'SourceClock', 'import_hash', 'import_state',
           'needs_import']
