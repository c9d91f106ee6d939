"""Series sharing their steps are read, smoothed and reduced as rows of one matrix: the
answer is the one the series give read one at a time, to the bit."""
from __future__ import annotations

import numpy as np
import pytest

from aim import Repo
from aim.errors import RepositoryError
from aim.web import series_source
from aim.web.downsample import smooth, smooth_rows
from aim.web.series_matrix import group_by_steps
from aim.web.series_source import SeriesRequest, fetch_series
from tests.web.repo_factory import quiet_run

STEPS = 9000  # three chunks: 4096 + 4096 + 808 points


@pytest.mark.parametrize('kind, factor, window', [
    ('ema', 0.3, 0), ('ema', 0.9, 0), ('ema', 0.99, 0), ('ema', 0.999, 0), ('ema', 0.0, 0),
    ('cma', 0.0, 25), ('cma', 0.0, 24), ('cma', 0.0, 1), ('cma', 0.0, 50_001)])
def test_rows_smoothed_together_equal_each_alone(kind, factor, window):
    rng = np.random.default_rng(5)
    ys = rng.normal(size=(23, 3001)).cumsum(axis=1)
    ys[2, 100] = np.nan
    ys[4, -1] = np.inf
    ys[6] = np.nan
    ys[7, 0] = -np.inf
    got = smooth_rows(ys.copy(), kind, factor, window)
    for row, smoothed in zip(ys, got):
        assert np.array_equal(smoothed, smooth(row, kind, factor, window), equal_nan=True)


def test_rows_of_one_point_and_no_rows():
    assert smooth_rows(np.ones((3, 1)), 'ema', 0.9, 0).tolist() == [[1.0]] * 3
    assert smooth_rows(np.empty((0, 5)), 'cma', 0.0, 5).shape == (0, 5)


