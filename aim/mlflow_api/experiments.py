"""MLflow experiments: ids, lifecycle, tags and artifact locations of ``run.experiment`` names.

An aimkit experiment is a name on runs; MLflow's has a stable numeric id, a lifecycle
(active / deleted), tags and an artifact location, and it exists before any run. Those
live in the repository database's ``experiments`` table (SQLite or PostgreSQL, so every
server on one database gives an experiment the same id), one row per experiment name;
names that runs carry without a row (runs tracked with the SDK) get one the first time an
MLflow client looks. aimkit's ``default`` experiment is MLflow's ``Default``, id ``0``.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

from aim.mlflow_api.errors import MlflowApiError, invalid, missing

DEFAULT_ID = '0'
AIM_DEFAULT = 'default'
MLFLOW_DEFAULT = 'Default'
STATE_DIR = '.aim-mlflow'


def default_artifacts_root(repo_root: str) -> str:
    if '://' in repo_root:
        return os.path.abspath('mlartifacts')
    return os.path.join(repo_root, STATE_DIR, 'artifacts')



def to_mlflow_name(aim_name: str | None) -> str:
    return MLFLOW_DEFAULT if aim_name in (None, AIM_DEFAULT) else aim_name


def to_aim_name(mlflow_name: str) -> str:
    return AIM_DEFAULT if mlflow_name == MLFLOW_DEFAULT else mlflow_name


@dataclass
class Experiment:
    id: str
    name: str                      # aimkit's name (run.experiment)
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = field(default_factory=dict)
    artifact_location: str = ''

    def to_json(self) -> dict:
        return {'experiment_id': self.id, 'name': to_mlflow_name(self.name),
                'artifact_location': self.artifact_location,
                'lifecycle_stage': self.lifecycle_stage,
                'creation_time': self.creation_time,
                'last_update_time': self.last_update_time,
                'tags': [{'key': k, 'value': v} for k, v in sorted(self.tags.items())]}


class _Rows:
    __slots__ = ('rows',)

    def __init__(self, rows: list):
        self.rows = rows

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list:
        return self.rows


class _Reader:
    """``registry.connection().execute(sql, args)`` for reads: the repository database's
    ``query`` (thread-safe on either backend)."""

    def __init__(self, db):
        self.db = db

    def execute(self, sql: str, args=()) -> _Rows:
        return _Rows(self.db.query(sql, args))


class ExperimentRegistry:
    """The repository database's ``experiments`` table (``db``: the repository's
    :class:`aim.storage.sqlite.Database` or PostgreSQL's ``PgDatabase``)."""

    def __init__(self, db):
        self.db = db
        self._reader = _Reader(db)
        now = _now_ms()
        with self._conn() as conn:
            conn.execute('INSERT OR IGNORE INTO experiments(id, name, creation_time, '
                         'last_update_time, artifact_location) VALUES(0, ?, ?, ?, ?)',
                         (AIM_DEFAULT, now, now, default_location(DEFAULT_ID)))

    def connection(self) -> _Reader:
        """For reads: each statement on its own (no transaction)."""
        return self._reader

    def _conn(self):
        """``with registry._conn() as conn``: one write transaction."""
        return self.db.write()

    @staticmethod
    def _row(r) -> Experiment:
        return Experiment(str(r[0]), r[1], r[2], r[3], r[4], json.loads(r[5] or '{}'),
                          r[6] or default_location(str(r[0])))

    _COLS = ('id, name, lifecycle_stage, creation_time, last_update_time, tags, '
             'artifact_location')

    def all(self) -> list[Experiment]:
        rows = self.connection().execute(
            f'SELECT {self._COLS} FROM experiments ORDER BY id').fetchall()
        return [self._row(r) for r in rows]

    def by_id(self, experiment_id) -> Experiment:
        eid = _parse_id(experiment_id)
        row = self.connection().execute(f'SELECT {self._COLS} FROM experiments WHERE id=?',
                                        (eid,)).fetchone()
        if row is None:
            raise missing(f'No experiment with id {experiment_id!r}.')
        return self._row(row)

    def by_name(self, aim_name: str) -> Experiment | None:
        row = self.connection().execute(f'SELECT {self._COLS} FROM experiments WHERE name=?',
                                        (aim_name,)).fetchone()
        return self._row(row) if row else None

    def ensure(self, aim_names) -> None:
        """Rows for experiment names that runs carry (runs tracked with the SDK)."""
        names = [n for n in set(aim_names) if n]
        if not names:
            return
        now = _now_ms()
        with self._conn() as conn:
            known = {r[0] for r in conn.execute('SELECT name FROM experiments')}
            for name in sorted(set(names) - known):
                conn.execute('INSERT OR IGNORE INTO experiments(name, creation_time, '
                             'last_update_time) VALUES(?, ?, ?)', (name, now, now))

    def create(self, aim_name: str, artifact_location: str | None,
               tags: dict[str, str]) -> Experiment:
        now = _now_ms()
        with self._conn() as conn:
            if conn.execute('SELECT 1 FROM experiments WHERE name=?', (aim_name,)).fetchone():
                raise MlflowApiError(f"Experiment '{to_mlflow_name(aim_name)}' already exists.",
                                     'RESOURCE_ALREADY_EXISTS')
            cur = conn.execute('INSERT INTO experiments(name, creation_time, last_update_time, '
                               'tags, artifact_location) VALUES(?, ?, ?, ?, ?)',
                               (aim_name, now, now, json.dumps(tags), artifact_location or None))
            eid = cur.lastrowid
        return self.by_id(eid)

    def update(self, experiment_id, **changes) -> None:
        eid = _parse_id(experiment_id)
        sets = ', '.join(f'{k}=?' for k in changes)
        with self._conn() as conn:
            conn.execute(f'UPDATE experiments SET {sets}, last_update_time=? WHERE id=?',
                         (*changes.values(), _now_ms(), eid))

    def rename(self, experiment_id, aim_name: str) -> None:
        with self._conn() as conn:
            row = conn.execute('SELECT id FROM experiments WHERE name=?', (aim_name,)).fetchone()
        if row is not None and str(row[0]) != str(experiment_id):
            raise MlflowApiError(f"Experiment '{to_mlflow_name(aim_name)}' already exists.",
                                 'RESOURCE_ALREADY_EXISTS')
        self.update(experiment_id, name=aim_name)


def default_location(experiment_id: str) -> str:
    return f'mlflow-artifacts:/{experiment_id}'


def _parse_id(experiment_id) -> int:
    text = str(experiment_id)
    if not text.isdigit() or len(text) > 18:
        raise missing(f'No experiment with id {experiment_id!r} (experiment ids are numbers).')
    return int(text)


def _now_ms() -> int:
    return int(time.time() * 1000)


def check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise invalid('An experiment name must be a non-empty string.')
    if len(name) > 500:
        raise invalid(f'An experiment name has at most 500 characters; got {len(name)}.')
    return name
