"""Live sync of a TensorBoard log folder into a run, as Aim 3's ``aim.ext.tensorboard_tracker``.

    from aim.ext.tensorboard_tracker import Run

    run = Run(sync_tensorboard_log_dir='runs/exp1', experiment='tb')  # an aim.Run
    writer = SummaryWriter('runs/exp1')    # whatever writes the event files
    ...                                    # scalars show up in the run within a second
    run.close()                            # a last sync, then the run closes

or, with a run of your own: ``tracker = TensorboardTracker(run, 'runs/exp1');
tracker.start(); ...; tracker.stop()``.

A background thread reads what the event files gained since the last look (each file
from the byte where it stopped; a record still being written waits for the next look):
scalars are tracked at their step, in the context ``{}`` for event files directly in the
folder and ``{'subset': <sub-folder>}`` for those in a sub-folder (Keras' ``train/`` and
``validation/``); hparams go to the ``hparams`` param. Images, histograms, text and audio
are tracked as ``Image``, ``Distribution``, ``Text`` and ``Audio`` under their tag, in the
same context, at their step (as ``aim convert tensorboard`` converts them, see
:mod:`aim.converters.tb_events`); what cannot be (empty histograms, other plugins, a value
aim cannot read) is counted in ``tracker.skipped``. Like every side channel it never
raises into the training script: a failure is warned about once.

Reading needs the ``tensorboard`` package (imported by the thread, not by this module).
Unlike the other side channels this module imports :mod:`aim.sdk.run`: Aim's spelling
``from aim.ext.tensorboard_tracker import Run`` puts a Run here (``import aim`` has loaded
that module already, so it costs nothing).
"""
from __future__ import annotations

import os
import threading
import warnings
from typing import Any

from aim.sdk.run import Run as _BaseRun

DEFAULT_INTERVAL_S = 1.0


class TensorboardTracker:
    """Syncs ``sync_tensorboard_log_dir`` into ``tracker`` (an ``aim.Run``, or anything with
    its ``track(value, name=, step=, context=)`` and ``run[key] = value``)."""

    def __init__(self, tracker: Any, sync_tensorboard_log_dir: str,
                 interval_s: float = DEFAULT_INTERVAL_S):
        self.tracker = tracker
        self.log_dir = os.path.abspath(os.fspath(sync_tensorboard_log_dir))
        self.interval_s = interval_s
        self.skipped: dict[str, int] = {}
        self.points = 0
        self._offsets: dict[str, int] = {}
        self._plugins: dict[str, dict[str, str]] = {}     # folder -> tag -> plugin
        self._hparams: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._warned = False

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name='aim-tensorboard-sync',
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after one last sync of what the files hold now."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()
        self.sync()

    close = stop

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sync()

    def _folders(self) -> list[tuple[str, dict]]:
        from aim.converters.tb_events import event_files
        out = []
        for folder, dirs, _ in os.walk(self.log_dir):
            dirs.sort()
            if event_files(folder):
                rel = os.path.relpath(folder, self.log_dir)
                out.append((folder, {} if rel == '.' else
                            {'subset': rel.replace(os.sep, '/')}))
        return out

    def sync(self) -> int:
        """Track what the event files gained since the last sync; returns the points."""
        with self._lock:
            try:
                return self._sync()
            except Exception as e:   # a side channel never stops training
                if not self._warned:
                    self._warned = True
                    warnings.warn(f'aim: could not sync the TensorBoard logs in {self.log_dir} '
                                  f'({type(e).__name__}: {e}); retrying.', RuntimeWarning,
                                  stacklevel=2)
                return 0

    def _sync(self) -> int:
        from aim.converters.tb_events import read_folder
        n = 0
        track = self.tracker.track
        for folder, context in self._folders():
            events = read_folder(folder, self._offsets,
                                 plugins=self._plugins.setdefault(folder, {}))
            self._offsets.update(events.offsets)
            for tag, (steps, values, _) in events.scalars.items():
                for step, value in zip(steps, values):
                    track(value, name=tag, step=step, context=context or None)
                n += len(steps)
            for (tag, kind), (steps, payloads, _) in events.objects.items():
                n += self._track_objects(tag, kind, steps, payloads, context)
            for what, count in events.skipped.items():
                self._skip(what, count)
            if events.hparams:
                self._hparams.update(events.hparams)
                self.tracker['hparams'] = dict(self._hparams)
        self.points += n
        return n


    def _skip(self, what: str, count: int = 1) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + count

    def _track_objects(self, tag: str, kind: str, steps: list, payloads: list,
                       context: dict) -> int:
        """Track one tag's new images, histograms, texts or audio; returns how many. A
        value aim cannot read, or a tag that holds another type, is counted as skipped."""
        from aim.converters.tb_events import KIND_LABELS, make_object
        from aim.errors import TrackInputError
        n = 0
        for step, payload in zip(steps, payloads):
            try:
                self.tracker.track(make_object(kind, payload), name=tag, step=step,
                                   context=context or None)
            except TrackInputError:
                self._skip(f'{KIND_LABELS[kind]} aim could not track')
                continue
            n += 1
        return n


class Run(_BaseRun):
    """An ``aim.Run`` that syncs a TensorBoard log folder while it is open
    (``sync_tensorboard_log_dir=``); closing the run syncs one last time."""

    def __init__(self, *args, sync_tensorboard_log_dir: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tensorboard_tracker: TensorboardTracker | None = None
        if sync_tensorboard_log_dir is not None and not self.read_only:
            tracker = TensorboardTracker(self, sync_tensorboard_log_dir)
            tracker.start()
            self.tensorboard_tracker = tracker
            self._side_channels.append(tracker)   # stopped (one last sync) by close()


__all__ = ['Run', 'TensorboardTracker']
