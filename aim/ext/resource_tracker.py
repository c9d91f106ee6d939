"""Background sampling of CPU, memory, disk, network and GPU usage into a run.

A daemon thread takes one sample when it starts and one every ``interval`` seconds,
and hands each value to ``track(value, name, context)``. GPUs are read through NVML
(``pynvml`` from the optional ``nvidia-ml-py`` package); without it, or without a GPU
driver, GPU metrics are simply absent.
"""
from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from aim.ext.gpu_stats import GpuStatsReader
from aim.ext.warn_once import warn_once

TrackFn = Callable[[float, str, dict], None]

SYSTEM_METRIC_PREFIX = '__system__'


class ResourceTracker:
    """Samples the machine and the current process every ``interval`` seconds.

    Metric names (context ``{}`` unless noted):

    - ``__system__cpu``: this process's CPU %, summed over cores (can exceed 100);
    - ``__system__p_memory_percent``: this process's resident memory, % of the machine's;
    - ``__system__memory_percent``: the machine's used memory %;
    - ``__system__disk_percent``: used space % of the disk holding ``disk_path``;
    - ``__system__net_bytes_sent`` / ``__system__net_bytes_recv``: bytes sent/received by
      the machine since the tracker started (a counter, so the chart shows traffic);
    - per GPU, context ``{'gpu': i}``: ``__system__gpu`` (utilisation %),
      ``__system__gpu_memory_percent``, ``__system__gpu_temp`` (°C),
      ``__system__gpu_power_watts``.
    """

    MIN_INTERVAL_S = 1
    MAX_INTERVAL_S = 24 * 60 * 60
    # How long stop() waits for a sample in progress before leaving the daemon thread.
    STOP_TIMEOUT_S = 5.0

    def __init__(self, track: TrackFn, interval: float = 10, *, disk_path: str = '/'):
        self._track = track
        self._interval = interval
        self._disk_path = disk_path
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: Any = None  # a psutil.Process once sampling starts
        self._net_start: tuple[int, int] | None = None
        self._gpus: GpuStatsReader | None = None

    @staticmethod
    def check_interval(interval, *, warn: bool = True) -> float | None:
        """Return the sampling interval in seconds, or ``None`` when tracking is off.

        ``None``, ``0`` and ``False`` turn tracking off quietly. A value that is not a
        number, or lies outside 1 s .. 1 day, turns it off with a warning.
        """
        if interval is None or interval is False or interval == 0:
            return None
        if isinstance(interval, bool) or not isinstance(interval, numbers.Real):
            if warn:
                warn_once(f'interval-type-{type(interval).__name__}',
                          f'system_tracking_interval must be a number of seconds, got '
                          f'{interval!r}; system metrics are not tracked for this run. '
                          f'Pass e.g. system_tracking_interval=10, or None to turn it off.')
            return None
        lo, hi = ResourceTracker.MIN_INTERVAL_S, ResourceTracker.MAX_INTERVAL_S
        if not lo <= float(interval) <= hi:
            if warn:
                warn_once(f'interval-range-{interval!r}',
                          f'system_tracking_interval={interval!r} is outside {lo} s .. {hi} s '
                          f'(1 day); system metrics are not tracked for this run. '
                          f'Pass a value in that range, or None to turn it off.')
            return None
        return float(interval)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start sampling in a daemon thread; does nothing if the interval turns it off."""
        interval = self.check_interval(self._interval)
        if interval is None or self.running:
            return
        self._interval = interval
        # psutil is prepared here, not in the thread: importing it in the background
        # would hold the GIL against the first moments of the training loop.
        try:
            self._prepare()
        except Exception as exc:  # psutil missing or broken: no system metrics at all
            warn_once('resource-tracker-prepare',
                      f'System metrics are not tracked: {exc!r}. Training goes on; '
                      f'install psutil (pip install psutil) to get them.')
            return
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name='aim-resource-tracker',
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling; returns within a moment even in the middle of an interval."""
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.STOP_TIMEOUT_S)
        self._thread = None

    # -- sampling thread ------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._gpus = GpuStatsReader.open()
            while not self._stop_event.is_set():
                self._sample_and_track()
                if self._stop_event.wait(self._interval):
                    break
        except Exception as exc:  # a bug here must not print tracebacks into training logs
            warn_once('resource-tracker-thread',
                      f'System metrics stopped: {exc!r}. Training goes on.')
        finally:
            if self._gpus is not None:
                self._gpus.close()
                self._gpus = None

    def _prepare(self) -> None:
        import psutil  # imported here so that `import aim` stays cheap

        self._process = psutil.Process(os.getpid())
        # The first cpu_percent() call only sets the reference point and returns 0.
        self._process.cpu_percent(None)
        self._net_start = self._net_counters()

    def _sample_and_track(self) -> None:
        for name, value, context in self._samples():
            if self._stop_event.is_set():
                return
            try:
                self._track(value, name, context)
            except Exception as exc:
                warn_once('resource-tracker-track',
                          f'Could not record system metric {name}: {exc!r}. Training goes '
                          f'on; further system-metric errors are not reported.')

    def _samples(self) -> Iterator[tuple[str, float, dict]]:
        import psutil

        readers = (
            ('cpu', lambda: self._process.cpu_percent(None)),
            ('p_memory_percent', lambda: self._process.memory_percent()),
            ('memory_percent', lambda: psutil.virtual_memory().percent),
            ('disk_percent', lambda: psutil.disk_usage(self._disk_path).percent),
        )
        for short_name, read in readers:
            try:
                value = float(read())
            except Exception as exc:
                warn_once(f'resource-tracker-{short_name}',
                          f'Could not read system metric {SYSTEM_METRIC_PREFIX}{short_name}: '
                          f'{exc!r}; the sample is skipped and further failures are not reported.')
                continue
            yield SYSTEM_METRIC_PREFIX + short_name, value, {}
        yield from self._network_samples()
        if self._gpus is not None:
            for gpu_index, short_name, value in self._gpus.read():
                yield SYSTEM_METRIC_PREFIX + short_name, value, {'gpu': gpu_index}

    def _network_samples(self) -> Iterator[tuple[str, float, dict]]:
        counters = self._net_counters()
        if counters is None or self._net_start is None:
            return
        sent, recv = counters
        yield SYSTEM_METRIC_PREFIX + 'net_bytes_sent', float(sent - self._net_start[0]), {}
        yield SYSTEM_METRIC_PREFIX + 'net_bytes_recv', float(recv - self._net_start[1]), {}

    @staticmethod
    def _net_counters() -> tuple[int, int] | None:
        import psutil

        try:
            io = psutil.net_io_counters()
        except Exception:
            return None
        if io is None:  # no network interfaces (some containers)
            return None
        return io.bytes_sent, io.bytes_recv
