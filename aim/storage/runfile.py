"""One run's data inside the repository database: props, params, series, chunks, logs.

``RunData`` is a view (run hash + the shared database); it owns no file of its own.
"""
from __future__ import annotations

import json
from typing import Any

from aim.errors import RepositoryError
from aim.storage.index import SERIES_ALL, RepoIndex

FORMAT_VERSION = 1


class RunData:
    def __init__(self, db: RepoIndex, run_hash: str):
        self.db = db
        self.run_hash = run_hash
        self.readonly = db.readonly
        self.path = db.path

    def query(self, sql: str, params=()):
        return self.db.query(sql, params)

    def write(self):
        return self.db.write()

    def close(self) -> None:
        """Nothing to release: the database belongs to the repository."""

    def exists(self) -> bool:
        return bool(self.query('SELECT 1 FROM run_props WHERE run_hash=? LIMIT 1',
                               (self.run_hash,)))

    # props -------------------------------------------------------------------------------
    def get_props(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.query(
            "SELECT key, value FROM run_props WHERE run_hash=? AND key != 'params'",
            (self.run_hash,))}

    def put_props(self, conn, props: dict[str, Any]) -> None:
        conn.executemany('INSERT OR REPLACE INTO run_props VALUES(?, ?, ?)',
                         [(self.run_hash, k, json.dumps(v, allow_nan=False))
                          for k, v in props.items()])

    def put_params_text(self, conn, params_text: str) -> None:
        conn.execute("INSERT OR REPLACE INTO run_props VALUES(?, 'params', ?)",
                     (self.run_hash, params_text))

    def get_params_text(self) -> str | None:
        rows = self.query("SELECT value FROM run_props WHERE run_hash=? AND key='params'",
                          (self.run_hash,))
        return rows[0][0] if rows else None

    # series ------------------------------------------------------------------------------
    def series_rows(self) -> list[dict]:
        return [dict(zip(SERIES_ALL, r)) for r in self.query(
            f'SELECT {", ".join(SERIES_ALL)} FROM series WHERE run_hash=?', (self.run_hash,))]

    def find_series(self, name: str, context_json: str) -> dict | None:
        rows = self.query(f'SELECT {", ".join(SERIES_ALL)} FROM series '
                          f'WHERE run_hash=? AND name=? AND context=?',
                          (self.run_hash, name, context_json))
        return dict(zip(SERIES_ALL, rows[0])) if rows else None

    def read_chunks(self, series_id: int, first_step: int | None = None,
                    last_step: int | None = None) -> list[tuple]:
        in_range, params = _step_range_sql('', first_step, last_step)
        return self.query('SELECT seq, n, steps, vals, epochs, times FROM chunks '
                          f'WHERE series_id=?{in_range} ORDER BY seq', [series_id] + params)

    def read_chunks_by_seq(self, series_id: int, seq: int) -> list[tuple]:
        return self.query('SELECT seq, n, steps, vals, epochs, times FROM chunks '
                          'WHERE series_id=? AND seq=?', (series_id, seq))

    def read_series(self, series_id: int, first_step: int | None = None,
                    last_step: int | None = None):
        """(steps, values, epochs, times) numpy arrays in step order, one value per step."""
        return decode_series(self.read_chunks(series_id, first_step, last_step),
                             first_step, last_step)

    def read_series_by_key(self, name: str, context_json: str, first_step: int | None = None,
                           last_step: int | None = None, columns=None):
        """Like :meth:`read_series`, by name and canonical context, in one statement."""
        # blobs not asked for are not even read (SQLite reads a BLOB's overflow pages only
        # when its column is selected)
        wanted = set(columns) if columns is not None else {'values', 'epochs', 'times'}
        in_range, params = _step_range_sql('c.', first_step, last_step)
        sql = (f'SELECT c.seq, c.n, c.steps, {_blob_columns(wanted, "c.")} FROM series s '
               'JOIN chunks c ON c.series_id = s.id '
               f'WHERE s.run_hash=? AND s.name=? AND s.context=?{in_range} ORDER BY c.seq')
        rows = self.query(sql, [self.run_hash, name, context_json] + params)
        try:
            return decode_series(rows, first_step, last_step, columns)
        except Exception as e:  # a damaged chunk: say which series, keep the rest readable
            raise _unreadable(f'series {name!r} {context_json} of run {self.run_hash}', e,
                              self.path) from None

    # logs --------------------------------------------------------------------------------
    def read_logs(self) -> list[tuple[int, float, str]]:
        return self.query('SELECT id, time, line FROM logs WHERE run_hash=? ORDER BY id',
                          (self.run_hash,))

    def next_log_id(self) -> int:
        return self.query('SELECT COALESCE(MAX(id), -1) + 1 FROM logs WHERE run_hash=?',
                          (self.run_hash,))[0][0]


