"""The rich object types: every accepted input, the capture -> encode -> from_stored round
trip against reference values (numpy, np.histogram, wave, plotly), and bad input."""
from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import time
import wave

import numpy as np
import pytest
from PIL import Image as PILImage

from aim.errors import TrackInputError
from aim.sdk.objects import (
    KINDS,
    Audio,
    Audios,
    Distribution,
    Distributions,
    Figure,
    Figures,
    Image,
    Images,
    Text,
    Texts,
    convert_to_aim_image_list,
    encode,
    from_stored,
    is_object,
)

RNG = np.random.default_rng(7)


def roundtrip(obj, *, lazy=True):
    """capture -> encode -> from_stored, as storage does it; the blob loader counts calls."""
    meta, payload = obj._capture()
    assert isinstance(payload, (bytes, memoryview))   # bytes-like, the object's own copy
    json.dumps(meta)  # the captured meta is JSON-able
    stored, blob = encode(obj.KIND, meta, payload)
    json.dumps(stored)
    calls = []

    def load():
        calls.append(1)
        return blob

    back = from_stored(obj.KIND, stored, load if blob is not None else None)
    return back, stored, blob, calls


def pixels(img):
    return np.asarray(img.to_pil_image())


# -- the package ----------------------------------------------------------------------


def test_import_is_light():
    code = ('import sys, aim.sdk.objects; '
            'print(sorted(m for m in ("numpy", "PIL", "plotly", "matplotlib", "torch") '
            'if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == '[]'


def test_names_kinds_and_sequences():
    expected = {'image': (Image, 'aim.image', Images, 'images'),
                'text': (Text, 'aim.text', Texts, 'texts'),
                'distribution': (Distribution, 'aim.distribution', Distributions,
                                 'distributions'),
                'audio': (Audio, 'aim.audio', Audios, 'audios'),
                'figure': (Figure, 'aim.figure', Figures, 'figures')}
    assert set(KINDS) == set(expected)
    for kind, (cls, aim_name, seq, seq_name) in expected.items():
        assert KINDS[kind] is cls and cls.KIND == kind and cls.AIM_NAME == aim_name
        assert seq.sequence_name() == seq_name
        assert seq.allowed_dtypes() == (aim_name, f'list({aim_name})')
    assert is_object(Text('x')) and not is_object('x') and not is_object(1.0)


def test_encode_takes_any_bytes_like_payload():
    img = Image(np.zeros((2, 2), dtype=np.uint8))
    meta, payload = img._capture()
    expected = encode('image', meta, payload)
    assert encode('image', meta, memoryview(payload)) == expected
    assert encode('image', meta, bytearray(payload)) == expected
    assert encode('text', *Text('é')._capture()) == \
        encode('text', {}, memoryview('é'.encode()))


def test_numpy_integers_are_ints():
    assert Audio(np.zeros(3), rate=np.int64(8000)).rate == 8000
    assert Distribution([1, 2], np.int32(2)).bin_count == 2
    Image(np.zeros((2, 2), dtype=np.uint8), format='jpeg', quality=np.uint8(50))


def test_unknown_kind_is_refused():
    with pytest.raises(TrackInputError, match="unknown object kind 'video'"):
        encode('video', {}, b'')
    with pytest.raises(TrackInputError, match='video'):
        from_stored('video', {}, None)


def test_track_input_error_is_type_and_value_error():
    with pytest.raises(TypeError):
        Text(1)
    with pytest.raises(ValueError):
        Distribution([])


# -- Image ----------------------------------------------------------------------------

@pytest.mark.parametrize('shape, mode', [
    ((12, 10), 'L'), ((12, 10, 1), 'L'), ((12, 10, 3), 'RGB'), ((12, 10, 4), 'RGBA'),
])
def test_image_from_numpy_shapes(shape, mode):
    arr = RNG.integers(0, 256, shape, dtype=np.uint8)
    img = Image(arr, caption='c')
    assert (img.width, img.height, img.size) == (10, 12, (10, 12))
    back, stored, blob, calls = roundtrip(img)
    assert blob.startswith(b'\x89PNG') and stored['mode'] == mode
    assert stored == {'caption': 'c', 'format': 'png', 'width': 10, 'height': 12, 'mode': mode}
    assert (back.width, back.height, back.caption, back.format) == (10, 12, 'c', 'png')
    assert calls == []  # size and caption come from the meta
    np.testing.assert_array_equal(pixels(back), arr.reshape(pixels(back).shape))
    assert calls == [1]
    assert back == img


@pytest.mark.parametrize('channels', [1, 3, 4])
def test_image_channels_first(channels):
    arr = RNG.integers(0, 256, (channels, 6, 5), dtype=np.uint8)
    back = roundtrip(Image(arr))[0]
    assert back.size == (5, 6)
    np.testing.assert_array_equal(pixels(back).reshape(6, 5, channels), arr.transpose(1, 2, 0))


def test_channels_first_pixels_are_interleaved_in_encode():
    hwc = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    meta, payload = Image(chw)._capture()
    assert meta['planar'] is True and payload == chw.tobytes()   # a plain copy in the caller
    assert encode('image', meta, payload) == encode('image', *Image(hwc)._capture())
    assert Image(chw) == Image(hwc)
    np.testing.assert_array_equal(pixels(Image(chw)), hwc)


def test_image_dtypes():
    floats = RNG.random((4, 5, 3))
    np.testing.assert_array_equal(pixels(Image(floats)), np.rint(floats * 255).astype(np.uint8))
    np.testing.assert_array_equal(pixels(Image(floats.astype(np.float32))),
                                  np.rint(floats.astype(np.float32) * 255).astype(np.uint8))
    mask = RNG.random((4, 5)) > 0.5
    np.testing.assert_array_equal(pixels(Image(mask)), mask.astype(np.uint8) * 255)
    ints = RNG.integers(0, 256, (4, 5), dtype=np.int64)
    np.testing.assert_array_equal(pixels(Image(ints)), ints)
    wide = RNG.random((4, 5)) * 200 + 10   # float already on the 0..255 scale
    np.testing.assert_array_equal(pixels(Image(wide)), np.rint(wide).astype(np.uint8))
    strided = RNG.integers(0, 256, (8, 10, 3), dtype=np.uint8)[::2, ::-1]
    np.testing.assert_array_equal(pixels(Image(strided)), strided)


def test_image_copies_the_callers_array():
    arr = np.zeros((4, 4, 3), dtype=np.uint8)
    img = Image(arr)
    arr[:] = 255
    meta, payload = img._capture()
    assert payload == bytes(48)
    assert not pixels(img).any()


def test_image_from_pil_modes():
    rgb = PILImage.fromarray(RNG.integers(0, 256, (7, 9, 3), dtype=np.uint8))
    for img in (rgb, rgb.convert('L'), rgb.convert('RGBA'), rgb.convert('LA')):
        back = roundtrip(Image(img))[0]
        assert back.to_pil_image().mode == img.mode
        assert back.to_pil_image().tobytes() == img.tobytes()
    palette = rgb.convert('P')
    assert pixels(Image(palette)).tolist() == np.asarray(palette.convert('RGB')).tolist()
    bilevel = rgb.convert('1')
    np.testing.assert_array_equal(pixels(Image(bilevel)), np.asarray(bilevel.convert('L')))
    cmyk = rgb.convert('CMYK')
    assert Image(cmyk).to_pil_image().mode == 'RGB'
    sixteen = PILImage.fromarray(np.full((3, 3), 200, dtype=np.uint16))
    assert pixels(Image(sixteen)).tolist() == [[200] * 3] * 3
    with pytest.raises(TrackInputError, match='0..255.*16-bit'):
        Image(PILImage.fromarray(np.full((3, 3), 4000, dtype=np.uint16)))


def test_image_from_torch_tensor():
    torch = pytest.importorskip('torch')
    chw = torch.rand(3, 6, 5, requires_grad=True)
    img = Image(chw)
    assert img.size == (5, 6)
    expected = np.rint(chw.detach().numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels(roundtrip(img)[0]), expected)
    grey = torch.randint(0, 256, (6, 5), dtype=torch.uint8)
    np.testing.assert_array_equal(pixels(Image(grey)), grey.numpy())
    assert Image(torch.rand(1, 6, 5, dtype=torch.bfloat16)).size == (5, 6)


class ArrayLike:
    """Another library's array: numpy reads it through __array__."""

    def __init__(self, arr):
        self.arr = arr

    def __array__(self, dtype=None, copy=None):
        return self.arr


def test_array_likes_are_read_with_numpy():
    arr = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(pixels(Image(ArrayLike(arr))), arr)
    pcm = RNG.integers(-100, 100, 50, dtype=np.int16)
    np.testing.assert_array_equal(Audio(ArrayLike(pcm)).to_numpy(), pcm)
    assert Distribution(ArrayLike(np.arange(4.0)), 2).weights.tolist() == [2, 2]


def test_image_from_file_keeps_its_bytes(tmp_path):
    arr = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for fmt, ext in (('png', 'png'), ('jpeg', 'jpg'), ('gif', 'gif'), ('webp', 'webp')):
        path = tmp_path / f'picture.{ext}'
        PILImage.fromarray(arr).save(path)
        data = path.read_bytes()
        for source in (path, str(path), data, io.BytesIO(data)):
            img = Image(source, caption='file', format='png')
            assert img.format == fmt  # the file's own format, not the argument
            back, stored, blob, _ = roundtrip(img)
            assert blob == data
            assert (stored['width'], stored['height'], stored['format']) == (30, 20, fmt)
            assert back.size == (30, 20) and back.caption == 'file'
            assert back == img
        if fmt == 'png':
            np.testing.assert_array_equal(pixels(Image(path)), arr)


def test_image_file_object_position_is_restored():
    buf = io.BytesIO()
    PILImage.new('RGB', (3, 2)).save(buf, 'PNG')
    buf.seek(0)
    Image(buf)
    assert buf.tell() == 0


def test_image_formats():
    rgba = RNG.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    rgba[..., 3] = 0   # fully transparent: JPEG must show white
    stored, blob = encode('image', *Image(rgba, format='JPG', quality=95)._capture())
    assert stored['format'] == 'jpeg' and stored['mode'] == 'RGB' and blob[:3] == b'\xff\xd8\xff'
    assert np.asarray(PILImage.open(io.BytesIO(blob))).min() > 240
    low = encode('image', *Image(rgba[..., :3], format='jpeg', quality=5)._capture())[1]
    high = encode('image', *Image(rgba[..., :3], format='jpeg', quality=95)._capture())[1]
    assert len(low) < len(high)
    for fmt, magic in (('webp', b'RIFF'), ('gif', b'GIF8'), ('bmp', b'BM'), ('tiff', b'II')):
        stored, blob = encode('image', *Image(rgba, format=fmt.upper())._capture())
        assert stored['format'] == fmt and blob.startswith(magic)
        assert from_stored('image', stored, lambda b=blob: b).to_pil_image().size == (16, 16)
    greyalpha = PILImage.fromarray(rgba[..., :2].copy(), 'LA')
    stored, blob = encode('image', *Image(greyalpha, format='jpeg')._capture())
    assert stored['mode'] == 'L'


def test_image_blobs_are_deterministic():
    arr = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for fmt in ('png', 'jpeg', 'webp'):
        first = encode('image', *Image(arr, format=fmt)._capture())
        second = encode('image', *Image(arr.copy(), format=fmt)._capture())
        assert first == second


def test_image_json_repr_eq_get():
    arr = RNG.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    img = Image(arr, caption='cat')
    assert img.json() == {'caption': 'cat', 'format': 'png', 'width': 4, 'height': 3}
    assert repr(img) == "<Image 4×3 RGB, format='png', caption='cat'>"
    assert img == Image(arr.copy(), caption='cat')
    assert img != Image(arr, caption='dog')
    assert img != Image(255 - arr, caption='cat')
    assert img != Text('cat')
    assert img.get().read().startswith(b'\x89PNG')


def test_image_matplotlib_figure():
    pytest.importorskip('matplotlib')
    from matplotlib.figure import Figure as MplFigure
    fig = MplFigure(figsize=(2, 1), dpi=50)
    fig.add_subplot().plot([0, 1], [1, 0])
    img = Image(fig)
    assert img.format == 'png' and img.size == (100, 50)
    assert roundtrip(img)[0].to_pil_image().size == (100, 50)


@pytest.mark.parametrize('value, message', [
    (np.zeros((2, 3, 4, 5)), r'shape \(2, 3, 4, 5\).*batch'),
    (np.zeros((5, 6, 7)), r'shape \(5, 6, 7\) has no channel axis'),
    (np.zeros(5), r'shape \(5,\) is not an image'),
    (np.zeros((0, 4)), 'no pixels'),
    (np.zeros((4, 4), dtype=complex), 'dtype complex128'),
    (np.full((4, 4), np.nan), 'NaN'),
    (np.full((4, 4), -0.5), r'\[0, 1\].*-0.5'),
    (np.linspace(-1, 1, 16).reshape(4, 4), r'-1..1: normalize it first \(for an image in '
                                           r'\[-1, 1\], pass \(x \+ 1\) / 2\)'),
    (np.full((4, 4), 300, dtype=np.int32), 'int32.*300'),
    (b'not an image at all', "not a PNG.*b'not an "),
    ({'pixels': 1}, r'from dict; pass a PIL image'),
    (12, 'from int'),
])
def test_image_bad_input(value, message):
    with pytest.raises(TrackInputError, match=message):
        Image(value)


def test_image_bad_arguments(tmp_path):
    arr = np.zeros((2, 2), dtype=np.uint8)
    with pytest.raises(TrackInputError, match="unknown format 'svg'.*png"):
        Image(arr, format='svg')
    with pytest.raises(TrackInputError, match='caption must be a str, not int'):
        Image(arr, caption=3)
    with pytest.raises(TrackInputError, match='caption holds a lone surrogate at index 1'):
        Image(arr, caption='a\udc80')
    assert Image(arr, caption='ünï ✓').caption == 'ünï ✓'
    with pytest.raises(TrackInputError, match='quality'):
        Image(arr, quality=101)
    with pytest.raises(TrackInputError, match='cannot read the file .*missing.png'):
        Image(tmp_path / 'missing.png')
    with pytest.raises(TrackInputError, match='cannot read'):
        Image(str(tmp_path))   # a directory
    with pytest.raises(TrackInputError, match='text mode'):
        Image(io.StringIO('abc'))


def test_stored_image_without_a_blob():
    img = from_stored('image', {'caption': 'c', 'format': 'png', 'width': 3, 'height': 2,
                                'mode': 'RGB'}, None)
    assert img.size == (3, 2) and img.json()['caption'] == 'c'
    with pytest.raises(ValueError, match='no pixel data'):
        img.to_pil_image()


def test_blob_loaders_may_return_a_memoryview_or_lose_the_blob():
    arr = RNG.integers(0, 256, (3, 3, 3), dtype=np.uint8)
    meta, blob = encode('image', *Image(arr)._capture())
    np.testing.assert_array_equal(pixels(from_stored('image', meta, lambda: memoryview(blob))),
                                  arr)
    for kind, obj in (('image', Image(arr)), ('audio', Audio(make_wav())),
                      ('figure', Figure({'data': []}))):
        meta = encode(kind, *obj._capture())[0]
        lost = from_stored(kind, meta, lambda: None)
        with pytest.raises(ValueError, match='missing from the repository'):
            lost.to_pil_image() if kind == 'image' else lost.get() if kind == 'audio' \
                else lost.data


def test_missing_optional_library_is_named_with_its_install_line():
    from aim.sdk.objects.base import require
    with pytest.raises(ImportError, match='Figure.to_plotly_figure.. needs plotly-x, which '
                                          'is not installed: pip install plotly-x'):
        require('no_such_module_here', 'plotly-x', 'Figure.to_plotly_figure()')


def test_damaged_image_file_fails_in_encode_not_later():
    meta, payload = Image(b'\x89PNG\r\n\x1a\n' + b'\0' * 20)._capture()
    with pytest.raises(TrackInputError, match='cannot be read'):
        encode('image', meta, payload)


def test_convert_to_aim_image_list():
    batch = RNG.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    images = convert_to_aim_image_list(batch, np.array([1, 2, 3]))
    assert [i.caption for i in images] == ['1', '2', '3']
    assert [i.size for i in images] == [(4, 4)] * 3
    assert [i.caption for i in convert_to_aim_image_list(list(batch))] == ['', '', '']
    with pytest.raises(TrackInputError, match='3 images but 2 labels'):
        convert_to_aim_image_list(batch, ['a', 'b'])


# -- Text -----------------------------------------------------------------------------

def test_text_roundtrip():
    for value in ('', 'hello', 'ünïcødé ✓ 🚀', 'x' * 100_000):
        text = Text(value)
        back, stored, blob, _ = roundtrip(text)
        assert blob is None and stored == {'text': value}
        assert back.data == value and str(back) == value and back == text
        assert back.json() == {'data': value}


def test_text_input():
    class Name(str):
        pass
    assert Text(Name('x')).data == 'x'
    for bad, name in ((b'bytes', 'bytes'), (3, 'int'), (None, 'NoneType'), (['a'], 'list')):
        with pytest.raises(TrackInputError, match=f'expected a str, not {name}'):
            Text(bad)
    with pytest.raises(TrackInputError, match='surrogate'):
        Text('a\ud800b')._capture()
    assert repr(Text('hi')) == "<Text 'hi', 2 characters>"
    assert Text('a') != Text('b')


# -- Distribution ---------------------------------------------------------------------

def test_distribution_matches_np_histogram():
    samples = RNG.normal(size=10_000)
    for bins in (1, 7, 64, 512):
        dist = Distribution(samples, bin_count=bins)
        weights, edges = np.histogram(samples, bins=bins)
        assert dist.bin_count == bins
        np.testing.assert_array_equal(dist.weights, weights)
        np.testing.assert_array_equal(dist.ranges, edges)
        assert dist.range == [edges[0], edges[-1]]
        got_w, got_e = dist.to_np_histogram()
        np.testing.assert_array_equal(got_w, weights)
        np.testing.assert_array_equal(got_e, edges)
        back, stored, blob, _ = roundtrip(Distribution(samples, bin_count=bins))
        assert blob is None and stored['bin_count'] == bins
        assert stored['weights'] == weights.astype(float).tolist()
        np.testing.assert_array_equal(back.weights, weights)
        np.testing.assert_array_equal(back.ranges, edges)
        assert back == dist


def test_distribution_inputs():
    ints = RNG.integers(-50, 50, 1000)
    expected = np.histogram(ints, bins=10)[0]
    for value in (ints, ints.tolist(), ints.astype('>i8'), ints.reshape(10, 100)):
        np.testing.assert_array_equal(Distribution(value, 10).weights, expected)
    assert Distribution([True, False, True], 2).weights.tolist() == [1.0, 2.0]
    constant = Distribution([3.0, 3.0], 4)
    assert constant.range == [2.5, 3.5] and constant.weights.sum() == 2
    torch = pytest.importorskip('torch')
    tensor = torch.randn(100, requires_grad=True)
    np.testing.assert_array_equal(Distribution(tensor, 8).weights,
                                  np.histogram(tensor.detach().numpy(), bins=8)[0])


def test_distribution_from_histogram():
    dist = Distribution.from_histogram([1, 2, 3, 4], (0, 8))
    assert dist.bin_count == 4 and dist.range == [0.0, 8.0]
    assert dist.ranges.tolist() == [0, 2, 4, 6, 8]
    assert dist == Distribution(hist=np.array([1.0, 2, 3, 4]), bin_range=[0, 8])
    back, stored, _, _ = roundtrip(dist)
    assert stored == {'bin_count': 4, 'range': [0.0, 8.0], 'weights': [1.0, 2.0, 3.0, 4.0],
                      'nonfinite': 0}
    assert back == dist
    assert Distribution.from_samples([1, 2, 3], 3).weights.tolist() == [1, 1, 1]


def test_distribution_drops_non_finite_samples():
    samples = np.array([1.0, 2.0, np.nan, np.inf, -np.inf, 3.0])
    dist = Distribution(samples, 3)
    assert dist.weights.tolist() == [1, 1, 1] and dist.range == [1.0, 3.0]
    assert dist.nonfinite_count == 3
    stored = roundtrip(Distribution(samples, 3))[1]
    assert stored['nonfinite'] == 3 and stored['range'] == [1.0, 3.0]


BIG = float(np.finfo(np.float64).max)


@pytest.mark.parametrize('samples', [
    [-BIG, BIG], [-BIG, 0.0], [BIG, BIG], [-BIG, -BIG], [1e-300, BIG], [1e20, 1e20, 1e20],
    [2.0 ** 1000] * 2, [1e-320, 0.0], [5e-324], [1e20, float(np.nextafter(1e20, 2e20))],
    [BIG, float(np.nextafter(BIG, 0))],
], ids=repr)
def test_distribution_where_numpy_cannot_make_bins(samples):
    for bins in (1, 3, 64, 512):
        dist = Distribution(np.array(samples), bins)
        edges = dist.ranges
        assert np.isfinite(edges).all() and (edges[1:] > edges[:-1]).all()
        assert edges[0] <= min(samples) and max(samples) <= edges[-1]
        assert dist.weights.sum() == len(samples)
        stored = roundtrip(Distribution(np.array(samples), bins))[1]
        json.dumps(stored, allow_nan=False)
        assert from_stored('distribution', stored, None) == dist


def test_distribution_histogram_is_lazy_and_capture_is_the_same_either_way():
    samples = RNG.normal(size=1000)
    fresh = Distribution(samples)
    assert fresh._weights is None   # nothing computed in the constructor
    meta, payload = fresh._capture()
    assert meta['source'] == 'samples'
    used = Distribution(samples)
    used.weights  # noqa: B018  (computes the histogram)
    assert used._capture()[0]['source'] == 'hist'
    assert encode('distribution', meta, payload) == encode('distribution', *used._capture())


def test_distribution_copies_the_callers_samples():
    samples = np.zeros(10)
    dist = Distribution(samples, 2)
    samples[:] = 5
    assert dist.range == [-0.5, 0.5]


@pytest.mark.parametrize('args, kwargs, message', [
    (([1, 2], 0), {}, r'bin_count must be in 1..512, not 0'),
    (([1, 2], 513), {}, r'1..512, not 513'),
    (([1, 2], 1.5), {}, 'bin_count must be an int'),
    (([1, 2], True), {}, 'bin_count must be an int'),
    (([],), {}, 'samples are empty'),
    ((np.array([np.nan, np.inf]),), {}, 'all 2 samples are NaN or infinite'),
    ((['a', 'b'],), {}, 'real numbers'),
    (([1, None],), {}, 'real numbers'),
    (([[1, 2], [3]],), {}, 'numbers'),
    ((np.array([1j]),), {}, 'complex'),
    ((), {}, 'pass samples'),
    (([1],), {'hist': [1]}, 'not both'),
    ((), {'hist': [1, 2]}, 'bin_range'),
    ((), {'hist': [1, 2], 'bin_range': (1, 1)}, 'low < high'),
    ((), {'hist': [1, 2], 'bin_range': (0, np.inf)}, 'finite'),
    ((), {'hist': [1, 2], 'bin_range': 5}, 'two numbers'),
    ((), {'hist': [1, np.nan], 'bin_range': (0, 1)}, 'finite'),
    ((), {'hist': [], 'bin_range': (0, 1)}, 'hist weights must be in 1..512, not 0'),
    ((), {'hist': np.ones(600), 'bin_range': (0, 1)}, 'not 600'),
])
def test_distribution_bad_input(args, kwargs, message):
    with pytest.raises(TrackInputError, match=message):
        Distribution(*args, **kwargs)


def test_distribution_repr():
    assert repr(Distribution([1, 2], 2)) == '<Distribution of 2 samples, 2 bins>'
    assert repr(Distribution.from_histogram([1], (0, 1))) == \
        '<Distribution 1 bins over [0, 1]>'


# -- Audio ----------------------------------------------------------------------------

def read_wav(data):
    with wave.open(io.BytesIO(data), 'rb') as w:
        return (w.getnchannels(), w.getsampwidth(), w.getframerate(),
                w.readframes(w.getnframes()))


def test_audio_from_float_samples():
    t = np.linspace(0, 1, 8000, endpoint=False)
    mono = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio = Audio(mono, caption='A4', rate=8000)
    back, stored, blob, _ = roundtrip(audio)
    assert stored == {'caption': 'A4', 'format': 'wav', 'rate': 8000}
    channels, width, rate, frames = read_wav(blob)
    assert (channels, width, rate) == (1, 2, 8000)
    expected = np.rint(mono.astype(np.float64) * 32767).astype('<i2')
    np.testing.assert_array_equal(np.frombuffer(frames, '<i2'), expected)
    np.testing.assert_array_equal(back.to_numpy(), expected)
    assert back == audio and back.caption == 'A4' and back.rate == 8000
    assert back.get().read() == blob == audio.get().read()


def test_audio_pcm_dtypes_and_channels():
    stereo = RNG.integers(-32768, 32768, (500, 2), dtype=np.int16)
    back = roundtrip(Audio(stereo))[0]
    assert read_wav(back.get().read())[:3] == (2, 2, 22050)
    np.testing.assert_array_equal(back.to_numpy(), stereo)
    loud = np.array([2.0, -3.0, 0.0])
    assert Audio(loud).to_numpy().tolist() == [32767, -32767, 0]  # clipped to [-1, 1]
    eight = RNG.integers(0, 256, 100, dtype=np.uint8)
    np.testing.assert_array_equal(Audio(eight).to_numpy(), eight)
    wide = RNG.integers(-2**31, 2**31, (100, 3), dtype=np.int32)
    np.testing.assert_array_equal(Audio(wide).to_numpy(), wide)
    big_endian = stereo.astype('>i2')
    np.testing.assert_array_equal(Audio(big_endian).to_numpy(), stereo)
    torch = pytest.importorskip('torch')
    assert Audio(torch.zeros(10)).to_numpy().tolist() == [0] * 10


def test_audio_blobs_are_deterministic():
    samples = RNG.random(1000) * 2 - 1
    assert encode('audio', *Audio(samples)._capture()) == \
        encode('audio', *Audio(samples.copy())._capture())


def test_audio_copies_the_callers_samples():
    samples = np.zeros(10, dtype=np.int16)
    audio = Audio(samples)
    samples[:] = 7
    assert audio.to_numpy().tolist() == [0] * 10


def make_wav(rate=16000, frames=b'\0\0' * 10):
    buf = io.BytesIO()
    with wave.open(buf, 'wb') as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


ENCODED = {
    'mp3': b'ID3\x04\x00\x00\x00\x00\x00\x00' + b'\xff\xfb\x90\x00' * 4,
    'flac': b'fLaC\x00\x00\x00\x22' + bytes(34),
    'ogg': b'OggS\x00\x02' + bytes(40),
}


def test_audio_from_encoded_bytes_path_and_file_object(tmp_path):
    wav = make_wav(rate=16000)
    for source in (wav, bytearray(wav), io.BytesIO(wav)):
        audio = Audio(source, caption='w')
        assert audio.format == 'wav' and audio.rate == 16000   # the header's rate
        back, stored, blob, _ = roundtrip(audio)
        assert blob == wav and stored['rate'] == 16000 and back == audio
    for fmt, data in {**ENCODED, 'mp3 sync': b'\xff\xfb\x90\x00' * 4}.items():
        fmt = fmt.split()[0]
        path = tmp_path / f'sound.{fmt}'
        path.write_bytes(data)
        for source in (data, path, str(path), io.BytesIO(data)):
            audio = Audio(source, format=fmt, rate=44100)
            assert audio.format == fmt and audio.rate == 44100
            back, stored, blob, _ = roundtrip(audio)
            assert blob == data and stored == {'caption': '', 'format': fmt, 'rate': 44100}
            assert back.get().read() == data


def test_audio_format_and_rate_may_be_left_empty():
    # older Aim code passes format='' and rate=None
    assert Audio(ENCODED['flac'], format='', rate=None).format == 'flac'
    assert Audio(ENCODED['ogg'], format=None).format == 'ogg'
    assert Audio(np.zeros(4), format='', rate=None).rate == 22050
    with pytest.raises(TrackInputError, match="not WAV, MP3, FLAC or OGG audio: expected .*"
                                              "'RIFF....WAVE'.*'OggS', but they start with"):
        Audio(b'garbage', format='')


def test_audio_format_follows_the_bytes():
    # Aim's default format is 'wav'; MP3 bytes passed without format= are stored as MP3
    assert Audio(ENCODED['mp3']).format == 'mp3'
    assert Audio(make_wav(), format='flac').format == 'wav'


def test_audio_bad_input():
    with pytest.raises(TrackInputError, match=r"not MP3 audio: expected .*'ID3'.*b'hello"):
        Audio(b'hello world!', format='mp3')
    with pytest.raises(TrackInputError, match=r"not WAV audio: expected .*RIFF"):
        Audio(b'\x89PNG\r\n\x1a\n')
    with pytest.raises(TrackInputError, match=r"the file object is not WAV audio: .* but it "
                                              r"starts with b'\\x00"):
        Audio(io.BytesIO(bytes(16)))
    with pytest.raises(TrackInputError, match="unknown format 'aac'"):
        Audio(b'', format='aac')
    with pytest.raises(TrackInputError, match='rate must be a positive int'):
        Audio(np.zeros(3), rate=0)
    with pytest.raises(TrackInputError, match='rate must be a positive int'):
        Audio(np.zeros(3), rate=22050.0)
    with pytest.raises(TrackInputError, match=r'shape \(2, 1000\).*transpose'):
        Audio(np.zeros((2, 1000)))
    with pytest.raises(TrackInputError, match=r'shape \(2, 3, 4\)'):
        Audio(np.zeros((2, 3, 4)))
    with pytest.raises(TrackInputError, match='no samples'):
        Audio(np.zeros(0))
    with pytest.raises(TrackInputError, match='NaN'):
        Audio(np.array([0.0, np.nan]))
    with pytest.raises(TrackInputError, match='dtype int64'):
        Audio(np.zeros(3, dtype=np.int64))
    with pytest.raises(TrackInputError, match="samples are written as WAV; pass format='wav'"):
        Audio(np.zeros(3), format='mp3')
    with pytest.raises(TrackInputError, match='from list'):
        Audio([0.0, 0.1])
    with pytest.raises(TrackInputError, match='caption must be a str'):
        Audio(make_wav(), caption=None)
    with pytest.raises(TrackInputError, match='lone surrogate'):
        Audio(make_wav(), caption='\ud800')


def float_wav(rate):
    """A 32-bit float WAV (format code 3), which the standard library's wave cannot read."""
    import struct
    data = np.array([0.0, 0.5, -0.5], dtype='<f4').tobytes()
    fmt = struct.pack('<HHIIHH', 3, 1, rate, rate * 4, 4, 32)
    body = b'WAVE' + b'fmt ' + struct.pack('<I', len(fmt)) + fmt + b'data' + \
        struct.pack('<I', len(data)) + data
    return b'RIFF' + struct.pack('<I', len(body)) + body


def test_audio_float_wav_is_kept_with_the_given_rate():
    data = float_wav(48000)
    audio = Audio(data, rate=48000)
    back, stored, blob, _ = roundtrip(audio)
    assert blob == data and stored['rate'] == 48000 and back.format == 'wav'
    with pytest.raises(ValueError, match='WAV cannot be read'):
        back.to_numpy()


def test_audio_to_numpy_needs_wav():
    with pytest.raises(ValueError, match='WAV only; this audio is flac'):
        Audio(ENCODED['flac'], format='flac').to_numpy()


def test_audio_json_repr():
    audio = Audio(make_wav(rate=8000), caption='hi')
    assert audio.json() == {'caption': 'hi', 'format': 'wav', 'rate': 8000}
    assert repr(audio) == "<Audio format='wav', rate=8000, caption='hi'>"


# -- Figure ---------------------------------------------------------------------------

def test_figure_from_plotly():
    go = pytest.importorskip('plotly.graph_objects')
    fig = go.Figure(go.Scatter(x=np.arange(3), y=[1.0, float('nan'), 3.0], name='s'),
                    layout={'title': {'text': 'T'}})
    figure = Figure(fig)
    assert figure.source == 'plotly'
    assert figure.data['data'][0]['x'] == [0, 1, 2]
    back, stored, blob, calls = roundtrip(figure)
    assert stored == {'source': 'plotly'} and calls == []
    assert json.loads(blob)['data'][0] == {'type': 'scatter', 'name': 's', 'x': [0, 1, 2],
                                           'y': [1.0, None, 3.0]}
    assert back.data == figure.data and back == figure
    assert back.to_plotly_figure().data[0].name == 's'
    assert back.to_plotly_figure().layout.title.text == 'T'
    fig.update_layout(title={'text': 'changed'})   # the figure was copied when tracked
    assert figure.data['layout']['title']['text'] == 'T'


def test_figure_from_dict():
    data = {'data': [{'type': 'bar', 'x': np.array([1, 2]), 'y': np.array([0.5, np.nan])}],
            'layout': {'height': 300}}
    figure = Figure(data)
    stored, blob = encode('figure', *figure._capture())
    assert json.loads(blob) == {'data': [{'type': 'bar', 'x': [1, 2], 'y': [0.5, None]}],
                                'layout': {'height': 300}}
    assert b'NaN' not in blob
    reordered = {'layout': {'height': 300}, 'data': [{'y': [0.5, math.nan], 'x': [1, 2],
                                                      'type': 'bar'}]}
    assert encode('figure', *Figure(reordered)._capture())[1] == blob   # canonical JSON
    assert Figure(reordered) == figure
    assert repr(Figure({'layout': {}})) == '<Figure from plotly, 14 characters of JSON>'
    calls = []
    stored_figure = from_stored('figure', stored, lambda: calls.append(1) or blob)
    assert repr(stored_figure) == '<Figure from plotly>' and calls == []
    assert Figure({'layout': {}}).json() == {'layout': {}}


def test_figure_numpy_values_are_plain_json():
    go = pytest.importorskip('plotly.graph_objects')
    days = np.array(['2024-01-01', '2024-01-02'], dtype='datetime64[ns]')
    figure = Figure(go.Figure(go.Scatter(x=days, y=np.array([1, 2], dtype=np.int8))))
    trace = json.loads(encode('figure', *figure._capture())[1])['data'][0]
    assert trace['y'] == [1, 2]
    assert [x[:10] for x in trace['x']] == ['2024-01-01', '2024-01-02']


def test_figure_with_to_plotly_json():
    class Chart:
        def to_plotly_json(self):
            return {'data': [{'type': 'scatter', 'y': [1]}]}
    assert Figure(Chart()).data == {'data': [{'type': 'scatter', 'y': [1]}]}

    class Jsonable:
        def to_json(self):
            return '{"layout": {"width": 10}}'
    assert Figure(Jsonable()).data == {'layout': {'width': 10}}


def test_figure_from_matplotlib():
    pytest.importorskip('matplotlib')
    from matplotlib.figure import Figure as MplFigure
    fig = MplFigure(figsize=(3, 2), dpi=40)
    fig.add_subplot().plot([0, 1, 2], [2, 0, 1])
    figure = Figure(fig)
    assert figure.source == 'matplotlib'
    layout = figure.data['layout']
    assert (layout['width'], layout['height']) == (120, 80)
    image = layout['images'][0]
    assert image['source'].startswith('data:image/png;base64,')
    import base64
    png = base64.b64decode(image['source'].split(',', 1)[1])
    assert PILImage.open(io.BytesIO(png)).size == (120, 80)
    back, stored, _, _ = roundtrip(figure)
    assert stored == {'source': 'matplotlib'} and back.source == 'matplotlib'
    assert back == figure
    pytest.importorskip('plotly')
    assert back.to_plotly_figure().layout.images[0].sizex == 120


@pytest.mark.parametrize('value, message', [
    (object(), r'from object; pass a plotly figure'),
    ([1, 2], 'from list'),
    ('{"data": []}', 'from str'),
    ({'x': 1}, r"expected a dict with 'data' and/or 'layout'.*\['x'\]"),
    ({}, 'expected a dict'),
    ({'data': 5}, 'list of traces'),
    ({'data': [{'y': object()}]}, 'cannot be written as JSON'),
])
def test_figure_bad_input(value, message):
    with pytest.raises(TrackInputError, match=message):
        Figure(value)


# -- the caller's cost ----------------------------------------------------------------

def median_seconds(make, n=200):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        make()._capture()
        times.append(time.perf_counter() - start)
    return sorted(times)[n // 2]


def test_capture_is_cheap():
    """A loose sanity check of the caller's cost (construction + capture); the budget
    (0.5 ms image, 0.05 ms distribution, 3 µs text) is measured in bench/, not here."""
    image = RNG.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    samples = RNG.normal(size=10_000)
    assert median_seconds(lambda: Image(image)) < 0.02
    assert median_seconds(lambda: Distribution(samples)) < 0.005
    assert median_seconds(lambda: Text('a short line of text')) < 0.001
