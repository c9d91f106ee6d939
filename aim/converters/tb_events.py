"""Reading TensorBoard event files: the records of a folder, sorted into what aim keeps.

Events are decoded by tensorboard's own protobuf classes (``tensorboard`` is needed, it is
imported here only). The files' record framing (TFRecord: an 8-byte length, its masked
CRC, the record, the record's masked CRC) is walked here over the whole file in memory,
rather than through tensorboard's pure-Python record reader, which computes every CRC in
Python and is ten times slower; the CRCs are checked when ``google-crc32c`` is installed.
A record cut short at the end of a file (a writer still running) ends that file.

Besides scalars and hparams, the summaries aim has object types for are kept as plain,
picklable payloads (``FolderEvents.objects``; :func:`make_object` turns one into the aim
object): images (legacy ``image`` values and the ``images`` plugin's tensors) as their
encoded bytes, audio (legacy ``audio`` values and the ``audio`` plugin) as the encoded
file, text (the ``text`` plugin) as strings, and histograms (legacy ``histo`` values and
the ``histograms`` plugin) as even-width weights, see :func:`even_histogram`.
"""
from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from typing import Any

EVENT_FILE_MARK = 'tfevents'

_HEADER = struct.Struct('<QI')


def is_event_file(name: str) -> bool:
    return EVENT_FILE_MARK in name and not name.endswith(('.tmp', '.lock'))


def event_files(folder: str) -> list[str]:
    """The event files directly in ``folder``, in the order they were written."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(os.path.join(folder, n) for n in names
                  if is_event_file(n) and os.path.isfile(os.path.join(folder, n)))


def _crc_checker():
    try:
        import google_crc32c
    except ImportError:
        return None

    def masked(data: bytes) -> int:
        crc = google_crc32c.value(data)
        return (((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xffffffff
    return masked


def iter_records(data: bytes, offset: int = 0, check=None):
    """``(record, end offset)`` for each complete record of ``data`` from ``offset``."""
    size = len(data)
    unpack = _HEADER.unpack_from
    while offset + 12 <= size:
        length, length_crc = unpack(data, offset)
        start = offset + 12
        end = start + length
        if end + 4 > size:
            return                       # cut short: the writer has not finished it
        record = data[start:end]
        if check is not None:
            if check(data[offset:offset + 8]) != length_crc or \
                    check(record) != struct.unpack_from('<I', data, end)[0]:
                raise ValueError(f'damaged record at byte {offset} (CRC mismatch)')
        offset = end + 4
        yield record, offset


# how reports name the values of each object kind
KIND_LABELS = {'image': 'images', 'distribution': 'histograms', 'text': 'texts',
               'audio': 'audio clips'}
# The histogram bins of a resampled TensorBoard histogram: Distribution's default
HISTOGRAM_BINS = 64
MAX_EVEN_BINS = 512
# The plugins dict (tag -> plugin name) also remembers a tag's description, written with
# its first value only, after a newline: 'images\nSample inputs'. Descriptions become the
# captions of images and audio.
DESCRIPTION_SEPARATOR = '\n'


@dataclass
class FolderEvents:
    """What one folder's event files hold, in the shape aim stores."""
    # tag -> (steps, values, wall times)
    scalars: dict[str, tuple[list, list, list]] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    # (tag, kind) -> (steps, payloads, wall times); kind is an aim object kind ('image',
    # 'distribution', 'text', 'audio'); make_object(kind, payload) gives the object
    objects: dict[tuple[str, str], tuple[list, list, list]] = field(default_factory=dict)
    # what was left out, by what it is ('empty histograms', 'other summaries', ...)
    skipped: dict[str, int] = field(default_factory=dict)
    first_time: float | None = None
    last_time: float | None = None
    offsets: dict[str, int] = field(default_factory=dict)  # file -> bytes read
    plugins: dict[str, str] = field(default_factory=dict)  # tag -> plugin, as read so far