def read_series_many(db: RepoIndex, series_ids: list[int], columns=('values',),
                     first_step: int | None = None, last_step: int | None = None,
                     written_after: float | None = None) -> dict:
    """Many series in one statement: ``{series_id: (steps, values, epochs, times)}``, each
    as :meth:`RunData.read_series` gives it, with only the named ``columns`` (and steps)
    decoded. Series without points map to empty arrays; unknown ids are left out.

    One statement reads the chunks of every series in primary-key order, which is what a
    chart of a thousand series needs: a thousand statements cost more than the reading.

    ``written_after`` (a wall time) reads only the chunks holding a point written later,
    by their overview rows' ``last_time`` (a chunk without a current row is read): every
    such point is in the answer, with some earlier ones of the same chunks."""
    need = ('steps',) + tuple(c for c in columns if c != 'steps')
    groups = read_chunk_rows(db, series_ids, columns, first_step, last_step, written_after)
    out = {}
    for series_id, chunk_rows in groups.items():
        try:
            out[series_id] = decode_series(chunk_rows, first_step, last_step, need)
        except Exception as e:  # a damaged chunk: name the series, as read_series_by_key
            raise unreadable_series(db, series_id, e) from None
    return out


def read_chunk_rows(db: RepoIndex, series_ids: list[int], columns=('values',),
                    first_step: int | None = None, last_step: int | None = None,
                    written_after: float | None = None) -> dict[int, list[tuple]]:
    """The chunk rows ``(seq, n, steps, vals, epochs, times)`` of many series in one
    statement, ``{series_id: rows in seq order}`` (no rows: an empty list); blobs of
    columns not named are None. ``written_after`` as in :func:`read_series_many`."""
    import json

    in_range, params = _step_range_sql('c.', first_step, last_step)
    sql = (f'SELECT c.series_id, c.seq, c.n, c.steps, {_blob_columns(set(columns), "c.")} '
           f'FROM chunks c')
    if written_after is not None:
        sql += (' LEFT JOIN overviews o ON o.series_id = c.series_id AND o.seq = c.seq')
        in_range += ' AND (o.last_time IS NULL OR o.n != c.n OR o.last_time > ?)'
        params.append(written_after)
    sql += (f' WHERE c.series_id IN (SELECT value FROM json_each(?)){in_range} '
            f'ORDER BY c.series_id, c.seq')
    rows = db.query(sql, [json.dumps([int(i) for i in series_ids])] + params)
    groups: dict[int, list] = {int(i): [] for i in series_ids}
    for row in rows:
        groups[row[0]].append(row[1:])
    return groups


def unreadable_series(db: RepoIndex, series_id: int, e: Exception) -> RepositoryError:
    """The error for a series whose chunks cannot be decoded, naming the series."""
    found = db.query('SELECT run_hash, name, context FROM series WHERE id=?', (series_id,))
    what = (f'series {found[0][1]!r} {found[0][2]} of run {found[0][0]}' if found
            else f'series #{series_id}')
    return _unreadable(what, e, db.path)


def _blob_columns(wanted: set, prefix: str = '') -> str:
    """The values/epochs/times blob columns, NULL for those not wanted (SQLite reads a
    blob's overflow pages only when its column is selected)."""
    return ', '.join(f'{prefix}{col}' if key in wanted else 'NULL'
                     for key, col in (('values', 'vals'), ('epochs', 'epochs'),
                                      ('times', 'times')))


def _step_range_sql(prefix: str, first_step: int | None, last_step: int | None):
    """(' AND ...' condition, params) keeping the chunks that hold steps in the range."""
    sql, params = '', []
    if first_step is not None:
        sql += f' AND {prefix}last_step >= ?'
        params.append(first_step)
    if last_step is not None:
        sql += f' AND {prefix}first_step <= ?'
        params.append(last_step)
    return sql, params


def _unreadable(what: str, e: Exception, path: str) -> RepositoryError:
    return RepositoryError(
        f'The points of {what} cannot be read ({type(e).__name__}: {e}); the rest of the '
        f'repository is unaffected. Run `aim storage check` to list damaged runs.', path)


def decode_series(chunk_rows, first_step=None, last_step=None, columns=None):
    """(steps, values, epochs, times) in step order, one value per step, from chunk rows
    ``(seq, n, steps, vals, epochs, times)``. Only the named ``columns`` are decoded; the
    others come back as None."""
    import numpy as np

    from aim.storage import chunks as codec
    wanted = codec.COLUMNS if columns is None else tuple(columns)
    need = [c for c in codec.COLUMNS if c in wanted or c == 'steps']
    position = {'steps': 2, 'values': 3, 'epochs': 4, 'times': 5}
    empty = {'steps': np.int64, 'values': np.float64, 'epochs': np.int64, 'times': np.float64}
    out = {}
    for c in need:
        parts = [codec.decode_column(c, row[position[c]], row[1]) for row in chunk_rows]
        if not parts:
            out[c] = np.empty(0, empty[c])
        elif c == 'values':
            out[c] = codec.concat_values(parts)
        else:
            out[c] = parts[0] if len(parts) == 1 else np.concatenate(parts)
    pick = codec.last_written_order(out['steps'])
    if pick is not None:
        out = {c: a[pick] for c, a in out.items()}
    if first_step is not None or last_step is not None:
        steps = out['steps']
        lo = steps.searchsorted(first_step) if first_step is not None else 0
        hi = steps.searchsorted(last_step, 'right') if last_step is not None else len(steps)
        out = {c: a[lo:hi] for c, a in out.items()}
    for c, a in out.items():
        if not a.flags.writeable:  # raw values are views of the stored bytes
            out[c] = a.copy()
    return tuple(out[c] if c in wanted else None for c in codec.COLUMNS)

