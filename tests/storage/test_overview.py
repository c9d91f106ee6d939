"""Chunk overviews (aim/storage/overview.py): what they keep, and that they follow their
chunks through writing, deleting, copying and reindexing."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aim import Repo, Run
from aim.storage import overview
from aim.storage.chunks import CHUNK_POINTS


def brute_block_m4(values: np.ndarray, block: int) -> list[int]:
    """Each block's first, lowest, highest and last index, by a plain loop; NaN never is
    a block's lowest or highest unless the whole block is NaN (then index 0 of it)."""
    kept = []
    for start in range(0, len(values), block):
        part = values[start:start + block]
        finite = ~np.isnan(part) if part.dtype.kind == 'f' else np.ones(len(part), bool)
        if finite.any():
            masked_lo = np.where(finite, part, np.inf)
            masked_hi = np.where(finite, part, -np.inf)
            lo, hi = int(np.argmin(masked_lo)), int(np.argmax(masked_hi))
        else:
            lo = hi = 0
        kept.extend(sorted({start, start + lo, start + hi, start + len(part) - 1}))
    return kept


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float('nan'))), min_size=1,
                max_size=600),
       st.sampled_from(overview.LEVELS))
def test_block_m4_matches_a_plain_loop(values, block):
    arr = np.array(values, dtype=np.float64)
    assert overview.block_m4(arr, block).tolist() == brute_block_m4(arr, block)


def test_blob_round_trip_keeps_each_levels_points_and_value_type():
    rng = np.random.default_rng(3)
    floats = rng.normal(size=CHUNK_POINTS)
    for values, tag, dtype in ((floats, b'F', np.float64),
                               (floats.astype(np.float32).astype(np.float64), b'4', np.float32),
                               (rng.integers(-10**12, 10**12, 1000), b'I', np.int64)):
        blob = overview.encode(values, tag)
        for level in overview.LEVELS:
            positions, stored = overview.decode(blob, level)
            assert positions.tolist() == brute_block_m4(values, level)
            assert stored.dtype == dtype
            assert np.array_equal(stored.astype(values.dtype), values[positions])


def test_decode_refuses_what_is_not_an_overview():
    import pytest
    with pytest.raises(ValueError, match='not an overview'):
        overview.decode(b'xx', 16)


def _overview_rows(repo, run_hash):
    return repo.index.query(
        'SELECT o.seq, o.n, o.first_step, o.stride, o.points FROM overviews o '
        'JOIN series s ON s.id = o.series_id WHERE s.run_hash=? AND s.name=? ORDER BY o.seq',
        (run_hash, 'loss'))


def _track(repo, n, step=lambda i: i):
    run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    rng = np.random.default_rng(0)
    values = rng.normal(size=n)
    for i in range(n):
        run.track(float(values[i]), name='loss', step=step(i))
    run.close()
    return run.hash, values


@pytest.mark.backends
def test_every_chunk_gets_its_overview_as_it_is_written(repo):
    run_hash, values = _track(repo, 10_000, step=lambda i: 3 * i + 7)
    rows = _overview_rows(repo, run_hash)
    assert [r[0] for r in rows] == [0, 1, 2]
    assert [r[1] for r in rows] == [CHUNK_POINTS, CHUNK_POINTS, 10_000 - 2 * CHUNK_POINTS]
    assert [r[2] for r in rows] == [7 + 3 * k * CHUNK_POINTS for k in range(3)]
    assert {r[3] for r in rows} == {3}
    for k, (_, n, _, _, blob) in enumerate(rows):
        chunk = values[k * CHUNK_POINTS:k * CHUNK_POINTS + n]
        positions, stored = overview.decode(blob, 16)
        assert positions.tolist() == brute_block_m4(chunk, 16)
        assert np.array_equal(stored, chunk[positions])


@pytest.mark.backends
def test_uneven_steps_store_no_stride(repo):
    run_hash, _ = _track(repo, 5000, step=lambda i: i * i)
    assert [r[3] for r in _overview_rows(repo, run_hash)] == [None, None]


@pytest.mark.backends
def test_a_series_that_fits_in_one_chunk_has_no_block_extremes(repo):
    """It is read whole: its rewrites while it grows skip the extremes (the row still says
    how many points the chunk holds and when it was last written)."""
    short, _ = _track(repo, CHUNK_POINTS - 1)
    full, _ = _track(repo, CHUNK_POINTS)
    assert [(r[1], r[4]) for r in _overview_rows(repo, short)] == [(CHUNK_POINTS - 1, None)]
    assert [r[1] for r in _overview_rows(repo, full)] == [CHUNK_POINTS]
    assert _overview_rows(repo, full)[0][4] is not None


@pytest.mark.backends
def test_each_row_knows_when_its_chunk_was_last_written(repo):
    run_hash, _ = _track(repo, 5000)
    times = repo.index.query(
        'SELECT o.last_time FROM overviews o JOIN series s ON s.id = o.series_id '
        'WHERE s.run_hash=? ORDER BY o.seq', (run_hash,))
    metric = repo.get_run(run_hash).get_metric('loss')
    stamps = np.asarray(metric.timestamps)
    assert [t for (t,) in times] == [stamps[:CHUNK_POINTS].max(), stamps.max()]


def test_an_earlier_layout_of_the_table_is_dropped_for_reindex_to_rebuild(tmp_path):
    import sqlite3
    repo = Repo(str(tmp_path), init=True)
    run_hash, _ = _track(repo, 5000)
    repo.close()
    conn = sqlite3.connect(tmp_path / '.aim' / 'repo.db')
    with conn:
        conn.execute('DROP TABLE overviews')
        conn.execute('CREATE TABLE overviews(series_id INTEGER NOT NULL, seq INTEGER NOT '
                     'NULL, n INTEGER, first_step INTEGER, stride INTEGER, points BLOB, '
                     'PRIMARY KEY(series_id, seq))')
    conn.close()
    again = Repo(str(tmp_path))
    assert _overview_rows(again, run_hash) == []
    again._store.reindex()
    assert len(_overview_rows(again, run_hash)) == 2