def read_folder(folder: str, offsets: dict[str, int] | None = None,
                files: list[str] | None = None,
                plugins: dict[str, str] | None = None) -> FolderEvents:
    """Decode the event files of ``folder``. A live sync passes the ``offsets`` it read up
    to and the ``plugins`` dict it keeps (tag -> plugin name: written with a tag's first
    value only)."""
    from tensorboard.compat.proto import event_pb2
    out = FolderEvents()
    if plugins is None:
        plugins = {}
    out.plugins = plugins
    check = _crc_checker()
    parse = event_pb2.Event.FromString
    unpack = _HEADER.unpack_from
    scalars = out.scalars
    first = last = None
    for path in files if files is not None else event_files(folder):
        start = (offsets or {}).get(path, 0)
        try:
            with open(path, 'rb') as f:
                f.seek(start)
                data = f.read()
        except OSError:
            continue
        # the hot loop: the record framing (as iter_records) and plain scalars inline
        offset, size = 0, len(data)
        while offset + 12 <= size:
            length, length_crc = unpack(data, offset)
            begin = offset + 12
            end = begin + length
            if end + 4 > size:
                break                    # cut short: the writer has not finished it
            record = data[begin:end]
            if check is not None and (
                    check(data[offset:offset + 8]) != length_crc or
                    check(record) != struct.unpack_from('<I', data, end)[0]):
                raise ValueError(f'{path}: damaged record at byte {start + offset} '
                                 f'(CRC mismatch)')
            offset = end + 4
            event = parse(record)
            if not event.HasField('summary'):
                continue
            wall, step = event.wall_time, event.step
            if first is None or wall < first:
                first = wall
            if last is None or wall > last:
                last = wall
            for value in event.summary.value:
                if value.WhichOneof('value') == 'simple_value':
                    series = scalars.get(value.tag)
                    if series is None:
                        series = scalars[value.tag] = ([], [], [])
                    series[0].append(step)
                    series[1].append(value.simple_value)
                    series[2].append(wall)
                else:
                    _take_value(out, plugins, value, step, wall)
        out.offsets[path] = start + offset
    out.first_time, out.last_time = first, last
    return out


def _take_value(out: FolderEvents, plugins: dict, value, step: int, wall: float) -> None:
    kind = value.WhichOneof('value')
    tag = value.tag
    plugin, _, caption = plugins.get(tag, '').partition(DESCRIPTION_SEPARATOR)
    if value.HasField('metadata'):
        plugin = value.metadata.plugin_data.plugin_name or plugin
        caption = value.metadata.summary_description or caption
        if plugin or caption:
            plugins[tag] = f'{plugin}{DESCRIPTION_SEPARATOR}{caption}' if caption else plugin
    if kind == 'simple_value':
        _add_scalar(out, tag, step, value.simple_value, wall)
    elif kind == 'image':
        _add_object(out, tag, 'image', step, [(value.image.encoded_image_string, caption)],
                    wall)
    elif kind == 'audio':
        rate = int(value.audio.sample_rate) if value.audio.sample_rate >= 1 else 0
        _add_object(out, tag, 'audio', step,
                    [(value.audio.encoded_audio_string, caption, rate)], wall)
    elif kind == 'histo':
        _add_histogram(out, tag, step, legacy_histogram_intervals(value.histo), wall)
    elif plugin == 'hparams':
        _take_hparams(out, value.metadata.plugin_data.content)
    elif kind != 'tensor':
        _skip(out, 'other summaries')
    elif plugin == 'scalars':
        from tensorboard.util import tensor_util
        _add_scalar(out, tag, step, tensor_util.make_ndarray(value.tensor).item(), wall)
    elif plugin == 'images':
        # [width, height, encoded image, ...]; several images at one step are a list
        images = [(data, caption) for data in value.tensor.string_val[2:]]
        if images:
            _add_object(out, tag, 'image', step, images, wall)
        else:
            _skip(out, 'empty image summaries')
    elif plugin == 'audio':
        _add_object(out, tag, 'audio', step, _plugin_audio(value.tensor, caption), wall)
    elif plugin == 'text':
        texts = [s.decode('utf-8', 'replace') for s in value.tensor.string_val]
        if texts:
            _add_object(out, tag, 'text', step, texts, wall)
        else:
            _skip(out, 'empty text summaries')
    elif plugin == 'histograms':
        from tensorboard.util import tensor_util
        buckets = tensor_util.make_ndarray(value.tensor)
        if buckets.ndim != 2 or buckets.shape[1] != 3:
            buckets = buckets[:0].reshape(0, 3) if buckets.size == 0 else None
        if buckets is None:
            _skip(out, 'other summaries')     # not the (left, right, count) layout
        else:
            _add_histogram(out, tag, step, buckets, wall)
    else:
        _skip(out, 'other summaries')


