"""Reducing many series that share their x values at once gives what one at a time gives."""
import numpy as np
import pytest

from aim.web.downsample import m4_indices, m4_indices_many


@pytest.mark.parametrize('n, width', [(10_000, 1000), (10_000, 333), (5, 2), (4000, 1000)])
def test_many_equals_one_at_a_time(n, width):
    rng = np.random.default_rng(0)
    x = np.arange(n, dtype=np.float64)
    ys = rng.normal(size=(7, n))
    ys[2, 500 % n] = 50.0          # a spike
    ys[3, ::97] = np.nan           # gaps
    many = m4_indices_many(x, ys, 0.0, float(n - 1), width)
    if many is None:  # uneven buckets: the caller reduces one at a time
        return
    for row, indices in zip(ys, many):
        assert np.array_equal(indices, m4_indices(x, row, 0.0, float(n - 1), width))
    assert 500 % n in many[2]
