"""Encode fetched series for the wire: a compact binary frame for the UI, JSON for others.

Binary frame (``application/x-aim-series``), little-endian::

    b'AIMS' | uint32 header length | header (UTF-8 JSON) | zero padding to 8 bytes |
    for each series: x[n], y[n], and step[n] unless the header's ``has_step`` is false
    (on the step axis x already is the step); all float64, or float32 when the header's
    ``dtype`` is "f4", with x stored as offsets from the header's ``x0``

The header lists the series in order with their point count ``n``, so the reader slices
the body with typed-array views and never parses a number as text. NaN and ±inf travel as
IEEE values. JSON output spells non-finite values as "NaN" / "Infinity" / "-Infinity".
"""
from __future__ import annotations

import json
import math
import struct
import threading
from collections import OrderedDict

import numpy as np

from aim.web.json_response import dumps
from aim.web.runs_table import flatten, params_of, run_props

BINARY_MEDIA_TYPE = 'application/x-aim-series'
MAGIC = b'AIMS'


RUN_COLUMNS = ('hash', 'name', 'experiment', 'description', 'tags', 'archived',
               'creation_time', 'end_time', 'updated_at', 'params')


class RunsInfo(dict):
    """``{hash: props and flattened params}``, with each entry also as JSON text
    (``'"hash":{...}'``), which ``encode_binary`` joins instead of encoding the entries
    again. The entries are shared between answers: copy one before changing it."""

    fragments: list[str]


class _RunInfoCache:
    """What ``runs_info`` made of a runs row, keyed by the row itself (every column it
    reads), so an edited run is a new key and nothing needs invalidating. A chart of a
    thousand runs spent 25 ms parsing their params for every answer."""

    def __init__(self, max_items: int = 20_000):
        self.max_items = max_items
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, row: tuple):
        with self.lock:
            found = self.items.get(row)
            if found is not None:
                self.items.move_to_end(row)
            return found

    def put(self, row: tuple, value) -> None:
        with self.lock:
            self.items[row] = value
            while len(self.items) > self.max_items:
                self.items.popitem(last=False)


_RUN_INFO = _RunInfoCache()


def runs_info(repo, run_hashes: list[str]) -> RunsInfo:
    """Props and flattened params of the given runs (for legends, tooltips, grouping)."""
    info = RunsInfo()
    info.fragments = []
    if not run_hashes:
        return info
    rows = repo.index.query(f'SELECT {", ".join(RUN_COLUMNS)} FROM runs '
                            f'WHERE hash IN (SELECT value FROM json_each(?))',
                            [json.dumps(run_hashes)])
    for r in rows:
        key = tuple(r)
        found = _RUN_INFO.get(key)
        if found is None:
            row = dict(zip(RUN_COLUMNS, r))
            item = run_props(row)
            item['params'] = flatten(params_of(row['params']))
            found = (item, dumps({row['hash']: item}).decode('utf-8')[1:-1])
            _RUN_INFO.put(key, found)
        info[r[0]] = found[0]
        info.fragments.append(found[1])
    return info


def warm_runs_info(repo, newest: int = 1000) -> threading.Thread:
    """Fill the runs info cache with the ``newest`` runs in the background (what the first
    chart of ``aim up`` shows): its first answer then skips parsing their params (about
    30 ms for 1,000 runs). Errors are left to the requests to report."""
    def warm():
        try:
            hashes = [h for (h,) in repo.index.query(
                'SELECT hash FROM runs WHERE COALESCE(archived, 0) = 0 '
                'ORDER BY creation_time DESC LIMIT ?', (newest,))]
            runs_info(repo, hashes)
        except Exception:
            pass
    thread = threading.Thread(target=warm, name='aim-runs-info', daemon=True)
    thread.start()
    return thread


def dumps_head(head: dict) -> bytes:
    """``dumps(head)``, with a ``RunsInfo`` under ``'runs'`` joined from its entries'
    cached JSON text."""
    runs = head.get('runs')
    if not isinstance(runs, RunsInfo) or not runs:
        return dumps(head)
    rest = dumps({k: v for k, v in head.items() if k != 'runs'})
    return rest[:-1] + (',"runs":{' + ','.join(runs.fragments) + '}}').encode('utf-8')


def header(repo, fetched: dict, x_axis: str) -> dict:
    series = fetched['series']
    hashes = list(dict.fromkeys(s.ref.run_hash for s in series))
    return {
        'x_axis': x_axis,
        'has_step': x_axis != 'step',
        'total': fetched['total'],
        'truncated': fetched['total'] is None or fetched['total'] > len(series),
        'range': fetched['range'],
        'width': fetched['width'],
        'until': fetched['until'],
        'smoothing': fetched.get('smoothing', 0.0),
        'smoothing_kind': fetched.get('smoothing_kind'),
        'window': fetched.get('window'),
        'runs': runs_info(repo, hashes),
        'series': [{'run': s.ref.run_hash, 'name': s.ref.name, 'context': s.ref.context,
                    'count': s.ref.count, 'last_step': s.ref.last_step, 'n': n}
                   for s, n in zip(series, fetched.get('counts') or
                                   [len(s.x) for s in series])],
    }