def _skip(out: FolderEvents, what: str) -> None:
    out.skipped[what] = out.skipped.get(what, 0) + 1


def _add_object(out: FolderEvents, tag: str, kind: str, step: int, payload, wall: float):
    series = out.objects.get((tag, kind))
    if series is None:
        series = out.objects[(tag, kind)] = ([], [], [])
    series[0].append(step)
    series[1].append(payload)
    series[2].append(wall)


def _add_histogram(out: FolderEvents, tag: str, step: int, intervals, wall: float) -> None:
    histogram = even_histogram(intervals)
    if histogram is None:
        _skip(out, 'empty histograms')
    else:
        _add_object(out, tag, 'distribution', step, histogram, wall)


def _plugin_audio(tensor, caption: str) -> list[tuple[bytes, str, int]]:
    """The clips of an ``audio`` plugin tensor: [k, 2] of (encoded audio, label), or [k]."""
    strings = list(tensor.string_val)
    dims = [d.size for d in tensor.tensor_shape.dim]
    if len(dims) == 2 and dims[1] == 2:
        return [(strings[i], strings[i + 1].decode('utf-8', 'replace') or caption, 0)
                for i in range(0, len(strings) - 1, 2)]
    return [(data, caption, 0) for data in strings]


def legacy_histogram_intervals(histo) -> Any:
    """(left, right, count) of each bucket of a ``HistogramProto``, a k×3 numpy array.

    Its buckets are given by their right edges (``bucket_limit``); the first one reaches
    down to -inf. ``min`` and ``max`` (the extreme samples) bound the outer buckets when
    they are consistent with the buckets (writers that leave them unset write 0, 0)."""
    import numpy as np
    counts = np.asarray(histo.bucket, dtype=np.float64)
    rights = np.asarray(histo.bucket_limit, dtype=np.float64)
    if counts.size == 0 or counts.size != rights.size or not counts.any():
        return np.empty((0, 3))
    lefts = np.concatenate(([-np.inf], rights[:-1]))
    arr = np.stack([lefts, rights, counts], axis=1)
    support = _support(arr)
    lo, hi = float(histo.min), float(histo.max)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi and
            support[0] <= lo and hi <= support[1]):
        lo, hi = support
    arr = arr[(arr[:, 0] <= hi) & (arr[:, 1] >= lo)]
    arr[:, :2] = np.clip(arr[:, :2], lo, hi)
    return arr


def _support(arr) -> tuple[float, float]:
    """The finite span of the buckets (rows of left, right, count) that have counts."""
    import numpy as np
    filled = arr[arr[:, 2] > 0]
    left, right = float(filled[0, 0]), float(filled[-1, 1])
    if not math.isfinite(left):
        left = float(filled[0, 1])
    if not math.isfinite(right):
        right = float(filled[-1, 0])
    if not (math.isfinite(left) and math.isfinite(right)):
        edges = filled[:, :2]
        finite = edges[np.isfinite(edges)]
        left, right = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    return min(left, right), max(left, right)


