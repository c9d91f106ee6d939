"""A repository in a PostgreSQL database: :class:`PgRepoStore`, the ``RepoStore`` of a
``postgresql://`` URL (see aim/storage/postgres.py for the backend and docs/scale-out.md
for the deployment).

Everything the SDK, the query layer, the UI and ``aim server`` ask of a repository works
the same; what lives in files for the SQLite repository lives elsewhere here:

- a run being written has no journal under ``.aim``: its points go to the local spool
  (``store.remote`` is true, so ``Run`` writes through :class:`aim.remote.store.RemoteLiveRun`)
  and are applied by :func:`aim.remote.ingest.apply_batch`, as through ``aim server``;
- the run write lock is PostgreSQL's advisory lock, per batch, and liveness is the
  stream lease in ``remote_streams``: both die with their holder.
"""
from __future__ import annotations

import contextlib
from typing import Any

from aim.errors import (
    MissingRunError,
    RepositoryError,
    RepositoryFormatError,
    RepositoryNotFoundError,
    RepositoryWriteError,
    RunLockedError,
)
from aim.storage import postgres
from aim.storage.index import FORMAT_VERSION, RepoIndex
from aim.storage.repository import RepoStore


class PgIndex(postgres.PgDatabase, RepoIndex):  # type: ignore[misc]
    """:class:`RepoIndex` over a PostgreSQL database."""

    def __init__(self, url: str, *, create: bool = False, readonly: bool = False):
        postgres.PgDatabase.__init__(self, url, readonly=readonly)
        if not readonly and (create or postgres.schema_present(self)):
            if not self._schema_current():
                postgres.create_schema(self, FORMAT_VERSION)

    def _schema_current(self) -> bool:
        try:
            if not postgres.schema_present(self):
                return False
            return bool(self.query("SELECT 1 FROM meta WHERE key='format_version'"))
        except RepositoryError:
            return False

    def connection(self):
        return self.conn

    def read_connection(self) -> postgres.PgConnection:
        """The connection a query of this thread reads with (aim.sdk.collections): the
        thread's own, in autocommit, so each statement reads a committed snapshot and
        holds nothing between rows (its rows are fetched whole)."""
        return self.conn

    def format_version(self) -> int | None:
        if not postgres.schema_present(self):
            return None
        rows = self.query("SELECT value FROM meta WHERE key='format_version'")
        try:
            return int(rows[0][0]) if rows else None
        except (TypeError, ValueError):
            return None

    def _index_query(self, sql: str, params=()) -> list | None:
        return self.query(sql, params)


