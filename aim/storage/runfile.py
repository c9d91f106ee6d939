"""One run's file (``runs/<hash>.db``): props, params, series and their chunks.

The run file is the source of truth for its run; ``index.db`` holds copies.
"""
from __future__ import annotations

import json
import os
from typing import Any

from aim.errors import RepositoryFormatError
from aim.storage.sqlite import Database

FORMAT_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS props(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS series(
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, context TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 0, first_step INTEGER, last_step INTEGER,
    last REAL, last_time REAL, min REAL, max REAL, dtype TEXT,
    UNIQUE(name, context));
CREATE TABLE IF NOT EXISTS chunks(
    series_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    first_step INTEGER, last_step INTEGER, n INTEGER,
    steps BLOB, vals BLOB, epochs BLOB, times BLOB,
    PRIMARY KEY(series_id, seq));
CREATE TABLE IF NOT EXISTS logs(id INTEGER PRIMARY KEY, time REAL, line TEXT);
"""

SERIES_COLUMNS = ('id', 'name', 'context', 'count', 'first_step', 'last_step', 'last',
                  'last_time', 'min', 'max', 'dtype')


class RunFile(Database):
    """Typed access to a run file. Writes happen only in the run's writer process."""

    def __init__(self, path: str, *, create: bool = False, readonly: bool = False):
        super().__init__(path, readonly=readonly)
        if create:
            with self.write() as conn:
                for stmt in SCHEMA.strip().split(';'):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute("INSERT OR IGNORE INTO meta VALUES('format_version', ?)",
                             (str(FORMAT_VERSION),))
        else:
            self.check_version()

    def check_version(self) -> None:
        rows = self.query("SELECT value FROM meta WHERE key='format_version'")
        version = int(rows[0][0]) if rows else None
        if version is None or version > FORMAT_VERSION:
            raise RepositoryFormatError(
                f'{self.path} has storage format version {version}, but this aimkit reads '
                f'version {FORMAT_VERSION}; upgrade aimkit (pip install -U aimkit).', self.path)

    # props -------------------------------------------------------------------------
    def get_props(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.query('SELECT key, value FROM props')}

    @staticmethod
    def put_props(conn, props: dict[str, Any]) -> None:
        conn.executemany('INSERT OR REPLACE INTO props VALUES(?, ?)',
                         [(k, json.dumps(v, allow_nan=False)) for k, v in props.items()])

    @staticmethod
    def put_params_text(conn, params_text: str) -> None:
        conn.execute("INSERT OR REPLACE INTO props VALUES('params', ?)", (params_text,))

    def get_params_text(self) -> str | None:
        rows = self.query("SELECT value FROM props WHERE key='params'")
        return rows[0][0] if rows else None

    # series ------------------------------------------------------------------------
    def series_rows(self) -> list[dict]:
        cols = ', '.join(SERIES_COLUMNS)
        return [dict(zip(SERIES_COLUMNS, r)) for r in self.query(f'SELECT {cols} FROM series')]

    def find_series(self, name: str, context_json: str) -> dict | None:
        cols = ', '.join(SERIES_COLUMNS)
        rows = self.query(f'SELECT {cols} FROM series WHERE name=? AND context=?',
                          (name, context_json))
        return dict(zip(SERIES_COLUMNS, rows[0])) if rows else None

    def read_chunks(self, series_id: int, first_step: int | None = None,
                    last_step: int | None = None) -> list[tuple]:
        sql = 'SELECT seq, n, steps, vals, epochs, times FROM chunks WHERE series_id=?'
        params: list = [series_id]
        if first_step is not None:
            sql += ' AND last_step >= ?'
            params.append(first_step)
        if last_step is not None:
            sql += ' AND first_step <= ?'
            params.append(last_step)
        return self.query(sql + ' ORDER BY seq', params)

    def read_chunks_by_seq(self, series_id: int, seq: int) -> list[tuple]:
        return self.query('SELECT seq, n, steps, vals, epochs, times FROM chunks '
                          'WHERE series_id=? AND seq=?', (series_id, seq))

    def read_series(self, series_id: int, first_step: int | None = None,
                    last_step: int | None = None):
        """(steps, values, epochs, times) numpy arrays in step order, one value per step."""
        import numpy as np

        from aim.storage import chunks as codec
        parts = [codec.decode(s, v, e, t, n)
                 for _, n, s, v, e, t in self.read_chunks(series_id, first_step, last_step)]
        if not parts:
            return (np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int64),
                    np.empty(0, np.float64))
        if len(parts) == 1:
            steps, values, epochs, times = parts[0]
        else:
            steps = np.concatenate([p[0] for p in parts])
            values = codec.concat_values([p[1] for p in parts])
            epochs = np.concatenate([p[2] for p in parts])
            times = np.concatenate([p[3] for p in parts])
        steps, values, epochs, times = codec.sort_unique_last(steps, values, epochs, times)
        if first_step is not None or last_step is not None:
            lo = steps.searchsorted(first_step) if first_step is not None else 0
            hi = steps.searchsorted(last_step, 'right') if last_step is not None else len(steps)
            steps, values, epochs, times = steps[lo:hi], values[lo:hi], epochs[lo:hi], times[lo:hi]
        return steps, values, epochs, times

    # logs --------------------------------------------------------------------------
    def read_logs(self) -> list[tuple[int, float, str]]:
        return self.query('SELECT id, time, line FROM logs ORDER BY id')

    def size_bytes(self) -> int:
        total = 0
        for suffix in ('', '-wal', '-shm'):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total
