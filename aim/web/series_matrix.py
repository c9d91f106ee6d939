"""Series that share their steps, read as the rows of one matrix.

A sweep tracks its runs' metrics at the same steps: a thousand ``loss`` series of 10,000
steps each have the same step column, chunk for chunk. Read one at a time, each series
costs a decode, a concatenation and a few conversions of its own; read as the rows of
one (series, steps) matrix, a block of series costs one join of their value bytes, and
smoothing and M4 then work on the whole block (``downsample.smooth_rows``,
``downsample.m4_mark_many``). See docs/series-matrix.md.

Two series share a layout when their chunks hold the same number of points with
byte-identical step blobs, in the same order: then their decoded steps are identical
too, and so is what decoding does with them (the order that keeps the last written
value of a repeated step, the chunks a step range cuts).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aim.storage import chunks as codec

# chunk row: (seq, n, steps, vals, epochs, times), as runfile.read_chunk_rows gives it
N, STEPS, VALS = 1, 2, 3


@dataclass
class StepGroup:
    """Series (by storage id) whose points sit at the same steps."""

    ids: list[int]
    key: tuple                # the (points, step blob) of each chunk, what the ids share
    steps: np.ndarray         # the shared steps, ascending, one per point, cut to the range
    # (chunk, first point, end point, first column): what each chunk puts in the matrix,
    # when the chunks' points are in step order; None when ``pick`` is needed
    pieces: list[tuple[int, int, int, int]] | None
    pick: np.ndarray | None   # else: which of the concatenated points make the columns

    @property
    def width(self) -> int:
        return len(self.steps)


def group_by_steps(rows_by_id: dict[int, list[tuple]], first_step: int | None = None,
                   last_step: int | None = None) -> tuple[list[StepGroup], list[int]]:
    """Groups of two or more series sharing their steps, and the ids of the others (their
    own layout, or no points at all), from chunk rows with or without their values.
    ``first_step`` / ``last_step`` cut every group to that range of steps, as
    ``runfile.decode_series`` cuts a series."""
    layouts: dict[tuple, list[int]] = {}
    alone: list[int] = []
    for series_id, rows in rows_by_id.items():
        if not rows:
            alone.append(series_id)
            continue
        layouts.setdefault(layout_key(rows), []).append(series_id)
    groups = []
    for key, ids in layouts.items():
        if len(ids) < 2:
            alone.extend(ids)
            continue
        try:
            steps, pieces, pick = _layout(rows_by_id[ids[0]], first_step, last_step)
        except Exception:  # a damaged step column: each series alone names its error
            alone.extend(ids)
            continue
        if len(steps):
            groups.append(StepGroup(ids, key, steps, pieces, pick))
        else:
            alone.extend(ids)
    return groups, alone


def layout_key(rows: list[tuple]) -> tuple:
    """What two series must share for their steps to be the same: each chunk's number of
    points and step blob, in order."""
    return tuple((row[N], bytes(row[STEPS])) for row in rows)


def _layout(rows: list[tuple], first_step: int | None, last_step: int | None):
    parts = [codec.decode_column('steps', row[STEPS], row[N]) for row in rows]
    raw = parts[0] if len(parts) == 1 else np.concatenate(parts)
    pick = codec.last_written_order(raw)
    steps = raw if pick is None else raw[pick]
    lo = int(steps.searchsorted(first_step)) if first_step is not None else 0
    hi = int(steps.searchsorted(last_step, 'right')) if last_step is not None else len(steps)
    steps = steps[lo:hi]
    if pick is not None:
        return steps, None, pick[lo:hi]
    pieces = []
    offset = 0
    for k, part in enumerate(parts):
        a, b = max(lo, offset), min(hi, offset + len(part))
        if a < b:
            pieces.append((k, a - offset, b - offset, a - lo))
        offset += len(part)
    return steps, pieces, None


def _raw_values(blob) -> np.ndarray:
    """A chunk's values without a copy where the bytes are raw (assigning them into the
    float64 matrix converts them)."""
    dtype = _RAW.get(blob[0]) if len(blob) else None
    if dtype is not None:
        return np.frombuffer(blob, dtype=dtype, offset=1)
    return codec.decode_column('values', blob, 0)


_RAW = {ord('4'): '<f4', ord('F'): '<f8', ord('I'): '<i8'}   # raw values, by tag


def fill_rows(group: StepGroup, ids: list[int], rows_by_id: dict[int, list[tuple]],
              out: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The values of the series ``ids`` of ``group`` as the first rows of ``out`` (one
    row each), from their chunk rows: (those rows, None). When ``out`` is float32 each
    row holds its series less its first value (0 when that is NaN or ±inf), computed in
    float64: (those rows, the values subtracted). A series whose chunks cannot be decoded
    raises ``BadSeries`` with its id."""
    filled = out[:len(ids)]
    centres = np.zeros(len(ids)) if filled.dtype != np.float64 else None
    pieces = group.pieces
    joined = _joined_raw(group, ids, rows_by_id)
    if joined is not None:  # one copy (and conversion) for the whole block
        if centres is None:
            filled[...] = joined
        else:
            firsts = joined[:, 0]
            centres[...] = np.where(np.isfinite(firsts), firsts, 0.0)
            np.subtract(joined, centres[:, None], out=filled, casting='unsafe')
        return filled, centres
    for r, series_id in enumerate(ids):
        rows = rows_by_id[series_id]
        try:
            if pieces is not None:
                parts = []
                for k, a, b, column in pieces:
                    row = rows[k]
                    values = _raw_values(row[VALS])
                    if len(values) != row[N]:
                        raise ValueError(f'a chunk of {row[N]} steps holds '
                                         f'{len(values)} values')
                    parts.append((column, values[a:b]))
            else:
                chunks = [_raw_values(row[VALS]) for row in rows]
                if sum(len(p) for p in chunks) != sum(row[N] for row in rows):
                    raise ValueError('the chunks hold fewer values than steps')
                parts = [(0, np.concatenate(chunks).astype(np.float64)[group.pick])]
        except Exception as e:
            raise BadSeries(series_id, e) from None
        target = filled[r]
        if centres is None:
            for column, values in parts:
                target[column:column + len(values)] = values
            continue
        centre = float(parts[0][1][0]) if parts else 0.0
        if not math.isfinite(centre):
            centre = 0.0
        centres[r] = centre
        for column, values in parts:
            np.subtract(values, centre, out=target[column:column + len(values)],
                        casting='unsafe')
    return filled, centres


