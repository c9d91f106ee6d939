"""Reading TensorBoard event files: the records of a folder, sorted into what aim keeps.

Events are decoded by tensorboard's own protobuf classes (``tensorboard`` is needed, it is
imported here only). The files' record framing (TFRecord: an 8-byte length, its masked
CRC, the record, the record's masked CRC) is walked here over the whole file in memory,
rather than through tensorboard's pure-Python record reader, which computes every CRC in
Python and is ten times slower; the CRCs are checked when ``google-crc32c`` is installed.
A record cut short at the end of a file (a writer still running) ends that file.
"""
from __future__ import annotations

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


@dataclass
class FolderEvents:
    """What one folder's event files hold, in the shape aim stores."""
    # tag -> (steps, values, wall times)
    scalars: dict[str, tuple[list, list, list]] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    texts: int = 0
    images: int = 0
    histograms: int = 0
    other: int = 0
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
    if value.HasField('metadata') and value.metadata.plugin_data.plugin_name:
        plugins[tag] = value.metadata.plugin_data.plugin_name
    plugin = plugins.get(tag, '')
    if kind == 'simple_value':
        _add_scalar(out, tag, step, value.simple_value, wall)
    elif kind == 'image' or plugin == 'images':
        out.images += 1
    elif kind == 'histo' or plugin == 'histograms':
        out.histograms += 1
    elif plugin == 'hparams':
        _take_hparams(out, value.metadata.plugin_data.content)
    elif kind == 'tensor' and plugin == 'scalars':
        from tensorboard.util import tensor_util
        _add_scalar(out, tag, step, tensor_util.make_ndarray(value.tensor).item(), wall)
    elif plugin == 'text':
        out.texts += 1
    else:
        out.other += 1


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


__all__ = ['FolderEvents', 'event_files', 'is_event_file', 'iter_records', 'read_folder']
