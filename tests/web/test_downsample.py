import numpy as np
import pytest

from aim.web.downsample import clamp_width, m4_indices, m4_indices_many, visible_slice


def brute_force_m4(x, y, lo, hi, width):
    col = np.clip(((x - lo) * (width / (hi - lo))).astype(np.int64), 0, width - 1)
    keep = set()
    for c in np.unique(col):
        idx = np.flatnonzero(col == c)
        vals = y[idx]
        keep.update([idx[0], idx[-1]])
        finite = ~np.isnan(vals)
        if finite.any():
            keep.add(idx[np.flatnonzero(vals == np.nanmin(vals))[0]])
            keep.add(idx[np.flatnonzero(vals == np.nanmax(vals))[0]])
    return np.array(sorted(keep))


@pytest.mark.parametrize('seed', range(8))
def test_m4_matches_brute_force_on_uneven_buckets(seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 1000, size=5000))
    y = rng.normal(size=5000)
    y[rng.integers(0, 5000, 20)] = np.nan
    kept = m4_indices(x, y, 0.0, 1000.0, 97)
    assert np.array_equal(kept, brute_force_m4(x, y, 0.0, 1000.0, 97))


def test_even_buckets_take_the_reshape_path_and_match():
    x = np.arange(10_000, dtype=np.float64)
    y = np.sin(x / 50)
    kept = m4_indices(x, y, 0.0, 10_000.0, 1000)
    assert np.array_equal(kept, brute_force_m4(x, y, 0.0, 10_000.0, 1000))
    assert len(kept) <= 4 * 1000


def test_one_step_spike_in_ten_thousand_survives():
    x = np.arange(10_000, dtype=np.float64)
    y = np.zeros(10_000)
    y[6_543] = 1e6
    y[1_234] = -1e6
    kept = m4_indices(x, y, 0.0, 9_999.0, 1000)
    assert 6_543 in kept and 1_234 in kept
    assert y[kept].max() == 1e6 and y[kept].min() == -1e6


def test_infinities_are_extremes_and_nan_never_wins():
    x = np.arange(100, dtype=np.float64)
    y = np.ones(100)
    y[40] = np.inf
    y[41] = np.nan
    kept = m4_indices(x, y, 0.0, 100.0, 5)
    assert 40 in kept
    assert 41 not in kept  # NaN in the middle of a bucket is neither first, last, min nor max


def test_small_series_and_flat_range_are_kept_whole():
    assert list(m4_indices(np.arange(3.0), np.arange(3.0), 0, 2, 1)) == [0, 1, 2]
    x = np.zeros(10)
    kept = m4_indices(x, np.arange(10.0), 0.0, 0.0, 100)
    assert list(kept) == [0, 9]


def test_visible_slice_keeps_one_neighbour_each_side():
    x = np.arange(100, dtype=np.float64)
    part = visible_slice(x, 10.5, 20.5)
    assert (x[part][0], x[part][-1]) == (10.0, 21.0)
    assert visible_slice(x, None, None) == slice(0, 100)


def test_width_is_clamped():
    assert clamp_width(None) == 1000
    assert clamp_width(0) == 1
    assert clamp_width(10**9) == 20_000


def test_neighbours_beyond_a_zoomed_range_never_stand_in_for_its_extremes():
    """A zoomed view passes one neighbour each side of its range; they are kept (the lines
    reach the chart's edges) but the range's own lowest and highest points are kept too."""
    x = np.arange(12, dtype=float)
    y = np.array([99.0, 5, 7, 3, 6, 2, 8, 4, 6, 5, 9, -99.0])  # big neighbours at 0 and 11
    keep = m4_indices(x, y, 1.0, 10.0, 1)
    assert keep.tolist() == [0, 1, 5, 10, 11]  # neighbours; first, min (2), max = last (9)
    many = m4_indices_many(x, np.stack([y, y[::-1]]), 1.0, 10.0, 1)
    assert many[0].tolist() == keep.tolist()
    assert many[1].tolist() == m4_indices(x, y[::-1], 1.0, 10.0, 1).tolist()
