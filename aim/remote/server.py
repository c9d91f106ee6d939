"""The tracking API of ``aim server``: spool batches in, the SDK's reads out.

Every route lives under ``/api/remote/v1`` (docs/remote.md lists them). The server keeps
no state of its own between requests: what it knows is in the repository, so several
worker processes (and, on PostgreSQL, several machines) serve one repository. Errors the
repository raises on purpose answer with ``{"detail", "error": <class name>}`` so that the
client raises the same class (aim/remote/client.py).
"""
from __future__ import annotations

import os
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from aim.remote.protocol import PROTOCOL_VERSION

__all__ = ['API_PREFIX', 'PROTOCOL_VERSION', 'create_app']
API_PREFIX = '/api/remote/v1'
MAX_BATCH_BYTES = 512 << 20
MAX_IMPORT_BYTES = 4 << 30
QUERY_BUDGET_S = float(os.environ.get('AIM_SERVER_QUERY_BUDGET_S') or 60.0)


def create_app(repo_root: str, *, tokens: dict[str, str] | None = None):
    """The tracking API over the repository at ``repo_root`` (which must exist). ``tokens``
    is accepted for symmetry with :func:`aim.remote.serve.build_app`, which wraps the whole
    server in bearer authentication; this app does not check tokens itself."""
    from aim.errors import AimError, MissingRunError, RunLockedError
    from aim.remote import protocol
    from aim.remote.ingest import BatchRefused, apply_batch, stream_mark
    from aim.sdk.repo import Repo

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    holder: dict[int, Any] = {}
    holder_lock = threading.Lock()

    def repo() -> Repo:
        # opened in the serving process (a worker forked by uvicorn gets its own)
        with holder_lock:
            r = holder.get(os.getpid())
            if r is None:
                r = holder[os.getpid()] = Repo(repo_root)
            return r

    def store():
        return repo()._store

    @app.exception_handler(AimError)
    async def aim_error(request, exc: AimError):
        from aim.errors import InputError, QueryError, RepositoryError
        if isinstance(exc, MissingRunError):
            status = 404
        elif isinstance(exc, RunLockedError):
            status = 409
        elif isinstance(exc, (InputError, QueryError)):
            status = 400
        elif isinstance(exc, RepositoryError):
            status = 500
        else:
            status = 400
        body: dict[str, Any] = {'detail': str(exc), 'error': type(exc).__name__}
        for attr in ('run_hash', 'position', 'hint', 'query'):
            value = getattr(exc, attr, None)
            if value is not None:
                body[attr] = value
        return JSONResponse(body, status_code=status)

    @app.exception_handler(protocol.BatchError)
    async def batch_error(request, exc: protocol.BatchError):
        return JSONResponse({'detail': f'bad batch: {exc}', 'error': 'BatchRefused'},
                            status_code=400)

    @app.get(API_PREFIX + '/hello')
    def hello():
        from aim import __version__
        return {'server': 'aimkit', 'version': __version__, 'protocol': PROTOCOL_VERSION}

    # -- writes --------------------------------------------------------------------------
    async def read_body(request: Request, limit: int) -> bytes:
        length = request.headers.get('content-length')
        if length is not None and length.isdigit() and int(length) > limit:
            raise BatchRefused(f'the body is {int(length):,} bytes; at most {limit:,} allowed')
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BatchRefused(f'the body is over {limit:,} bytes')
            chunks.append(chunk)
        return b''.join(chunks)

    @app.post(API_PREFIX + '/streams/{stream}/batch')
    async def batch(stream: str, request: Request):
        from starlette.concurrency import run_in_threadpool
        body = await read_body(request, MAX_BATCH_BYTES)
        header, records = protocol.decode(body)
        if header.get('stream') != stream:
            raise BatchRefused(f'the batch is of stream {header.get("stream")!r:.80}, posted '
                               f'to {stream!r:.80}')
        writer = (request.scope.get('state') or {}).get('aim_token_name')
        mark = await run_in_threadpool(apply_batch, store(), header, records, writer=writer)
        return dict(mark)

    @app.get(API_PREFIX + '/streams/{stream}')
    def mark(stream: str):
        return dict(stream_mark(store().db, stream))

    # -- runs ----------------------------------------------------------------------------
    @app.get(API_PREFIX + '/runs')
    def runs(active: bool = False):
        s = store()
        return {'hashes': s.active_run_hashes() + _live_remote(s) if active
                else s.list_run_hashes()}

    @app.get(API_PREFIX + '/count')
    def count():
        return {'runs': repo().total_runs_count()}

    @app.get(API_PREFIX + '/runs/{run_hash}')
    def run_info(run_hash: str):
        s = store()
        row = s.index.run_row(run_hash)
        if row is None:
            if not s.run_exists(run_hash):
                raise MissingRunError(f'Cannot find run {run_hash!r} in the repository of '
                                      f'this server.', run_hash)
            row = s.index_row_from_data(run_hash)
        return {'row': row, 'active': s.is_active(run_hash)}

    @app.post(API_PREFIX + '/runs/{run_hash}/props')
    def set_props(run_hash: str, spec: dict):
        """Props of a run at rest (``Repo('aim://...').get_run(h).archived = True``):
        refused while a writer holds the run, as for a local repository."""
        props = _props_at_rest(spec)
        s = store()
        if not s.run_exists(run_hash):
            raise MissingRunError(f'Cannot find run {run_hash!r} in the repository of this '
                                  f'server.', run_hash)
        busy = RunLockedError(
            f'Run {run_hash} is open for writing (a client tracks it through this server, or '
            f'a process on the server machine writes it); change its props through that Run, '
            f'or once it has ended.', run_hash)
        if s.is_active(run_hash):
            raise busy
        try:
            current, changes = s.set_props_at_rest(run_hash, props)
        except RunLockedError:
            raise busy from None     # the holder's pid is of the server machine
        return {'props': current, 'changes': changes}

    @app.get(API_PREFIX + '/runs/{run_hash}/stored-props')
    def stored_props(run_hash: str):
        s = store()
        if not s.run_exists(run_hash):
            raise MissingRunError(f'Cannot find run {run_hash!r} in the repository of '
                                  f'this server.', run_hash)
        return {'props': s.run_data(run_hash).get_props()}

    @app.get(API_PREFIX + '/runs/{run_hash}/params')
    def params_text(run_hash: str):
        return {'text': store().run_data(run_hash).get_params_text()}

    @app.get(API_PREFIX + '/runs/{run_hash}/series')
    def series_rows(run_hash: str, name: str | None = None, context: str | None = None):
        s = store()
        if name is not None:
            return {'row': s.index.series_row(run_hash, name, context or '{}')}
        return {'rows': s.index.series_rows(run_hash)}

    @app.post(API_PREFIX + '/runs/{run_hash}/series/read')
    def series_read(run_hash: str, spec: dict):
        from aim.storage.runfile import _blob_columns, _step_range_sql
        name, context = spec.get('name'), spec.get('context', '{}')
        first, last = spec.get('first_step'), spec.get('last_step')
        columns = spec.get('columns')
        if not isinstance(name, str) or not isinstance(context, str) or any(
                x is not None and type(x) is not int for x in (first, last)) or (
                columns is not None and not (isinstance(columns, list) and set(columns) <= {
                    'steps', 'values', 'epochs', 'times'})):
            raise BatchRefused('series/read takes name, context, first_step, last_step and '
                               'columns (steps, values, epochs, times)')
        wanted = set(columns) if columns is not None else {'values', 'epochs', 'times'}
        in_range, params = _step_range_sql('c.', first, last)
        rows = store().db.query(
            f'SELECT c.seq, c.n, c.steps, {_blob_columns(wanted, "c.")} FROM series s '
            'JOIN chunks c ON c.series_id = s.id '
            f'WHERE s.run_hash=? AND s.name=? AND s.context=?{in_range} ORDER BY c.seq',
            [run_hash, name, context] + params)
        return Response(protocol.pack([list(r) for r in rows]),
                        media_type=protocol.PACK_MEDIA_TYPE)

    # -- rich objects --------------------------------------------------------------------
    @app.get(API_PREFIX + '/runs/{run_hash}/objects')
    def object_series(run_hash: str, kind: str | None = None):
        from aim.storage.objects import list_series
        return {'rows': list_series(store().db, run_hash, kind)}

    @app.get(API_PREFIX + '/objects/{series_id}/points')
    def object_points(series_id: int, first_step: int | None = None,
                      last_step: int | None = None):
        from aim.storage.objects import read_points
        return {'points': [list(p) for p in read_points(store().db, series_id, first_step,
                                                         last_step, as_tracked=True)]}

    @app.get(API_PREFIX + '/blobs/{digest}')
    def blob(digest: str):
        return Response(store().blobs.get(digest), media_type='application/octet-stream')

    @app.post(API_PREFIX + '/query/objects')
    def query_objects(spec: dict):
        from aim.sdk.collections import QueryObjectCollection
        sequence = spec.get('sequence')
        if sequence not in ('images', 'texts', 'distributions', 'audios', 'figures'):
            raise BatchRefused('sequence must be images, texts, distributions, audios or '
                               'figures')
        coll = QueryObjectCollection(repo(), sequence, _query_text(spec),
                                     cpu_budget_s=QUERY_BUDGET_S)
        return {'items': [[list(item._view.row), seq._row] for item, seq in coll._pairs()]}

    @app.get(API_PREFIX + '/runs/{run_hash}/logs')
    def logs(run_hash: str):
        return {'lines': [list(r) for r in store().run_data(run_hash).read_logs()]}

    @app.delete(API_PREFIX + '/runs/{run_hash}')
    def delete(run_hash: str):
        return {'deleted': store().delete_run(run_hash)}

    @app.get(API_PREFIX + '/runs/{run_hash}/export')
    def export(run_hash: str):
        from aim.remote.dump import export_run
        return Response(protocol.pack(export_run(store(), run_hash)),
                        media_type=protocol.PACK_MEDIA_TYPE)

    @app.post(API_PREFIX + '/runs/import')
    async def import_(request: Request):
        from starlette.concurrency import run_in_threadpool

        from aim.remote.dump import import_run
        doc = protocol.unpack(await read_body(request, MAX_IMPORT_BYTES))
        if not isinstance(doc, dict):
            raise BatchRefused('a run document is a JSON object')
        await run_in_threadpool(import_run, store(), doc)
        return {'imported': doc.get('hash')}

    # -- queries -------------------------------------------------------------------------
    @app.post(API_PREFIX + '/query/runs')
    def query_runs(spec: dict):
        from aim.sdk.collections import QueryRunCollection
        query = _query_text(spec)
        coll = QueryRunCollection(repo(), query, cpu_budget_s=QUERY_BUDGET_S,
                                  offset=spec.get('offset'))
        return {'rows': [list(view.row) for view in coll._views()]}

    @app.post(API_PREFIX + '/query/metrics')
    def query_metrics(spec: dict):
        from aim.sdk.collections import QueryTraceCollection, _source
        r = repo()
        coll = QueryTraceCollection(r, _query_text(spec), cpu_budget_s=QUERY_BUDGET_S)
        from aim.sdk.collections import _flush_live_runs
        _flush_live_runs(r)
        r._store.recover_dead_runs()
        out = []
        for view in coll._compiled.iter_traces(_source(r)):
            out.append([list(view.run.row), list(view.row), view.context])
        return {'items': out}

    @app.get(API_PREFIX + '/collect/metrics')
    def collect_metrics():
        return repo().collect_metrics()

    @app.get(API_PREFIX + '/collect/params')
    def collect_params():
        return repo().collect_params()

    return app


