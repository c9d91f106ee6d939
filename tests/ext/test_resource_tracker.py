import threading
import time
import warnings

import pytest

from aim.ext import ResourceTracker
from aim.ext.warn_once import SideChannelWarning

BASE_NAMES = {
    '__system__cpu', '__system__p_memory_percent', '__system__memory_percent',
    '__system__disk_percent', '__system__net_bytes_sent', '__system__net_bytes_recv',
}


class Recorder:
    def __init__(self):
        self.points = []
        self.lock = threading.Lock()

    def __call__(self, value, name, context):
        with self.lock:
            self.points.append((name, context, value))

    def names(self):
        return {name for name, _, _ in self.points}

    def count(self, name):
        return sum(1 for n, _, _ in self.points if n == name)


def test_one_second_interval_tracks_every_system_metric_within_three_seconds():
    recorder = Recorder()
    tracker = ResourceTracker(recorder, 1)
    tracker.start()
    try:
        time.sleep(2.5)
    finally:
        tracker.stop()
    assert BASE_NAMES <= recorder.names()
    # a sample at start, then one per second
    assert 3 <= recorder.count('__system__cpu') <= 4
    for name, context, value in recorder.points:
        assert isinstance(value, float)
        if name.startswith('__system__gpu'):
            assert set(context) == {'gpu'}
        else:
            assert context == {}
    percents = [v for n, _, v in recorder.points if n.endswith('_percent')]
    assert all(0.0 <= v <= 100.0 for v in percents)


@pytest.mark.parametrize('interval', [None, 0, False])
def test_disabled_interval_tracks_nothing_quietly(interval):
    recorder = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        tracker = ResourceTracker(recorder, interval)
        tracker.start()
        time.sleep(0.2)
        tracker.stop()
    assert not tracker.running
    assert recorder.points == []


@pytest.mark.parametrize('interval', [0.5, -3, 2 * 24 * 3600, 'often', True])
def test_out_of_range_interval_warns_and_disables(interval):
    recorder = Recorder()
    tracker = ResourceTracker(recorder, interval)
    with pytest.warns(SideChannelWarning, match='system_tracking_interval'):
        tracker.start()
    time.sleep(0.2)
    tracker.stop()
    assert recorder.points == []


def test_check_interval_accepts_the_bounds():
    assert ResourceTracker.check_interval(1) == 1.0
    assert ResourceTracker.check_interval(2.5) == 2.5
    assert ResourceTracker.check_interval(86400) == 86400.0
    assert ResourceTracker.check_interval(None) is None
    assert ResourceTracker.check_interval(86401, warn=False) is None


def test_stop_is_prompt_in_the_middle_of_a_long_interval():
    recorder = Recorder()
    tracker = ResourceTracker(recorder, 3600)
    tracker.start()
    deadline = time.monotonic() + 5
    while not recorder.points and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    tracker.stop()
    assert time.monotonic() - started < 0.5
    assert not tracker.running


def test_a_failing_track_warns_once_and_sampling_goes_on():
    calls = []

    def broken_track(value, name, context):
        calls.append(name)
        raise RuntimeError('run is closed')

    tracker = ResourceTracker(broken_track, 1)
    with pytest.warns(SideChannelWarning, match='run is closed') as caught:
        tracker.start()
        time.sleep(1.5)
        tracker.stop()
    assert len([w for w in caught if 'run is closed' in str(w.message)]) == 1
    assert calls.count('__system__cpu') == 2  # the second sample still ran


def test_gpu_metrics_are_skipped_silently_without_a_gpu():
    from aim.ext.gpu_stats import GpuStatsReader

    reader = GpuStatsReader.open()
    if reader is not None:
        reader.close()
        pytest.skip('this machine has an NVIDIA GPU')
    recorder = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        tracker = ResourceTracker(recorder, 1)
        tracker.start()
        time.sleep(0.3)
        tracker.stop()
    assert not any(n.startswith('__system__gpu') for n in recorder.names())
    assert '__system__cpu' in recorder.names()


def test_warnings_turned_into_errors_still_do_not_raise(capsys):
    recorder = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        tracker = ResourceTracker(recorder, 0.5)
        tracker.start()  # would raise SideChannelWarning if warnings escaped
    assert not tracker.running
    assert 'system_tracking_interval=0.5' in capsys.readouterr().err
