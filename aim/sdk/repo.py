"""Repo: an aim repository — a directory holding ``.aim/``."""
from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aim.errors import AimError, MissingRunError, RepositoryNotFoundError

AIM_DIR = '.aim'  # the same as aim.storage.repository.AIM_DIR (storage is imported lazily)

if TYPE_CHECKING:
    from aim.sdk.run import Run

_pool: weakref.WeakValueDictionary[str, Repo] = weakref.WeakValueDictionary()
_pool_lock = threading.Lock()


def is_remote(path) -> bool:
    return isinstance(path, str) and path.startswith(('aim://', 'aims://'))


def is_database(path) -> bool:
    """A PostgreSQL repository: ``postgresql://user[:password]@host[:port]/database``."""
    return isinstance(path, str) and path.startswith(('postgresql://', 'postgres://'))


def _clean_path(path) -> str:
    path = os.fspath(path)
    if is_remote(path):
        from aim.remote.credentials import parse_url
        try:
            host, port, tls = parse_url(path)
        except ValueError as e:
            raise AimError(str(e)) from None
        host = f'[{host}]' if ':' in host else host
        return f'{"aims" if tls else "aim"}://{host}:{port}'
    if is_database(path):
        return path
    path = os.path.abspath(os.path.expanduser(path))
    # accept the .aim directory itself as well as its parent
    if os.path.basename(path) == AIM_DIR:
        path = os.path.dirname(path)
    return path


