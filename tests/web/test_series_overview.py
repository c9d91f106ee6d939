"""Downsampling from the stored chunk overviews (aim/web/series_overview.py): exact M4 over
whole blocks, and the points read instead wherever an overview cannot answer."""
import numpy as np
import pytest

from aim import Repo
from aim.web.downsample import m4_indices
from aim.web.series_source import SeriesRequest, fetch_series
from tests.storage.test_overview import brute_block_m4
from tests.web.repo_factory import quiet_run

N = 20_000
SPIKE_AT = 12_345


@pytest.fixture(scope='module', params=['sqlite', 'postgresql'])
def repo(request, tmp_path_factory):
    """The same series in each backend (the overviews are the same rows in both)."""
    if request.param == 'postgresql':
        from tests.pg.cluster import create_database_from_template
        path = create_database_from_template(request.getfixturevalue('pg_cluster'),
                                             'aim_overview')
    else:
        path = str(tmp_path_factory.mktemp('overview'))
    repo = Repo(path, init=True)
    rng = np.random.default_rng(7)
    run = quiet_run(repo)
    loss = np.exp(-np.arange(N) / 4000) + rng.normal(0, 0.05, N)
    loss[SPIKE_AT] = 50.0
    loss[777] = np.nan
    counts = rng.integers(0, 1000, N)
    for i in range(N):
        run.track(float(loss[i]), name='loss', step=i)
        run.track(int(counts[i]), name='count', step=3 * i + 5)  # ints, stride 3
        run.track(float(loss[i]), name='uneven', step=i * i // 7 + i)
    run.close()
    repo.arrays = {'loss': (np.arange(N), loss), 'count': (3 * np.arange(N) + 5, counts),
                   'uneven': (np.arange(N) ** 2 // 7 + np.arange(N), loss)}
    repo.hash = run.hash
    return repo


def fetch(repo, name, **kwargs):
    req = SeriesRequest(runs=[repo.hash], names=[name], **kwargs)
    answer = fetch_series(repo, req)
    (series,) = answer['series']
    return series, answer


def expected_blocks(steps, values, block, lo=None, hi=None):
    keep = brute_block_m4(values, block)
    s, v = steps[keep], values[keep]
    if lo is not None:
        inside = np.flatnonzero((s >= lo) & (s <= hi))
        first, last = max(inside[0] - 1, 0), min(inside[-1] + 1, len(s) - 1)
        s, v = s[first:last + 1], v[first:last + 1]
    return s, v


@pytest.mark.parametrize('width, block', [
    (2000, 16),      # 10 points a requested bucket: buckets of 16, the stored points as is
    (1000, 32),      # 20 a bucket: two stored blocks a bucket, reduced again
    (100, 256),      # the coarse level as is
    (30, 1024),      # four coarse blocks a bucket
    (5, 4096),       # whole chunks a bucket, from the coarse level
])
def test_answer_is_exact_m4_over_whole_blocks(repo, width, block):
    steps, values = repo.arrays['loss']
    series, answer = fetch(repo, 'loss', width=width)
    want_steps, want_values = expected_blocks(steps, values, block)
    assert series.step.tolist() == want_steps.tolist()
    assert np.array_equal(series.y, want_values, equal_nan=True)
    assert np.array_equal(series.x, series.step.astype(float))
    # never more buckets than asked for, never fewer than half
    buckets = len(np.unique(series.step // block))
    assert width / 2 <= buckets <= width or block == 4096
    assert 50.0 in series.y.tolist() and SPIKE_AT in series.step.tolist()


def test_stride_and_integer_values(repo):
    steps, counts = repo.arrays['count']
    series, _ = fetch(repo, 'count', width=1000)  # 20 points a bucket -> 32
    want_steps, want_values = expected_blocks(steps, counts, 32)
    assert series.step.tolist() == want_steps.tolist()
    assert series.y.tolist() == want_values.astype(float).tolist()


def test_a_zoomed_view_reads_the_points_it_shows(repo):
    """Zoom re-queries the points: exact M4 over the visible range, not stored blocks."""
    steps, values = repo.arrays['loss']
    series, _ = fetch(repo, 'loss', width=100, x_min=4000, x_max=8000)
    part = slice(3999, 8002)  # the visible points and one neighbour each side
    keep = m4_indices(steps[part].astype(float), values[part], 4000, 8000, 100)
    assert series.step.tolist() == steps[part][keep].tolist()


def test_short_buckets_and_uneven_steps_read_the_points(repo):
    steps, values = repo.arrays['loss']
    series, _ = fetch(repo, 'loss', width=5000)  # 4 points a bucket: every point kept
    assert series.step.tolist() == steps.tolist()
    usteps, uvalues = repo.arrays['uneven']
    series, answer = fetch(repo, 'uneven', width=1000)
    lo, hi = answer['range']
    keep = m4_indices(usteps.astype(float), uvalues, lo, hi, 1000)
    assert series.step.tolist() == usteps[keep].tolist()


def test_missing_or_stale_overviews_fall_back_to_the_points(repo, tmp_path):
    other = Repo(str(tmp_path), init=True)
    repo.copy_runs([repo.hash], other)
    other.hash, other.arrays = repo.hash, repo.arrays
    with other.index.write() as conn:  # as a repository written before overviews
        conn.execute('DELETE FROM overviews WHERE seq = 1')
    steps, values = repo.arrays['loss']
    series, answer = fetch(other, 'loss', width=1000)
    lo, hi = answer['range']
    keep = m4_indices(steps.astype(float), values, lo, hi, 1000)
    assert series.step.tolist() == steps[keep].tolist()
    with other.index.write() as conn:  # an undecodable overview
        conn.execute("UPDATE overviews SET points = x'00' WHERE seq = 0")
    series, _ = fetch(other, 'loss', width=1000)
    assert series.step.tolist() == steps[keep].tolist()


def test_api_answer_from_overviews(repo):
    from fastapi.testclient import TestClient

    from aim.web.app import create_app
    with TestClient(create_app(repo)) as client:
        body = client.get('/api/series', params={'runs': repo.hash, 'names': 'loss',
                                                 'width': 1000, 'format': 'json'}).json()
    (series,) = body['series']
    assert series['step'] == expected_blocks(*repo.arrays['loss'], 32)[0].tolist()


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.integers(1, 3000), window=st.one_of(
    st.none(), st.tuples(st.integers(-500, 20_500), st.integers(1, 20_000))),
    name=st.sampled_from(['loss', 'count']))
def test_any_view_keeps_real_points_and_the_extremes(repo, width, window, name):
    """Whatever the width and window: every point answered is a tracked point, in step
    order, never more than M4 at the requested width (plus the two edge neighbours), and
    the visible range's lowest and highest values are there."""
    steps, values = repo.arrays[name]
    kwargs = {}
    if window is not None:
        x_min = window[0] * (3 if name == 'count' else 1)
        kwargs = {'x_min': float(x_min), 'x_max': float(x_min + window[1])}
    series, _ = fetch(repo, name, width=width, **kwargs)
    got_steps = series.step.astype(np.int64)
    assert np.all(np.diff(got_steps) > 0)
    index = np.searchsorted(steps, got_steps)
    assert np.array_equal(steps[index], got_steps)
    assert np.array_equal(values[index].astype(float), series.y, equal_nan=True)
    assert len(got_steps) <= 4 * width + 2
    lo, hi = (kwargs['x_min'], kwargs['x_max']) if kwargs else (steps[0], steps[-1])
    inside = (steps >= lo) & (steps <= hi)
    if inside.any():
        visible = values[inside].astype(float)
        shown = series.y[(series.step >= lo) & (series.step <= hi)]
        assert np.nanmax(visible) == np.nanmax(shown)
        assert np.nanmin(visible) == np.nanmin(shown)


def test_a_live_poll_reads_only_the_chunks_written_since(tmp_path):
    """``since`` returns exactly the points written after it, including a value that
    replaced an old step, without reading the chunks written before (chunk 0 is made
    unreadable here: a full read fails, the poll does not)."""
    import time

    from aim import Run
    from aim.errors import RepositoryError
    repo = Repo(str(tmp_path), init=True)
    run = quiet_run(repo)
    for step in range(9000):
        run.track(float(step), name='loss', step=step)
    run.close()
    time.sleep(0.05)
    since = time.time()
    time.sleep(0.05)
    resumed = Run(run.hash, repo=str(tmp_path), system_tracking_interval=None,
                  capture_terminal_logs=False)
    for step in range(9000, 9100):
        resumed.track(float(step), name='loss', step=step)
    resumed.track(-5.0, name='loss', step=5)  # replaces the value of an early step
    resumed.close()
    with repo.index.write() as conn:
        conn.execute("UPDATE chunks SET vals = x'789c0bad' WHERE seq = 0")
    req = SeriesRequest(runs=[run.hash], names=['loss'], since=since, full=True)
    (series,) = fetch_series(Repo(str(tmp_path)), req)['series']
    assert series.step.tolist() == [5] + list(range(9000, 9100))
    assert series.y.tolist() == [-5.0] + [float(s) for s in range(9000, 9100)]
    with pytest.raises(RepositoryError, match='cannot be read'):
        fetch_series(Repo(str(tmp_path)), SeriesRequest(runs=[run.hash], full=True))


def test_answers_while_another_process_writes_the_series(tmp_path):
    """A writer process appends to a long series (value = step) while charts are asked
    for: every answer is made of tracked points in step order, whether it came from the
    overviews or, while a flush lands between the summary and the overviews, the points."""
    import time

    from tests.web.repo_factory import start_writer
    Repo(str(tmp_path), init=True)
    writer, (run_hash,) = start_writer(str(tmp_path), runs=1, steps=40_000, pause_every=2000)
    last_seen = -1
    answers = 0
    deadline = time.monotonic() + 60
    while writer.poll() is None and time.monotonic() < deadline:
        (series,) = fetch_series(Repo(str(tmp_path)), SeriesRequest(
            runs=[run_hash], names=['loss'], width=500))['series'] or [None]
        if series is None or not len(series.step):
            continue
        assert np.all(np.diff(series.step) > 0)
        assert np.array_equal(series.y, series.step.astype(float))
        assert series.step[-1] >= last_seen
        last_seen = int(series.step[-1])
        answers += 1
    assert writer.wait(60) == 0
    (series,) = fetch_series(Repo(str(tmp_path)), SeriesRequest(
        runs=[run_hash], names=['loss'], width=500))['series']
    assert series.step[-1] == 39_999 and len(series.step) <= 4 * 500 and answers > 3