@pytest.fixture(scope='module')
def sweep(tmp_path_factory):
    """Six runs tracking ``loss`` at the same steps (float64, float32, integer values;
    NaN and inf in one), two that rewrote the same early steps, one at every other step
    and one shorter: the first eight share layouts, the last two stand alone."""
    path = str(tmp_path_factory.mktemp('sweep'))
    repo = Repo(path, init=True)
    rng = np.random.default_rng(11)
    for i in range(6):
        run = quiet_run(repo)
        values = rng.normal(size=STEPS).cumsum()
        if i == 1:
            values = values.astype(np.float32).astype(np.float64)   # stored as float32
        if i == 2:
            values = np.round(values * 100)
        if i == 3:
            values[[10, 5000, 8999]] = np.nan
            values[777] = np.inf
        for step, value in enumerate(values):
            run.track(int(value) if i == 2 else float(value), name='loss', step=step)
        run.close()
    for i in range(2):  # steps 0..99 written again on resuming: the later values win
        run = quiet_run(repo)
        for step in range(STEPS):
            run.track(float(np.sin(step / 50) + i), name='loss', step=step)
        run.close()
        resumed = quiet_run(repo, run_hash=run.hash)
        for step in range(100):
            resumed.track(float(-step), name='loss', step=step)
        resumed.close()
    run = quiet_run(repo)
    for step in range(0, 2 * STEPS, 2):
        run.track(float(np.cos(step / 300)), name='loss', step=step)
    run.close()
    run = quiet_run(repo)
    for step in range(STEPS // 3):
        run.track(float(step % 17), name='loss', step=step)
    run.close()
    return path


REQUESTS = [
    dict(smoothing=0.9), dict(smoothing=0.99, width=333), dict(smoothing=0.6, width=1),
    dict(smoothing_kind='cma', window=25, width=801), dict(smoothing=0.9, width=20_000),
    dict(smoothing=0.9, x_min=1000.0, x_max=1500.5, width=97),
    dict(smoothing_kind='cma', window=101, x_min=8000.0, x_max=9500.0),
    dict(width=777), dict(width=5), dict(x_min=100.0, x_max=4200.0, width=300),
]


@pytest.mark.parametrize('params', REQUESTS)
def test_matrix_answer_equals_one_series_at_a_time(sweep, params, monkeypatch):
    req = dict(names=['loss'], **params)
    got = fetch_series(Repo(sweep), SeriesRequest(**req))
    monkeypatch.setattr(series_source, '_matrix_fits', lambda req, refs: False)
    want = fetch_series(Repo(sweep), SeriesRequest(**req))
    assert len(got['series']) == len(want['series']) == 10
    for a, b in zip(got['series'], want['series']):
        assert a.ref.run_hash == b.ref.run_hash
        assert np.array_equal(a.x, b.x)
        assert np.array_equal(a.y, b.y, equal_nan=True)
        assert np.array_equal(a.step, b.step) and a.step.dtype == b.step.dtype


def test_layouts_are_grouped_by_their_step_chunks(sweep):
    repo = Repo(sweep)
    ids = [r[0] for r in repo.index.query('SELECT id FROM series ORDER BY id')]
    from aim.storage.runfile import read_chunk_rows
    groups, alone = group_by_steps(read_chunk_rows(repo.index, ids))
    sizes = sorted(len(g.ids) for g in groups)
    assert sizes == [2, 6] and len(alone) == 2
    rewritten = next(g for g in groups if len(g.ids) == 2)
    assert rewritten.pick is not None and rewritten.steps.tolist() == list(range(STEPS))
    cut, _ = group_by_steps(read_chunk_rows(repo.index, ids, first_step=4000,
                                            last_step=4200), 4000, 4200)
    assert [g.steps.tolist() for g in cut] == [list(range(4000, 4201))] * 2


def test_a_damaged_chunk_names_its_series_and_spares_the_others(sweep, tmp_path):
    import shutil
    path = str(tmp_path / 'copy')
    shutil.copytree(sweep, path)
    repo = Repo(path)
    run_hash, series_id = repo.index.query(
        "SELECT run_hash, id FROM series ORDER BY id LIMIT 1")[0]
    with repo.index.write() as conn:
        conn.execute('UPDATE chunks SET vals = substr(vals, 1, 100) WHERE series_id = ? '
                     'AND seq = 1', (series_id,))
    with pytest.raises(RepositoryError, match=f'cannot be read.*{run_hash}|'
                                              f'{run_hash}.*cannot be read'):
        fetch_series(Repo(path), SeriesRequest(names=['loss'], smoothing=0.9))
    others = [h for (h,) in repo.index.query('SELECT run_hash FROM series WHERE id != ?',
                                             (series_id,))]
    answer = fetch_series(Repo(path), SeriesRequest(runs=others, smoothing=0.9))
    assert len(answer['series']) == 9 and all(len(s.y) for s in answer['series'])


@pytest.mark.parametrize('params', [dict(smoothing=0.9), dict(smoothing=0.999, width=333),
                                    dict(smoothing_kind='cma', window=25), dict(width=500)])
def test_a_float32_answer_stays_on_the_float64_curve(sweep, params):
    """Rows read for a float32 answer are smoothed and reduced in float32 after their
    first value is taken off: every kept point lies on the float64 curve to a few
    float32 units of the series' range, and the kept steps are nearly the same."""
    req = dict(names=['loss'], **params)
    exact = fetch_series(Repo(sweep), SeriesRequest(**req))['series']
    fast = fetch_series(Repo(sweep), SeriesRequest(precision='f32', **req))['series']
    for a, b in zip(fast, exact):
        finite = np.isfinite(b.y)
        scale = float(np.ptp(b.y[finite])) + 1e-300
        on_curve = np.isin(a.step, b.step)
        assert on_curve.mean() > 0.97
        at = np.searchsorted(b.step, a.step[on_curve])
        with np.errstate(invalid='ignore'):  # inf - inf
            diff = np.abs(a.y[on_curve] - b.y[at])
        same = np.isfinite(b.y[at])
        assert np.array_equal(np.isnan(a.y[on_curve]), np.isnan(b.y[at]))
        assert np.all(diff[same] <= 1e-5 * scale), np.max(diff[same]) / scale


def test_values_far_from_zero_keep_their_digits_in_float32(tmp_path):
    """A series near 1e6 varying by 0.01 (a counter, a timestamp): float32 alone has
    0.06 steps there; after taking off the first value the smoothed curve keeps its
    shape."""
    repo = Repo(str(tmp_path), init=True)
    for i in range(2):
        run = quiet_run(repo)
        for step in range(5000):
            run.track(1e6 + 0.01 * np.sin(step / 100) + i, name='loss', step=step)
        run.close()
    req = dict(names=['loss'], smoothing=0.9, width=100)
    exact = fetch_series(Repo(str(tmp_path)), SeriesRequest(**req))['series']
    fast = fetch_series(Repo(str(tmp_path)), SeriesRequest(precision='f32', **req))['series']
    for a, b in zip(fast, exact):
        at = np.searchsorted(b.step, a.step)
        assert np.max(np.abs(a.y - b.y[at])) < 1e-6


def test_the_server_maps_a_local_repository_for_reading(sweep, monkeypatch):
    from aim.storage import netfs
    from aim.web.server import map_repository_reads
    repo = Repo(sweep)
    assert map_repository_reads(repo)
    assert repo.index.query('PRAGMA mmap_size')[0][0] > 0
    monkeypatch.setenv('AIM_UI_MMAP', '0')
    assert not map_repository_reads(Repo(sweep))
    monkeypatch.delenv('AIM_UI_MMAP')
    monkeypatch.setattr(netfs, 'network_filesystem', lambda path: 'nfs4')
    other = Repo(sweep)
    assert not map_repository_reads(other)
    assert other.index.query('PRAGMA mmap_size')[0][0] == 0


def test_answers_while_another_process_writes_the_sweep(tmp_path):
    """A writer process appends to three runs' ``loss`` (value = step) in lock step while
    smoothed and plain charts of them are asked for: a series written between the read of
    its steps and of its values is read alone, and every answer holds tracked points in
    step order (a CMA of value = step is the step itself away from the ends)."""
    import time

    from tests.web.repo_factory import start_writer
    Repo(str(tmp_path), init=True)
    writer, hashes = start_writer(str(tmp_path), runs=3, steps=30_000, pause_every=1500)
    answers = 0
    deadline = time.monotonic() + 90
    views = [dict(width=300), dict(width=300, smoothing_kind='cma', window=5),
             dict(width=300, smoothing=0.5, precision='f32')]
    while writer.poll() is None and time.monotonic() < deadline:
        req = SeriesRequest(runs=hashes, names=['loss'], **views[answers % len(views)])
        for series in fetch_series(Repo(str(tmp_path)), req)['series']:
            if not len(series.step):
                continue
            assert np.all(np.diff(series.step) > 0)
            assert np.array_equal(series.x, series.step.astype(float))
            if not req.smoothed:
                assert np.array_equal(series.y, series.step.astype(float))
            elif req.smoothing_kind == 'cma':
                inner = (series.step >= 2) & (series.step <= series.step[-1] - 2)
                assert np.allclose(series.y[inner], series.step[inner])
        answers += 1
    assert writer.wait(60) == 0
    assert answers > 3
