"""The SDK's view of an ``aim server``: what ``Repo`` and ``Run`` ask of a repository
(``repo._store``), answered over HTTP, and the live remote run that writes into the spool.

``RemoteStore`` mirrors the parts of :class:`aim.storage.repository.RepoStore` that the
SDK reads through (``index.run_row``, ``run_data(hash).read_series_by_key``, ...), so
``Run`` and ``Metric`` work unchanged on a remote repository.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

from aim.errors import MissingRunError, RunLockedError


class _RemoteIndex:
    def __init__(self, store: RemoteStore):
        self._store = store
        self.path = store.url

    def run_row(self, run_hash: str) -> dict | None:
        try:
            return self._store.run_info(run_hash)['row']
        except MissingRunError:
            return None

    def run_rows(self) -> list[dict]:
        from aim.ql.views import RUN_COLUMNS
        # every run, the archived ones too (a listing, not a query)
        rows = self._store.client.call('POST', '/query/runs',
                                       {'query': 'run.archived in (True, False)'})['rows']
        return [dict(zip(RUN_COLUMNS, r)) for r in rows]

    def series_rows(self, run_hash: str) -> list[dict]:
        return self._store.client.get(f'/runs/{run_hash}/series')['rows']

    def series_row(self, run_hash: str, name: str, context: str) -> dict | None:
        return self._store.client.get(f'/runs/{run_hash}/series', name=name,
                                      context=context)['row']


class _RemoteRunData:
    def __init__(self, store: RemoteStore, run_hash: str):
        self._store = store
        self.run_hash = run_hash

    def get_params_text(self) -> str | None:
        return self._store.client.get(f'/runs/{self.run_hash}/params')['text']

    def get_props(self) -> dict:
        return self._store.client.get(f'/runs/{self.run_hash}/stored-props')['props']

    def read_series_by_key(self, name: str, context_json: str, first_step: int | None = None,
                           last_step: int | None = None, columns=None):
        from aim.remote import protocol
        from aim.storage.runfile import decode_series
        data = self._store.client.call(
            'POST', f'/runs/{self.run_hash}/series/read',
            {'name': name, 'context': context_json, 'first_step': first_step,
             'last_step': last_step, 'columns': None if columns is None else list(columns)},
            raw=True)
        rows = [tuple(r) for r in protocol.unpack(data)]
        return decode_series(rows, first_step, last_step, columns)

    def read_logs(self) -> list[tuple[int, float, str]]:
        return [tuple(r) for r in self._store.client.get(f'/runs/{self.run_hash}/logs')['lines']]

    def close(self) -> None:
        pass


class _RemoteBlobs:
    def __init__(self, store: RemoteStore):
        self._store = store
        self.location = f'the server at {store.url}'

    def get(self, digest: str) -> bytes:
        return self._store.client.call('GET', f'/blobs/{digest}', raw=True)


class RemoteStore:
    """``repo._store`` of a remote repository."""
    remote = True
    readonly = False

    def __init__(self, url: str):
        from aim.remote.client import RemoteClient
        self.client = RemoteClient(url)
        self.url = self.root = self.path = self.client.url
        self.index = _RemoteIndex(self)
        self._checked = False

    def check(self) -> None:
        """Reach the server once (a clear error now, instead of at the first batch)."""
        if not self._checked:
            self.client.hello()
            self._checked = True
            # streams of this server that a dead (or timed-out) writer left in the spool
            from aim.remote.spool import start_pickup
            start_pickup(self)

    def spool_target(self, *, own_connection: bool = False):
        """Where this process' spool sends batches: the server (``own_connection``: over a
        client of its own, for a background thread)."""
        from aim.remote.client import RemoteClient
        from aim.remote.spool import HttpTarget
        return HttpTarget(RemoteClient(self.url) if own_connection else self.client)

    # reads ---------------------------------------------------------------------------------
    def run_info(self, run_hash: str) -> dict:
        return self.client.get(f'/runs/{run_hash}')

    def run_exists(self, run_hash: str) -> bool:
        try:
            self.run_info(run_hash)
            return True
        except MissingRunError:
            return False

    def run_data(self, run_hash: str) -> _RemoteRunData:
        return _RemoteRunData(self, run_hash)

    def open_run_file(self, run_hash: str) -> _RemoteRunData:
        self.run_info(run_hash)   # MissingRunError for an unknown run
        return _RemoteRunData(self, run_hash)

    def is_active(self, run_hash: str) -> bool:
        try:
            return bool(self.run_info(run_hash)['active'])
        except MissingRunError:
            return False

    def list_run_hashes(self) -> list[str]:
        return self.client.get('/runs')['hashes']

    def active_run_hashes(self) -> list[str]:
        return self.client.get('/runs', active='true')['hashes']

    def index_row_from_data(self, run_hash: str) -> dict:
        return self.run_info(run_hash)['row']

    def recover_run(self, run_hash: str) -> bool:
        return False   # the server recovers its own repository

    def recover_dead_runs(self) -> list[str]:
        return []

    # writes --------------------------------------------------------------------------------
    def delete_run(self, run_hash: str) -> bool:
        return bool(self.client.call('DELETE', f'/runs/{run_hash}')['deleted'])

    def set_props_at_rest(self, run_hash: str, props: dict[str, Any]) -> tuple[dict, dict]:
        """Change the props of a run no client writes (``run.archived = True`` on a run
        read from the server), as ``RepoStore.set_props_at_rest`` does: the server refuses
        with RunLockedError while a writer holds the run. Returns (all props now, the
        changes written)."""
        if getattr(self, 'readonly', False):
            from aim.errors import RepositoryWriteError
            raise RepositoryWriteError(f'The repository at {self.url} was opened read-only; the '
                                       f'props of run {run_hash} cannot be changed.', self.url)
        answer = self.client.call('POST', f'/runs/{run_hash}/props', {'props': props})
        return answer['props'], answer['changes']

    # rich objects, read through the server
    def object_series_rows(self, run_hash: str | None = None,
                           kind: str | None = None) -> list[dict]:
        params = {'kind': kind} if kind else {}
        return self.client.get(f'/runs/{run_hash}/objects', **params)['rows']

    def object_points(self, series_id: int, first_step: int | None = None,
                      last_step: int | None = None) -> list[tuple]:
        params = {k: v for k, v in (('first_step', first_step), ('last_step', last_step))
                  if v is not None}
        return [tuple(p) for p in self.client.get(f'/objects/{series_id}/points',
                                                  **params)['points']]

    @property
    def blobs(self) -> _RemoteBlobs:
        return _RemoteBlobs(self)

    def export_run(self, run_hash: str) -> dict:
        from aim.remote import protocol
        return protocol.unpack(self.client.call('GET', f'/runs/{run_hash}/export', raw=True))

    def import_run(self, doc: dict) -> None:
        from aim.remote import protocol
        status, _, data = self.client.request('POST', '/runs/import', protocol.pack(doc),
                                              content_type=protocol.PACK_MEDIA_TYPE)
        if status >= 400:
            raise self.client._error(status, data)

    def close(self) -> None:
        self.client.close()


# -- the live remote run ---------------------------------------------------------------------
class _LiveRunFile:
    def __init__(self, live: RemoteLiveRun):
        self._live = live

    def read_logs(self) -> list[tuple[int, float, str]]:
        if self._live.offline:
            return []
        return self._live.store.run_data(self._live.run_hash).read_logs()


class RemoteLiveRun:
    """A run open for writing through the spool: what ``Run`` asks of a live run
    (aim.storage.repository.LiveRun), with every change an operation in the stream."""
    remote = True

    def __init__(self, store: RemoteStore, run_hash: str, *,
                 initial_props: dict[str, Any], offline: bool, force_resume: bool = False,
                 experiment: str | None = None):
        from aim.remote.spool import (
            OpsLog,
            SpoolWriter,
            new_stream_id,
            spool_root,
            write_meta,
        )
        from aim.storage import locks
        if getattr(store, 'readonly', False):
            from aim.errors import RepositoryWriteError
            raise RepositoryWriteError(f'The repository at {store.root} was opened read-only; '
                                       f'runs can only be read. Open it with Repo(url) to '
                                       f'track.', store.root)
        self.store = store
        self.run_hash = run_hash
        self.offline = offline
        self._pid = os.getpid()
        existing: dict = {}
        existing_objects: dict = {}
        self.props: dict[str, Any] = {}
        self.params_text = '{}'
        if not offline:
            try:
                info = store.run_info(run_hash)
            except MissingRunError:
                info = None
            if info is not None:
                if info.get('active') and not force_resume:
                    raise RunLockedError(
                        f'Run {run_hash} is already open for writing (on the server at '
                        f'{store.url}). Close that Run first, or open this one with '
                        f'read_only=True.', run_hash)
                row = info['row']
                self.props = {k: row.get(k) for k in ('name', 'experiment', 'description',
                                                      'archived', 'creation_time')}
                self.props['tags'] = json.loads(row.get('tags') or '[]')
                self.params_text = row.get('params') or '{}'
                for s in store.index.series_rows(run_hash):
                    existing[(s['name'], s['context'])] = s['last_step']
                for s in store.object_series_rows(run_hash):
                    existing_objects[(s['name'], s['context'])] = (s['kind'], s['last_step'])
        new = not self.props
        if new:
            self.props.update(initial_props)
        elif experiment is not None:
            self.props['experiment'] = experiment
        self.props.update(end_time=None, updated_at=time.time())
        self.stream = new_stream_id()
        root = spool_root()
        self.stream_dir = os.path.join(root, self.stream)
        os.makedirs(self.stream_dir, mode=0o700)
        self._lock_path = os.path.join(self.stream_dir, 'lock')
        locks.try_acquire(self._lock_path)
        write_meta(self.stream_dir, {'url': store.url, 'run': run_hash, 'stream': self.stream,
                                     'created': time.time(), 'offline': offline,
                                     'pid': os.getpid()})
        self.ops = OpsLog(self.stream_dir)
        # the server creates the run from `props` if it does not have it (an offline run
        # cannot know), and otherwise only moves it to `experiment` when one was given
        self.ops.append({'op': 'open', 'props': initial_props, 'experiment': experiment})
        self.writer = SpoolWriter(run_hash, self.stream_dir, self.stream, store.spool_target(),
                                  self.ops, existing, offline=offline,
                                  existing_objects=existing_objects)
        self.runfile = self.data = _LiveRunFile(self)
        # a database the process writes directly (PostgreSQL): the run, its params and
        # props are stored at once, as a local repository does; points stay asynchronous
        self._sync_changes = getattr(store, 'sync_changes', False) and not offline
        self._sync()

    def _sync(self) -> None:
        if self._sync_changes:
            try:
                self.writer.flush()
            except Exception:   # kept in the spool; the sender retries
                pass

    def track(self, *args, **kwargs):
        return self.writer.track(*args, **kwargs)

    def add_log_lines(self, lines: list[tuple[float, str]]) -> None:
        if lines:
            self.ops.append({'op': 'logs', 'lines': [[t, line] for t, line in lines]})

    def set_props(self, props: dict[str, Any]) -> None:
        self.ops.append({'op': 'props', 'props': props})
        self.props.update(props)
        self._sync()

    def set_param(self, path: list[str] | None, value_text: str, params_text: str) -> None:
        """``run[path] = value`` (``path`` None: ``run[...] = tree``), as a change."""
        self.ops.append({'op': 'param', 'path': path, 'value': value_text})
        self.params_text = params_text
        self._sync()

    def del_param(self, path: list[str] | None, params_text: str) -> None:
        self.ops.append({'op': 'param_del', 'path': path})
        self.params_text = params_text
        self._sync()

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        from aim.remote.spool import remove_stream
        from aim.storage import locks
        if os.getpid() != self._pid:
            return
        end = time.time()
        try:
            self.ops.append({'op': 'close', 'end_time': end})
            self.props['end_time'] = end
            complete = self.writer.close()
        finally:
            locks.release(self._lock_path)
        if complete:
            remove_stream(self.stream_dir)
