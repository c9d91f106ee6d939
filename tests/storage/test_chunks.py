import numpy as np
from hypothesis import given, settings, strategies as st

from aim.storage import chunks
from aim.storage.chunks import NO_EPOCH

epochs_st = st.one_of(st.none(), st.integers(-2 ** 62, 2 ** 62))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-2 ** 40, 2 ** 40), st.floats(allow_nan=True),
                          epochs_st, st.floats(0, 2e9)), min_size=1, max_size=300))
def test_chunk_round_trip(points):
    steps = np.array([p[0] for p in points], np.int64)
    vals = np.array([p[1] for p in points], np.float64)
    epochs = np.array([NO_EPOCH if p[2] is None else p[2] for p in points], np.int64)
    times = np.array([p[3] for p in points], np.float64)
    blobs = chunks.encode(steps, vals, epochs, times)
    s, v, e, t = chunks.decode(*blobs, len(steps))
    assert np.array_equal(s, steps)
    assert np.array_equal(v, vals, equal_nan=True)
    assert np.array_equal(e, epochs)
    assert np.allclose(t, times, atol=1e-3)


@given(st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), min_size=1, max_size=100))
def test_int_values_exact(values):
    vals = np.array(values, np.int64)
    n = len(vals)
    blobs = chunks.encode(np.arange(n), vals, np.full(n, NO_EPOCH), np.zeros(n))
    assert chunks.decode(*blobs, n)[1].tolist() == values


def test_sort_unique_last_keeps_last_written():
    steps = np.array([0, 1, 2, 1, 5, 0])
    vals = np.array([0., 1., 2., 10., 5., 20.])
    s, v, _, _ = chunks.sort_unique_last(steps, vals, steps, steps.astype(float))
    assert s.tolist() == [0, 1, 2, 5] and v.tolist() == [20., 10., 2., 5.]


def test_consecutive_steps_compress_to_almost_nothing():
    n = 4096
    blobs = chunks.encode(np.arange(n), np.random.rand(n), np.full(n, NO_EPOCH),
                          1.7e9 + np.arange(n) * 1e-4)
    assert len(blobs[0]) + len(blobs[2]) + len(blobs[3]) < n // 8  # < 1 bit a point


def test_float32_values_take_half_the_space_and_stay_exact():
    n = 4096
    vals = np.random.rand(n).astype(np.float32).astype(np.float64)
    vals[7] = np.nan
    blobs = chunks.encode(np.arange(n), vals, np.full(n, NO_EPOCH), np.zeros(n))
    assert blobs[1][:1] == b'4' and len(blobs[1]) == 1 + 4 * n
    assert np.array_equal(chunks.decode(*blobs, n)[1], vals, equal_nan=True)
    full = np.random.rand(n)
    assert chunks.encode(np.arange(n), full, np.full(n, NO_EPOCH), np.zeros(n))[1][:1] == b'F'
