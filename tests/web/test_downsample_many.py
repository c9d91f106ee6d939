"""Reducing many series that share their x values at once gives what one at a time gives."""
import numpy as np
import pytest

from aim.web.downsample import m4_indices, m4_indices_many


@pytest.mark.parametrize('n, width', [(10_000, 1000), (10_000, 333), (10_000, 801), (5, 2),
                                      (4000, 1000), (997, 13)])
def test_many_equals_one_at_a_time(n, width):
    """Even and uneven buckets (10,000 steps over 801 pixels: 12 or 13 points a bucket)."""
    rng = np.random.default_rng(0)
    x = np.arange(n, dtype=np.float64)
    ys = rng.normal(size=(7, n))
    ys[2, 500 % n] = 50.0          # a spike
    ys[3, ::97] = np.nan           # gaps
    ys[4] = np.round(ys[4])        # ties: the first of equal values is kept
    ys[5, -3:] = -50.0             # the minimum repeated at the very end
    ys[6] = 1.0                    # flat
    many = m4_indices_many(x, ys, 0.0, float(n - 1), width)
    for row, indices in zip(ys, many):
        assert np.array_equal(indices, m4_indices(x, row, 0.0, float(n - 1), width))
    assert 500 % n in many[2]


def test_shared_x_series_reduced_a_chunk_at_a_time_as_all_at_once(monkeypatch):
    """The server reduces series sharing their x a few MB of rows at a time; the kept
    points are those of one series reduced alone."""
    from aim.web import series_source
    from aim.web.series_source import SeriesData, SeriesRequest, _reduce_shared_x
    rng = np.random.default_rng(4)
    x = np.arange(3000, dtype=np.float64)
    loaded = {i: SeriesData(None, x, rng.normal(size=3000), x.copy()) for i in range(7)}
    monkeypatch.setattr(series_source, 'SHARED_X_CHUNK_POINTS', 2 * 3000)  # 2 rows a chunk
    kept = _reduce_shared_x(loaded, SeriesRequest(width=333), 0.0, 2999.0, 333)
    assert sorted(kept) == list(range(7))
    for i, (xk, yk, sk) in kept.items():
        alone = m4_indices(x, loaded[i].y, 0.0, 2999.0, 333)
        assert np.array_equal(xk, x[alone]) and np.array_equal(yk, loaded[i].y[alone])
        assert np.array_equal(sk, x[alone])