def _joined_raw(group: StepGroup, ids: list[int],
                rows_by_id: dict[int, list[tuple]]) -> np.ndarray | None:
    """The series' values as one (series, points) array made by joining their raw value
    bytes, when every chunk holds raw values of one type (float32, float64 or integer)
    and as many as it has steps; else None (each series is then filled on its own)."""
    if not group.pieces or not ids:
        return None
    first_blob = rows_by_id[ids[0]][group.pieces[0][0]][VALS]
    tag = first_blob[0] if first_blob else None
    dtype = _RAW.get(tag) if tag is not None else None
    if dtype is None:
        return None
    size = np.dtype(dtype).itemsize
    # per piece: (chunk, blob length, first byte, end byte)
    cuts = [(k, 1 + size * group.key[k][0], 1 + a * size, 1 + b * size)
            for k, a, b, _ in group.pieces]
    views: list[memoryview] = []
    append = views.append
    for series_id in ids:
        rows = rows_by_id[series_id]
        for k, length, start, end in cuts:
            blob = rows[k][VALS]
            if len(blob) != length or blob[0] != tag:
                return None  # another type, or a damaged chunk (named by the slow path)
            append(memoryview(blob)[start:end])
    values = np.frombuffer(b''.join(views), dtype=dtype)
    return values.reshape(len(ids), group.width)


class BadSeries(Exception):
    """A series of a group whose values cannot be decoded."""

    def __init__(self, series_id: int, error: Exception):
        super().__init__(series_id, error)
        self.series_id = series_id
        self.error = error
