"""Where the views get run and series data: the index database, plus callbacks.

The query layer reads the index tables `runs` and `series` of `repo.db` directly (see
docs/storage.md). Series values and run liveness come through callbacks that the SDK
supplies, so that this layer does not depend on the layers above it.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable

from aim.ql.views import SERIES_COLUMNS

SeriesLoader = Callable[[str, str, dict], 'tuple | None']   # (hash, name, ctx) -> (steps, values)
ActiveCheck = Callable[[str], bool]


class IndexSource:
    def __init__(self, connection: sqlite3.Connection, load_series: SeriesLoader | None = None,
                 is_active: ActiveCheck | None = None):
        self.connection = connection
        self._load_series = load_series
        self._is_active = is_active
        self._series_sql = ('SELECT ' + ', '.join(SERIES_COLUMNS) +
                            ' FROM series WHERE run_hash = ? ORDER BY name, context')

    def run_series(self, run_hash: str) -> list[tuple]:
        return self.connection.execute(self._series_sql, (run_hash,)).fetchall()

    def load_series(self, run_hash: str, name: str, context: dict):
        if self._load_series is None:
            return None
        return self._load_series(run_hash, name, context)

    def is_active(self, row: tuple) -> bool:
        if self._is_active is not None:
            return bool(self._is_active(row[0]))
        # Without the SDK's lock check, a run is active until it records an end time.
        return row[7] is None