class Repo:
    """An aim repository: find, create, read and query runs."""

    def __init__(self, path: str | os.PathLike, read_only: bool | None = None,
                 init: bool = False):
        self.root_path = _clean_path(path)
        self.read_only = bool(read_only)
        self._store: Any
        if is_remote(self.root_path):
            # an `aim server`: reads go over HTTP, runs write into the local spool
            from aim.remote.store import RemoteStore
            self.path = self.root_path
            self._store = RemoteStore(self.root_path)
            return
        if is_database(self.root_path):
            # a PostgreSQL database: the same tables, runs written through the spool
            from aim.storage.pg_repository import PgRepoStore
            from aim.storage.postgres import redact
            self.path = redact(self.root_path)
            self._store = PgRepoStore(self.root_path, create=init, readonly=self.read_only)
            return
        self.path = os.path.join(self.root_path, AIM_DIR)
        from aim.storage.repository import RepoStore
        self._store = RepoStore(self.root_path, create=init, readonly=self.read_only)
        self._store.recover_dead_runs()

    # constructors -------------------------------------------------------------------------
    @classmethod
    def from_path(cls, path, read_only: bool | None = None, init: bool = False) -> Repo:
        key = _clean_path(path)
        with _pool_lock:
            repo = _pool.get(key)
            if repo is None or (init and not is_remote(key) and not is_database(key)
                                and not os.path.isdir(repo.path)):
                repo = cls(key, read_only=read_only, init=init)
                _pool[key] = repo
            return repo

    @classmethod
    def default_repo_path(cls) -> str:
        """The nearest directory upwards from the working directory holding ``.aim``;
        the working directory itself if there is none."""
        env = os.environ.get('AIM_REPO')
        if env:
            return _clean_path(env)
        cwd = os.getcwd()
        here = cwd
        while True:
            if os.path.isdir(os.path.join(here, AIM_DIR)):
                return here
            parent = os.path.dirname(here)
            if parent == here:
                return cwd
            here = parent

    @classmethod
    def default_repo(cls, init: bool = False) -> Repo:
        path = cls.default_repo_path()
        return cls.from_path(path, init=init or not os.path.isdir(os.path.join(path, AIM_DIR)))

    @classmethod
    def _resolve(cls, repo, init: bool) -> Repo:
        if isinstance(repo, Repo):
            return repo
        if repo is None:
            return cls.default_repo(init=init)
        if isinstance(repo, (str, os.PathLike)):
            return cls.from_path(repo, init=init)
        raise TypeError(f'repo must be a path or a Repo, got {type(repo).__name__}')

    @property
    def is_remote_repo(self) -> bool:
        """Whether this is an `aim server` (``aim://host:port``), not a local directory."""
        return is_remote(self.root_path)

    @classmethod
    def exists(cls, path) -> bool:
        if is_remote(path):
            return True
        if is_database(path):
            from aim.storage.pg_repository import PgIndex
            from aim.storage.postgres import schema_present
            index = PgIndex(path, readonly=True)
            try:
                return schema_present(index)
            finally:
                index.close()
        return os.path.isdir(os.path.join(_clean_path(path), AIM_DIR))

    @classmethod
    def rm(cls, path) -> None:
        """Remove the repository at ``path`` (its ``.aim`` directory) entirely."""
        root = _clean_path(path)
        with _pool_lock:
            repo = _pool.pop(root, None)
        if repo is not None:
            repo._store.close()
        if is_database(root):
            from aim.storage.pg_repository import PgRepoStore
            store = PgRepoStore(root)
            store.drop()
            store.close()
            return
        import shutil
        shutil.rmtree(os.path.join(root, AIM_DIR), ignore_errors=True)

    # runs ---------------------------------------------------------------------------------
    @property
    def index(self):
        """The cross-run index (:class:`aim.storage.index.RepoIndex`)."""
        return self._store.index

    def run_from_index_row(self, row: dict) -> Run:
        from aim.sdk.run import Run
        return Run._from_index_row(self, row)

    def get_run(self, run_hash: str) -> Run | None:
        """The run with this hash (read-only), or None if there is none."""
        from aim.sdk.run import Run
        try:
            return Run(run_hash, repo=self, read_only=True)
        except MissingRunError:
            return None

    def run_exists(self, run_hash: str) -> bool:
        return self._store.run_exists(run_hash)

    def iter_runs(self) -> Iterator[Run]:
        """Every run, newest first, read-only."""
        self._store.recover_dead_runs()
        for row in self._store.index.run_rows():
            yield self.run_from_index_row(row)

    def list_all_runs(self) -> list[str]:
        return self._store.list_run_hashes()

    def list_active_runs(self) -> list[str]:
        return self._store.active_run_hashes()

    def total_runs_count(self) -> int:
        if self.is_remote_repo:
            return int(self._store.client.get('/count')['runs'])
        return self._store.index.query('SELECT COUNT(*) FROM runs')[0][0]

    def _match_hashes(self, patterns) -> list[str]:
        if isinstance(patterns, str):
            patterns = [patterns]
        import fnmatch
        known = self.list_all_runs()
        out: list[str] = []
        for p in patterns:
            hits = fnmatch.filter(known, p) if any(c in p for c in '*?[') else [p]
            out.extend(h for h in hits if h not in out)
        return out

    def delete_run(self, run_hash: str) -> bool:
        """Delete a run and free its disk space. False if there is no such run."""
        return self._store.delete_run(run_hash)

    def delete_runs(self, run_hashes) -> tuple[bool, list[str]]:
        remaining = []
        for h in self._match_hashes(run_hashes):
            try:
                if not self.delete_run(h):
                    remaining.append(h)
            except AimError:
                remaining.append(h)
        return not remaining, remaining

    def _copy_run(self, run_hash: str, dest: Repo) -> None:
        if self.is_remote_repo or dest.is_remote_repo:
            # between a server and a directory (or two servers): the run as one document
            from aim.remote.dump import export_run, import_run
            doc = self._store.export_run(run_hash) if self.is_remote_repo else \
                export_run(self._store, run_hash)
            if dest.is_remote_repo:
                dest._store.import_run(doc)
            else:
                import_run(dest._store, doc)
            return
        self._store.copy_run_to(run_hash, dest._store)

    def copy_runs(self, run_hashes, dest_repo) -> tuple[bool, list[str]]:
        dest = Repo._resolve(dest_repo, init=True)
        remaining = []
        for h in self._match_hashes(run_hashes):
            try:
                self._copy_run(h, dest)
            except AimError:
                remaining.append(h)
        return not remaining, remaining

    def move_runs(self, run_hashes, dest_repo) -> tuple[bool, list[str]]:
        dest = Repo._resolve(dest_repo, init=True)
        remaining = []
        for h in self._match_hashes(run_hashes):
            try:
                self._copy_run(h, dest)
                self._store.delete_run(h)
            except AimError:
                remaining.append(h)
        return not remaining, remaining

    def reindex(self, progress=None, damaged: list | None = None) -> int:
        """Rebuild the index from the run data; undecodable runs go to ``damaged``."""
        if self.is_remote_repo:
            raise AimError(f'Reindex the repository on the server itself (`aim storage reindex '
                           f'--repo DIR` there), not through {self.root_path}.')
        return self._store.reindex(progress, damaged)

    # queries (aim/sdk/collections.py) -------------------------------------------------------
    def query_runs(self, query: str = '', paginated: bool = False, offset: str | None = None,
                   report_mode=None, **kwargs):
        """Runs matching a run query, newest first (see docs/query-language.md).
        ``offset``: start after the run with this hash. ``paginated`` and ``report_mode``
        are accepted for compatibility with Aim and change nothing."""
        from aim.sdk.collections import QueryRunCollection
        return QueryRunCollection(self, query, report_mode=report_mode, offset=offset,
                                  **kwargs)

    def query_metrics(self, query: str = '', report_mode=None, **kwargs):
        """Metrics matching a query over ``run``, ``metric`` and ``context``."""
        from aim.sdk.collections import QueryTraceCollection
        return QueryTraceCollection(self, query, report_mode=report_mode, **kwargs)

    traces = query_metrics
    iter_traces = query_metrics

    def _query_objects(self, sequence: str, query: str, report_mode, kwargs):
        from aim.sdk.collections import QueryObjectCollection
        return QueryObjectCollection(self, sequence, query, report_mode=report_mode, **kwargs)

    def query_images(self, query: str = '', report_mode=None, **kwargs):
        """Image sequences matching a query over ``run`` and ``images``."""
        return self._query_objects('images', query, report_mode, kwargs)

    def query_texts(self, query: str = '', report_mode=None, **kwargs):
        """Text sequences matching a query over ``run`` and ``texts``."""
        return self._query_objects('texts', query, report_mode, kwargs)

    def query_audios(self, query: str = '', report_mode=None, **kwargs):
        """Audio sequences matching a query over ``run`` and ``audios``."""
        return self._query_objects('audios', query, report_mode, kwargs)

    def query_distributions(self, query: str = '', report_mode=None, **kwargs):
        """Distribution sequences matching a query over ``run`` and ``distributions``."""
        return self._query_objects('distributions', query, report_mode, kwargs)

    def query_figure_objects(self, query: str = '', report_mode=None, **kwargs):
        """Figure sequences matching a query over ``run`` and ``figures``."""
        return self._query_objects('figures', query, report_mode, kwargs)

    def available_sequence_types(self) -> list[str]:
        return ['metric', 'images', 'texts', 'distributions', 'audios', 'figures']

    def collect_metrics(self) -> dict:
        if self.is_remote_repo:
            return self._store.client.get('/collect/metrics')
        from aim.sdk.collections import collect_metrics
        return collect_metrics(self)

    collect_metrics_info = collect_metrics

    def collect_sequence_info(self, sequence_types='metric') -> dict:
        """``{'metric': {name: [context, ...]}, 'images': {...}, ...}`` (Aim 3.x)."""
        from aim.sdk.sequences import kind_of
        types = [sequence_types] if isinstance(sequence_types, str) else list(sequence_types)
        out = {}
        for t in types:
            if t == 'metric':
                out[t] = self.collect_metrics()
                continue
            kind = kind_of(t)
            if kind is None:
                raise ValueError(f'unknown sequence type {t!r}: use metric, images, texts, '
                                 f'distributions, audios or figures')
            out[t] = self._collect_objects(kind)
        return out

    def _collect_objects(self, kind: str) -> dict:
        import json

        from aim.storage.objects import list_series
        if self.is_remote_repo:
            return {}
        found: dict = {}
        for row in list_series(self._store.db, kind=kind):
            contexts = found.setdefault(row['name'], [])
            ctx = json.loads(row['context'])
            if ctx not in contexts:
                contexts.append(ctx)
        return found

    def collect_params(self) -> dict:
        if self.is_remote_repo:
            return self._store.client.get('/collect/params')
        from aim.sdk.collections import collect_params
        return collect_params(self)

    collect_params_info = collect_params

    def close(self) -> None:
        self._store.close()

    def __repr__(self) -> str:
        return f'<Repo {self.path if is_database(self.root_path) else self.root_path}>'

    def __eq__(self, other) -> bool:
        return isinstance(other, Repo) and other.root_path == self.root_path

    def __hash__(self) -> int:
        return hash(self.root_path)


__all__ = ['Repo', 'RepositoryNotFoundError']
