"""Folding journal records into a run file's columnar chunks and series summaries.

Used by the live writer's flusher and by crash recovery alike, so both produce the same
bytes. Folding is idempotent: replaying records already folded rewrites the same values.
"""
from __future__ import annotations

import numpy as np

from aim.storage import chunks as codec
from aim.storage.chunks import CHUNK_POINTS
from aim.storage.runfile import RunFile


class _Series:
    __slots__ = ('sid', 'name', 'context', 'seq', 'tail', 'count', 'first_step', 'last_step',
                 'last', 'min', 'max', 'last_time', 'dtype', 'known')

    def __init__(self, sid: int, name: str, context: str):
        self.sid, self.name, self.context = sid, name, context
        self.seq = 0
        self.tail = None  # (steps, values, epochs, times) of the open chunk
        self.count = 0
        self.first_step = self.last_step = None
        self.last = self.min = self.max = self.last_time = None
        self.dtype = None
        self.known = False  # row exists in the run file

    def summary_row(self) -> tuple:
        return (self.name, self.context, self.count, self.first_step, self.last_step,
                _real(self.last), _real(self.min), _real(self.max), self.last_time)


def _real(x):
    if x is None:
        return None
    x = float(x)
    return None if x != x else x


class SeriesFolder:
    def __init__(self, runfile: RunFile):
        self.runfile = runfile
        self.series: dict[int, _Series] = {}
        for row in runfile.series_rows():
            s = _Series(row['id'], row['name'], row['context'])
            s.known = True
            s.count, s.first_step, s.last_step = row['count'], row['first_step'], row['last_step']
            s.last, s.min, s.max, s.last_time = row['last'], row['min'], row['max'], row['last_time']
            s.dtype = row['dtype']
            self.series[s.sid] = s
        for sid, seq, n in runfile.query(
                'SELECT series_id, MAX(seq), n FROM chunks GROUP BY series_id'):
            s = self.series.get(sid)
            if s is None:
                continue
            s.seq = seq
            if n < CHUNK_POINTS:
                (_, n, st, v, e, t), = runfile.read_chunks_by_seq(sid, seq)
                s.tail = codec.decode(st, v, e, t, n)
            else:
                s.seq = seq + 1

    def register(self, sid: int, name: str, context: str) -> None:
        if sid not in self.series:
            self.series[sid] = _Series(sid, name, context)

    def fold(self, conn, code, step, ivalue, fvalue, epoch, time) -> list[_Series]:
        """Fold one batch of records (numpy arrays, in track order). Returns changed series."""
        if not len(code):
            return []
        sids = code >> 1
        is_int = (code & 1).astype(bool)
        order = np.argsort(sids, kind='stable')
        bounds = np.flatnonzero(np.diff(sids[order])) + 1
        changed = []
        for group in np.split(order, bounds):
            sid = int(sids[group[0]])
            s = self.series.get(sid)
            if s is None:  # points of a series never announced: cannot be named; skip
                continue
            gi = is_int[group]
            if gi.all():
                vals = ivalue[group]
            elif not gi.any():
                vals = fvalue[group]
            else:
                vals = np.where(gi, ivalue[group].astype(np.float64), fvalue[group])
            self._append(conn, s, step[group], vals, epoch[group], time[group])
            changed.append(s)
        return changed

    def _append(self, conn, s: _Series, steps, vals, epochs, times) -> None:
        if not s.known:
            conn.execute('INSERT OR IGNORE INTO series(id, name, context) VALUES(?, ?, ?)',
                         (s.sid, s.name, s.context))
            s.known = True
        in_order = (s.last_step is None or steps[0] > s.last_step) and (
            len(steps) < 2 or bool(np.all(steps[1:] > steps[:-1])))
        new_points = (steps, vals, times)
        if s.tail is not None and len(s.tail[0]):
            ts, tv, te, tt = s.tail
            steps = np.concatenate([ts, steps])
            vals = codec.concat_values([tv, vals])
            epochs = np.concatenate([te, epochs])
            times = np.concatenate([tt, times])
        steps, vals, epochs, times = codec.sort_unique_last(steps, vals, epochs, times)
        while len(steps) > CHUNK_POINTS:
            self._write_chunk(conn, s, steps[:CHUNK_POINTS], vals[:CHUNK_POINTS],
                              epochs[:CHUNK_POINTS], times[:CHUNK_POINTS])
            s.seq += 1
            steps, vals = steps[CHUNK_POINTS:], vals[CHUNK_POINTS:]
            epochs, times = epochs[CHUNK_POINTS:], times[CHUNK_POINTS:]
        self._write_chunk(conn, s, steps, vals, epochs, times)
        if len(steps) == CHUNK_POINTS:
            s.seq += 1
            s.tail = None
        else:
            s.tail = (steps, vals, epochs, times)
        new_dtype = 'int' if vals.dtype.kind == 'i' else 'float'
        s.dtype = new_dtype if s.dtype in (None, new_dtype) else 'float'
        if in_order:
            self._update_summary(s, *new_points)
        else:
            st, v, _, t = self.runfile.read_series(s.sid)
            s.count = 0
            s.first_step = s.last_step = s.min = s.max = None
            self._update_summary(s, st, v, t)
        conn.execute('UPDATE series SET count=?, first_step=?, last_step=?, last=?, last_time=?, '
                     'min=?, max=?, dtype=? WHERE id=?',
                     (s.count, s.first_step, s.last_step, _real(s.last), s.last_time,
                      _real(s.min), _real(s.max), s.dtype, s.sid))

    @staticmethod
    def _update_summary(s: _Series, steps, vals, times) -> None:
        """Add points that all come after the series' last step to its summary."""
        if not len(steps):
            return
        s.count = (s.count or 0) + len(steps)
        if s.first_step is None:
            s.first_step = int(steps[0])
        s.last_step = int(steps[-1])
        s.last = vals[-1].item()
        s.last_time = float(times[-1])
        lo = np.fmin.reduce(vals).item()
        hi = np.fmax.reduce(vals).item()
        s.min = lo if s.min is None or _real(s.min) is None else min(s.min, lo)
        s.max = hi if s.max is None or _real(s.max) is None else max(s.max, hi)

    @staticmethod
    def _write_chunk(conn, s: _Series, steps, vals, epochs, times) -> None:
        b_steps, b_vals, b_epochs, b_times = codec.encode(steps, vals, epochs, times)
        conn.execute('INSERT OR REPLACE INTO chunks VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)',
                     (s.sid, s.seq, int(steps[0]), int(steps[-1]), len(steps),
                      b_steps, b_vals, b_epochs, b_times))
