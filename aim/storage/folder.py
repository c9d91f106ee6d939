"""Folding journal records into a run's columnar chunks and series summaries.

Used by the live writer's flusher and by crash recovery alike, so both produce the same
rows. Folding is idempotent: replaying records already folded rewrites the same values.
Journal records name series by a *local* id (per writer session, see series.jsonl); the
folder maps it to the series row in the repository database.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from aim.storage import chunks as codec
from aim.storage import overview
from aim.storage.chunks import CHUNK_POINTS
from aim.storage.runfile import RunData


class _Series:
    __slots__ = ('db_id', 'name', 'context', 'seq', 'tail', 'count', 'first_step', 'last_step',
                 'last', 'min', 'max', 'last_time', 'dtype', 'tail_unread')

    def __init__(self, name: str, context: str):
        self.db_id: int | None = None
        self.name, self.context = name, context
        self.seq = 0
        self.tail: tuple | None = None  # (steps, values, epochs, times) of the open chunk
        self.tail_unread = False        # the open chunk is in the database, not read yet
        self.count = 0
        self.first_step: int | None = None
        self.last_step: int | None = None
        self.last: Any = None
        self.min: Any = None
        self.max: Any = None
        self.last_time: float | None = None
        self.dtype: str | None = None


def _real(x):
    if x is None:
        return None
    x = float(x)
    return None if x != x else x


class SeriesFolder:
    def __init__(self, rundata: RunData):
        self.rundata = rundata
        self.by_key: dict[tuple[str, str], _Series] = {}
        self.series: dict[int, _Series] = {}   # local id (journal) -> series
        by_id: dict[int, _Series] = {}
        for row in rundata.series_rows():
            s = _Series(row['name'], row['context'])
            s.db_id = row['id']
            s.count, s.first_step, s.last_step = row['count'], row['first_step'], row['last_step']
            s.last, s.min, s.max = row['last'], row['min'], row['max']
            s.last_time = row['last_time']
            s.dtype = row['dtype']
            self.by_key[(s.name, s.context)] = s
            by_id[s.db_id] = s
        if by_id:
            for sid, seq, n in rundata.query(
                    'SELECT series_id, seq, n FROM chunks WHERE (series_id, seq) IN '
                    '(SELECT series_id, MAX(seq) FROM chunks WHERE series_id IN '
                    '(SELECT id FROM series WHERE run_hash=?) GROUP BY series_id)',
                    (rundata.run_hash,)):
                s = by_id[sid]
                s.seq = seq
                if n < CHUNK_POINTS:
                    # read when the series next gets points: a spool batch (aim server)
                    # builds a folder for a run of many series and touches few of them
                    s.tail_unread = True
                else:
                    s.seq = seq + 1

    def reload(self) -> None:
        """Re-read the series state from the database, keeping the local ids; used after a
        failed flush, whose transaction rolled back what this object had already applied."""
        fresh = SeriesFolder(self.rundata)
        for local_id, s in list(self.series.items()):
            self.series[local_id] = fresh.register(local_id, s.name, s.context)
        self.by_key = fresh.by_key

    def register(self, local_id: int, name: str, context: str) -> _Series:
        s = self.by_key.get((name, context))
        if s is None:
            s = self.by_key[(name, context)] = _Series(name, context)
        self.series[local_id] = s
        return s

    def fold(self, conn, code, step, ivalue, fvalue, epoch, time) -> list[_Series]:
        """Fold one batch of records (numpy arrays, in track order). Returns changed series."""
        if not len(code):
            return []
        # chunks keep times to the millisecond; round here so that summaries (last_time)
        # agree exactly with the stored points ("points after last_time" must mean that)
        time = np.rint(time * 1000.0) / 1000.0
        sids = code >> 1
        is_int = (code & 1).astype(bool)
        order = np.argsort(sids, kind='stable')
        bounds = np.flatnonzero(np.diff(sids[order])) + 1
        changed = []
        for group in np.split(order, bounds):
            s = self.series.get(int(sids[group[0]]))
            if s is None:  # points of a series never announced cannot be named; skip
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
        if s.tail_unread:
            (_, n, st, v, e, t), = conn.execute(
                'SELECT seq, n, steps, vals, epochs, times FROM chunks WHERE series_id=? AND '
                'seq=?', (s.db_id, s.seq)).fetchall()
            s.tail = codec.decode(st, v, e, t, n)
            s.tail_unread = False
        if s.db_id is None:
            run_hash = self.rundata.run_hash
            conn.execute('INSERT OR IGNORE INTO series(run_hash, name, context) VALUES(?, ?, ?)',
                         (run_hash, s.name, s.context))
            s.db_id = conn.execute('SELECT id FROM series WHERE run_hash=? AND name=? AND '
                                   'context=?', (run_hash, s.name, s.context)).fetchone()[0]
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
            from aim.storage.runfile import decode_series
            rows = conn.execute('SELECT seq, n, steps, vals, epochs, times FROM chunks '
                                'WHERE series_id=? ORDER BY seq', (s.db_id,)).fetchall()
            st, v, _, t = decode_series(rows)
            s.count = 0
            s.first_step = s.last_step = s.min = s.max = None
            self._update_summary(s, st, v, t)
        conn.execute('UPDATE series SET count=?, first_step=?, last_step=?, last=?, last_time=?, '
                     'min=?, max=?, dtype=? WHERE id=?',
                     (s.count, s.first_step, s.last_step, _real(s.last), s.last_time,
                      _real(s.min), _real(s.max), s.dtype, s.db_id))

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
                     (s.db_id, s.seq, int(steps[0]), int(steps[-1]), len(steps),
                      b_steps, b_vals, b_epochs, b_times))
        assert s.db_id is not None  # _append inserted the series row
        conn.execute(overview.INSERT,
                     overview.row(s.db_id, s.seq, steps, vals, times, b_steps, b_vals))