def even_histogram(intervals) -> tuple[list[float], float, float] | None:
    """``(weights, low, high)`` of an even-width histogram holding the counts of
    ``intervals`` ((left, right, count) buckets of any widths, a k×3 array or a list);
    None when they count nothing.

    Buckets that are already of one width (TensorFlow 2's ``tf.summary.histogram``,
    ``add_histogram(bins=<int>)``) are kept as they are (up to 512 of them). Others
    (``add_histogram``'s default exponential buckets) are resampled onto 64 equal bins
    over the span of the samples, each bucket's count spread evenly over its own width;
    a bucket of no width (all samples equal) goes whole into the bin holding it. The
    total count is kept."""
    import numpy as np
    arr = np.array(intervals, dtype=np.float64).reshape(-1, 3)
    arr = arr[np.isfinite(arr[:, 2]) & (arr[:, 2] >= 0) & ~np.isnan(arr[:, :2]).any(axis=1)]
    filled = np.flatnonzero(arr[:, 2] > 0)
    if filled.size == 0:
        return None
    arr = arr[filled[0]:filled[-1] + 1]
    lo, hi = _support(arr)
    arr[:, :2] = np.clip(arr[:, :2], lo, hi)
    widths = arr[:, 1] - arr[:, 0]
    if (len(arr) <= MAX_EVEN_BINS and widths[0] > 0 and
            np.array_equal(arr[1:, 0], arr[:-1, 1]) and
            widths.max() - widths.min() <= 1e-9 * widths[0]):
        return arr[:, 2].tolist(), float(arr[0, 0]), float(arr[-1, 1])
    return _resample(arr, lo, hi, HISTOGRAM_BINS)


def _resample(arr, lo: float, hi: float, bins: int) -> tuple[list[float], float, float]:
    import numpy as np
    if hi <= lo:                       # every sample is one value v: [v-0.5, v+0.5], as numpy
        lo, hi = lo - 0.5, hi + 0.5
    scale = bins / (hi - lo)
    start = (arr[:, 0] - lo) * scale   # bucket edges in units of bins
    end = (arr[:, 1] - lo) * scale
    counts = arr[:, 2]
    weights = np.zeros(bins)
    point = end <= start
    if point.any():                    # no width: the whole count into one bin
        index = np.clip(np.floor(start[point]).astype(np.int64), 0, bins - 1)
        np.add.at(weights, index, counts[point])
    spread = ~point
    if spread.any():
        # the cumulative count at each bin edge, linear within each bucket
        s, e, c = start[spread], end[spread], counts[spread]
        edges = np.arange(bins + 1, dtype=np.float64)
        if np.all(s[1:] >= e[:-1]):    # buckets in order, not overlapping: interpolate
            total = np.cumsum(c)
            below = np.interp(edges, np.column_stack([s, e]).ravel(),
                              np.column_stack([total - c, total]).ravel())
        else:                          # any buckets: each one's share below each edge
            below = np.clip((edges[:, None] - s) / (e - s), 0.0, 1.0) @ c
        weights += np.maximum(np.diff(below), 0.0)
    return weights.tolist(), lo, hi


def make_object(kind: str, payload) -> Any:
    """The aim object (or list of objects, for several at one step) of a payload of
    ``FolderEvents.objects``. Raises aim's ``TrackInputError`` for bytes that are not an
    image or audio file aim reads."""
    from aim.sdk.objects import Audio, Distribution, Image, Text
    if kind == 'distribution':
        weights, lo, hi = payload
        return Distribution.from_histogram(weights, (lo, hi))
    if kind == 'image':
        items: list = [Image(data, caption=caption) for data, caption in payload]
    elif kind == 'audio':
        items = [Audio(data, caption=caption, **({'rate': rate} if rate else {}))
                 for data, caption, rate in payload]
    elif kind == 'text':
        items = [Text(text) for text in payload]
    else:
        raise ValueError(f'unknown object kind {kind!r}')
    return items[0] if len(items) == 1 else items


def _add_scalar(out: FolderEvents, tag: str, step: int, value, wall: float) -> None:
    series = out.scalars.get(tag)
    if series is None:
        series = out.scalars[tag] = ([], [], [])
    series[0].append(step)
    series[1].append(value)
    series[2].append(wall)


def _take_hparams(out: FolderEvents, content: bytes) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    if data.WhichOneof('data') != 'session_start_info':
        return
    for name, v in data.session_start_info.hparams.items():
        kind = v.WhichOneof('kind')
        if kind == 'number_value':
            out.hparams[name] = v.number_value     # TensorBoard keeps every number a float
        elif kind == 'string_value':
            out.hparams[name] = v.string_value
        elif kind == 'bool_value':
            out.hparams[name] = v.bool_value


__all__ = ['KIND_LABELS', 'FolderEvents', 'even_histogram', 'event_files', 'is_event_file',
           'iter_records', 'legacy_histogram_intervals', 'make_object', 'read_folder']