class PgRepoStore(RepoStore):
    """The repository in the PostgreSQL database at ``url``."""
    remote = True          # runs are written through the spool (see the module doc)
    sync_changes = True    # ... which stores a run's creation, params and props at once
    backend = 'postgresql'

    def __init__(self, url: str, *, create: bool = False, readonly: bool = False):
        self.url = url
        self.root = self.path = self.db_path = self.index_path = postgres.redact(url)
        self.readonly = readonly
        self.journal_dir = self.locks_dir = ''
        self.index = self.db = PgIndex(url, create=create, readonly=readonly)
        version = self.db.format_version()
        if version is None:
            if create and not readonly:
                raise RepositoryError(f'Could not create the aimkit tables in {self.root}.',
                                      self.root)
            raise RepositoryNotFoundError(
                f'No aimkit repository in the database {self.root} (no aimkit tables). '
                f'Create one with `aim init --repo URL` or Repo(URL, init=True).', self.root)
        if version > FORMAT_VERSION:
            raise RepositoryFormatError(
                f'{self.root} has storage format version {version}, but this aimkit reads '
                f'version {FORMAT_VERSION}; upgrade aimkit (pip install -U aimkit).', self.root)
        self._checked = False

    # what the SQLite repository keeps in files ---------------------------------------------
    def lock_path(self, run_hash: str) -> str:
        raise RepositoryError('A PostgreSQL repository has no lock files; runs are locked in '
                              'the database.', self.root)

    def writer_pid(self, run_hash: str) -> int | None:
        return None

    def set_props_at_rest(self, run_hash: str, props: dict[str, Any]) -> tuple[dict, dict]:
        """As for SQLite, refused while a client writes the run (its lease is live); the
        write itself holds the run's advisory lock."""
        if self.readonly:
            raise RepositoryWriteError(f'{self.root} was opened read-only; the props of run '
                                       f'{run_hash} cannot be changed.', self.root)
        if self.is_active(run_hash):
            raise RunLockedError(f'Run {run_hash} is open for writing by a live client; change '
                                 f'its props through that Run, or once it has ended.', run_hash)
        return self._write_props(run_hash, props)

    def is_active(self, run_hash: str) -> bool:
        from aim.remote.ingest import live_stream_runs
        return bool(live_stream_runs(self.db, run_hash))

    def active_run_hashes(self) -> list[str]:
        from aim.remote.ingest import live_stream_runs
        return sorted(live_stream_runs(self.db))

    def recover_dead_runs(self) -> list[str]:
        return []        # a dead writer's points wait in its spool (picked up by check())

    def recover_run(self, run_hash: str) -> bool:
        return False

    def _fold_journal(self, run_hash: str, jdir: str, mark_ended: bool) -> list[str]:
        return []

    @contextlib.contextmanager
    def batch_lock(self, run_hash: str):
        """Batches take the run's advisory lock inside their transaction (ingest)."""
        yield

    # what Run asks of a repository written through the spool --------------------------------
    def check(self) -> None:
        """Start shipping the spooled streams of this database that dead writers left."""
        if not self._checked:
            self._checked = True
            from aim.remote.spool import start_pickup
            start_pickup(self)

    def run_info(self, run_hash: str) -> dict[str, Any]:
        row = self.db.run_row(run_hash)
        if row is None:
            if not self.run_exists(run_hash):
                raise MissingRunError(f'Cannot find run {run_hash!r} in {self.root}.', run_hash)
            row = self.index_row_from_data(run_hash)
        return {'row': row, 'active': self.is_active(run_hash)}

    def spool_target(self, *, own_connection: bool = False):
        from aim.remote.spool import LocalTarget
        store = PgRepoStore(self.url) if own_connection else self
        return LocalTarget(store, writer='direct')

    # maintenance ---------------------------------------------------------------------------
    def delete_run(self, run_hash: str) -> bool:
        if not self.run_exists(run_hash) and self.db.run_row(run_hash) is None:
            return False
        from aim.remote.ingest import live_stream_runs
        if live_stream_runs(self.db, run_hash):
            raise RunLockedError(f'Run {run_hash} is being written by a live client; close '
                                 f'that run (or wait for it to finish) before deleting it.',
                                 run_hash)
        with self.db.write() as conn:
            self.db.lock_run(conn, run_hash)
            RepoIndex.delete_run(conn, run_hash)
        return True

    def reclaim_space(self) -> None:
        """PostgreSQL's autovacuum gives deleted rows' space back to the tables."""

    def reindex(self, progress=None, damaged: list | None = None) -> int:
        """Rebuild the ``runs`` rows, series summaries and chunk overviews from the run data
        in one transaction; a run whose points cannot be decoded keeps its old summaries
        and is named in ``damaged``."""
        hashes = self.db.data_run_hashes()
        with self.db.write() as conn:
            conn.execute('DELETE FROM runs WHERE hash NOT IN '
                         '(SELECT DISTINCT run_hash FROM run_props)')
            for run_hash in hashes:
                data = self.run_data(run_hash)
                self._index_run(conn, data)
                try:
                    conn.execute('SAVEPOINT points')
                    self._recompute_summaries(conn, run_hash)
                    self._rebuild_overviews(conn, run_hash)
                    conn.execute('RELEASE points')
                except Exception as exc:   # undecodable chunks: the run keeps its summaries
                    conn.execute('ROLLBACK TO points')
                    if damaged is not None:
                        damaged.append((run_hash, str(exc)))
                if progress is not None:
                    progress(run_hash)
            from aim.storage.objects import rebuild_summaries
            found = rebuild_summaries(conn)
            if damaged is not None:
                damaged.extend(found)
        return len(hashes)

    def drop(self) -> None:
        """Delete every aimkit table of this database (``Repo.rm``)."""
        assert isinstance(self.db, PgIndex)
        postgres.drop_schema(self.db)

