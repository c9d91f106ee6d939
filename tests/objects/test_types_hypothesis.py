"""Property round trips of the rich objects: what the storage thread makes of any valid
input reads back equal to the reference (numpy's histogram, the pixels, the string)."""
from __future__ import annotations

import json

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aim.sdk.objects import Distribution, Image, Text, encode, from_stored

SETTINGS = settings(max_examples=60, deadline=None)


def stored(obj):
    meta, blob = encode(obj.KIND, *obj._capture())
    json.dumps(meta, allow_nan=False)   # storage writes it as strict JSON
    return meta, blob


@SETTINGS
@given(samples=hnp.arrays(np.float64, st.integers(1, 300),
                          elements=st.floats(min_value=-1e15, max_value=1e15)
                          | st.sampled_from([np.nan, np.inf, -np.inf])),
       bin_count=st.integers(1, 512))
def test_distribution_is_numpys_histogram_of_the_finite_samples(samples, bin_count):
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return
    try:
        weights, edges = np.histogram(finite, bins=bin_count)
    except ValueError:   # one value past 2**44: numpy's ±0.5 range has no room for the bins
        assume(False)
    meta, blob = stored(Distribution(samples, bin_count))
    assert blob is None
    back = from_stored('distribution', meta, None)
    np.testing.assert_array_equal(back.weights, weights)
    np.testing.assert_array_equal(back.ranges, edges)
    assert back.nonfinite_count == samples.size - finite.size


@SETTINGS
@given(samples=hnp.arrays(np.float64, st.integers(1, 50), elements=st.floats()),
       bin_count=st.integers(1, 512))
def test_distribution_of_any_floats_stores_finite_increasing_bins(samples, bin_count):
    """Even where numpy cannot make bins (a span past 1.8e308, one value of 1e20 repeated),
    the stored range is finite, the edges increase and every finite sample is counted."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return
    back = from_stored('distribution', stored(Distribution(samples, bin_count))[0], None)
    edges = back.ranges
    assert np.isfinite(edges).all() and (edges[1:] > edges[:-1]).all()
    assert edges[0] <= finite.min() and finite.max() <= edges[-1]
    assert back.weights.sum() == finite.size


@SETTINGS
@given(pixels=hnp.arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9),
                                               st.sampled_from([1, 3, 4]))),
       caption=st.text(max_size=20).filter(lambda s: not any(0xD800 <= ord(c) < 0xE000
                                                                for c in s)))
def test_png_keeps_every_pixel(pixels, caption):
    image = Image(pixels, caption=caption)
    meta, blob = stored(image)
    back = from_stored('image', meta, lambda: blob)
    assert back.caption == caption and back.size == (pixels.shape[1], pixels.shape[0])
    np.testing.assert_array_equal(np.asarray(back.to_pil_image()).reshape(pixels.shape),
                                  pixels)
    assert stored(Image(pixels.copy(), caption=caption))[1] == blob


@SETTINGS
@given(text=st.text())
def test_text_round_trips(text):
    if any(0xD800 <= ord(c) < 0xE000 for c in text):
        return   # lone surrogates are refused (test_types.py)
    meta, blob = stored(Text(text))
    assert blob is None
    assert from_stored('text', json.loads(json.dumps(meta, ensure_ascii=False)), None).data \
        == text


@SETTINGS
@given(samples=hnp.arrays(np.int16, st.tuples(st.integers(1, 200), st.integers(1, 4))),
       rate=st.integers(1, 192_000))
def test_pcm_samples_round_trip_through_wav(samples, rate):
    from aim.sdk.objects import Audio
    meta, blob = stored(Audio(samples, rate=rate))
    back = from_stored('audio', meta, lambda: blob)
    assert back.rate == rate
    np.testing.assert_array_equal(back.to_numpy().reshape(samples.shape), samples)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@SETTINGS
@given(layout=st.dictionaries(st.text(), json_values, max_size=5))
def test_figure_blob_is_canonical_json(layout):
    from aim.sdk.objects import Figure
    figure = Figure({'data': [], 'layout': layout})
    meta, blob = stored(figure)
    def refuse(constant):
        raise AssertionError(f'{constant} in the stored JSON')
    json.loads(blob, parse_constant=refuse)   # strict JSON, as plotly.js reads it
    reordered = Figure({'layout': dict(reversed(list(layout.items()))), 'data': []})
    assert stored(reordered)[1] == blob
    assert from_stored('figure', meta, lambda: blob) == figure