class FrameBodyCache:
    """The encoded arrays of the last few answers with their point counts, keyed by
    ``fetch_series``' body key, the precision and the columns: a repeated view skips
    reducing, converting and copying tens of megabytes."""

    def __init__(self, max_bytes: int = 160 << 20):
        self.max_bytes = max_bytes
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        """(counts, body) or None."""
        with self.lock:
            item = self.items.get(key)
            if item is not None:
                self.items.move_to_end(key)
            return item

    def put(self, key, counts: list[int], body) -> None:
        with self.lock:
            self.items[key] = (counts, body)
            while sum(len(b) for _, b in self.items.values()) > self.max_bytes and \
                    len(self.items) > 1:
                self.items.popitem(last=False)


def body_key(fetch_key, precision: str, x_axis: str):
    """The FrameBodyCache key of an answer (None when the answer is not cacheable)."""
    return None if fetch_key is None else (fetch_key, precision, x_axis != 'step')


def encode_binary(head: dict, series, precision: str = 'f64', cached_body=None) -> list:
    """The binary frame as a list of byte chunks (prefix, body) to send one after the other;
    ``cached_body`` is the body of an identical earlier answer.

    ``precision='f32'`` halves it for overview charts: y as float32 (7 significant digits,
    far below a pixel) and x as float32 offsets from ``head['x0']`` (exact for steps below
    2**24 from the start of the range)."""
    dtype = '<f4' if precision == 'f32' else '<f8'
    x0 = float(head['range'][0] or 0.0) if precision == 'f32' else 0.0
    head = dict(head, dtype='f4' if precision == 'f32' else 'f8', x0=x0)
    head_bytes = dumps_head(head)
    prefix = MAGIC + struct.pack('<I', len(head_bytes)) + head_bytes
    prefix += b'\0' * (-len(prefix) % 8)
    with_step = head.get('has_step', True)
    body = cached_body
    if body is None:
        body = _encode_body(series, dtype, x0, 3 if with_step else 2)
    return [prefix, body]


def _encode_body(series, dtype: str, x0: float, columns: int) -> bytes | memoryview:
    item = np.dtype(dtype).itemsize
    # One buffer, each array copied into it once (no per-array bytes objects to join).
    body = bytearray(item * columns * sum(len(s.x) for s in series))
    offset = 0
    for s in series:
        n = len(s.x)
        if not n:
            continue
        # converted straight into the body: no temporary array per series
        out = np.frombuffer(body, dtype=dtype, count=columns * n, offset=offset)
        if x0:
            np.subtract(s.x, x0, out=out[:n], casting='unsafe')
        else:
            np.copyto(out[:n], s.x, casting='unsafe')
        np.copyto(out[n:2 * n], s.y, casting='unsafe')
        if columns == 3:
            np.copyto(out[2 * n:], s.step, casting='unsafe')
        offset += item * columns * n
    return bytes(body) if len(body) < 1 << 20 else memoryview(body)


def decode_binary(content: bytes) -> dict:
    """The header of a binary frame with each series' ``x``, ``y`` (and ``step``) as
    float64 arrays, x back on its own scale: what a Python client does with an answer."""
    if content[:4] != MAGIC:
        raise ValueError(f'not a series frame (starts with {content[:4]!r})')
    (length,) = struct.unpack('<I', content[4:8])
    head = json.loads(content[8:8 + length])
    offset = 8 + length
    offset += -offset % 8
    dtype = np.dtype('<f4' if head['dtype'] == 'f4' else '<f8')
    for s in head['series']:
        n = s['n']
        for key in ('x', 'y', 'step') if head['has_step'] else ('x', 'y'):
            s[key] = np.frombuffer(content, dtype, n, offset).astype(np.float64)
            offset += dtype.itemsize * n
        s['x'] = s['x'] + head['x0']
    if offset != len(content):
        raise ValueError(f'series frame of {len(content)} bytes holds {offset}')
    return head


def _json_numbers(arr: np.ndarray) -> list:
    values = arr.tolist()
    if not np.isfinite(arr).all():
        values = [v if math.isfinite(v) else
                  ('NaN' if math.isnan(v) else ('Infinity' if v > 0 else '-Infinity'))
                  for v in values]
    return values


def encode_json(head: dict, series) -> dict:
    body = dict(head)
    body['series'] = [dict(meta, x=_json_numbers(s.x), y=_json_numbers(s.y),
                           step=[int(v) for v in s.step.tolist()])
                      for meta, s in zip(head['series'], series)]
    return body