def _query_text(spec: dict) -> str:
    from aim.remote.ingest import BatchRefused
    query = spec.get('query', '')
    if not isinstance(query, str) or len(query) > 100_000:
        raise BatchRefused('query must be a string of at most 100,000 characters')
    return query


def _props_at_rest(spec: Any) -> dict[str, Any]:
    """The props of a ``POST /runs/{hash}/props`` body ``{"props": {...}}``: those a client
    may set (``CLIENT_PROPS``), checked as in a batch; any other key is refused rather than
    dropped, so that the caller does not believe it stored."""
    from aim.remote.ingest import CLIENT_PROPS, BatchRefused, _clean_props
    props = spec.get('props') if isinstance(spec, dict) else None
    if not isinstance(props, dict) or not props:
        raise BatchRefused('the body is {"props": {...}} with at least one prop')
    unknown = sorted(str(k) for k in props if k not in CLIENT_PROPS)
    if unknown:
        raise BatchRefused(f'props {", ".join(unknown)[:200]} cannot be changed through the '
                           f'server; it changes {", ".join(CLIENT_PROPS)}')
    return _clean_props(props)


def _live_remote(store) -> list[str]:
    from aim.remote.ingest import live_stream_runs
    return sorted(live_stream_runs(store.db) - set(store.active_run_hashes()))
