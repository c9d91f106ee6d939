"""The ASGI application behind ``aim up``: JSON API under ``/api``, pages everywhere else.

Pages are thin views over the API (see docs/ui.md). Build one with :func:`create_app`.
"""
from __future__ import annotations

import inspect
import math
import time
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from aim.web import repo_summary, run_details
from aim.web.api_errors import ApiError, install_error_handlers, install_host_check
from aim.web.explore_api import explore_router
from aim.web.json_response import SafeJSONResponse
from aim.web.objects_api import objects_router
from aim.web.runs_table import RunsPageRequest, runs_page
from aim.web.security import SecurityMiddleware, new_token
from aim.web.series_export import export_csv, export_json_lines
from aim.web.series_payload import (
    BINARY_MEDIA_TYPE,
    FrameBodyCache,
    body_key,
    encode_binary,
    encode_json,
    header,
    runs_info,
)
from aim.web.series_source import ReducedCache, SeriesRequest, fetch_series
from aim.web.static_files import index_page, not_found_page, static_response
from aim.web.tags_api import tags_router
from aim.web.views_api import views_router

PAGE_ROUTES = ('/', '/runs', '/metrics', '/params', '/live', '/images', '/texts', '/audios',
               '/distributions', '/figures', '/experiments', '/compare', '/scatters', '/views')

# Limits of one request (each refusal is a 422 naming the limit; bodies over 1 MiB are
# refused with 413 before they are parsed, see aim.web.security).
MAX_NAME_LENGTH = 1000
MAX_DESCRIPTION_LENGTH = 100_000
MAX_NOTES_LENGTH = 200_000
MAX_TAGS = 100
MAX_TAG_LENGTH = 200
MAX_HASHES = 1000
MAX_HASH_LENGTH = 64
MAX_QUERY_LENGTH = 10_000
MAX_OFFSET = 2 ** 53  # an offset into a table or a log: far beyond any, within int64

Tag = Annotated[str, StringConstraints(max_length=MAX_TAG_LENGTH)]
RunHash = Annotated[str, StringConstraints(max_length=MAX_HASH_LENGTH)]


class RunEdit(BaseModel):
    name: str | None = Field(None, max_length=MAX_NAME_LENGTH)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    notes: str | None = Field(None, max_length=MAX_NOTES_LENGTH)
    archived: bool | None = None
    tags: list[Tag] | None = Field(None, max_length=MAX_TAGS)


class RunHashes(BaseModel):
    hashes: list[RunHash] = Field(max_length=MAX_HASHES)


class ArchiveRuns(BaseModel):
    hashes: list[RunHash] = Field(max_length=MAX_HASHES)
    archived: bool = True


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or '').split(',') if p.strip()]


def create_app(repo, *, read_only: bool = False,
               allowed_hosts: list[str] | None = None, queries=None,
               write_token: str | None = None, auth_token: str | None = None,
               artifact_roots: list[str] | None = None) -> FastAPI:
    """``repo`` is an :class:`aim.sdk.repo.Repo`; ``read_only`` refuses every edit;
    ``allowed_hosts`` (names without port) refuses requests whose Host header names
    anything else, which stops DNS-rebinding pages from reaching a loopback server;
    ``queries`` (an :class:`aim.web.query_pool.QueryWorkers`) evaluates the queries of
    requests in worker processes with a time limit (``aim up`` always gives one); without
    it they are evaluated in the request's thread. ``write_token`` is what edits must carry
    (a fresh one by default), ``auth_token`` what every request must carry (none by default;
    see :mod:`aim.web.security`). ``artifact_roots`` (file:// or s3:// URIs) are where the UI
    may fetch run artifacts from for download; none by default (see run_details.records)."""
    app = FastAPI(title='aimkit UI API', version='1',
                  description='The JSON API of `aim up`. Errors have the shape '
                              '{"error": {"type", "message", "detail"}}.',
                  default_response_class=SafeJSONResponse)
    app.state.repo = repo
    app.state.read_only = read_only
    app.state.queries = queries
    cache = ReducedCache()
    body_cache = FrameBodyCache()
    app.state.params_summary = repo_summary.ParamsSummary(repo)
    install_error_handlers(app)
    if allowed_hosts:
        install_host_check(app, allowed_hosts)
    write_token = write_token or new_token()
    app.add_middleware(SecurityMiddleware, write_token=write_token, auth_token=auth_token)

    def writable() -> None:
        if read_only:
            raise ApiError(403, 'ReadOnlyError', 'This UI was started with --read-only, so '
                           'runs cannot be changed. Restart `aim up` without --read-only to '
                           'edit or delete runs.')

    def series_request(q, runs, names, x_axis, width, x_min, x_max, since, full, max_series,
                       smoothing=0.0, smoothing_kind='ema', window=0):
        for name, value in (('x_min', x_min), ('x_max', x_max), ('since', since)):
            if value is not None and not math.isfinite(value):
                raise ApiError(422, 'InvalidRequest', f'{name} must be a finite number, got '
                               f'{value!r}; leave it out for an open range.')
        return SeriesRequest(query=q or '', runs=_split(runs), names=_split(names),
                             x_axis=x_axis, width=width, x_min=x_min, x_max=x_max,
                             since=since, full=full, max_series=max_series,
                             smoothing=smoothing, smoothing_kind=smoothing_kind,
                             window=window)

    # --- server ----------------------------------------------------------------------
    @app.get('/api/status', tags=['server'])
    def status():
        return {'read_only': read_only, 'repo': str(getattr(repo, 'path', '')),
                'total_runs': repo.index.query('SELECT COUNT(*) FROM runs')[0][0],
                'write_token': write_token}

    # --- runs ------------------------------------------------------------------------
    @app.get('/api/runs', tags=['runs'])
    def search_runs(q: str = Query('', max_length=MAX_QUERY_LENGTH,
                                   description='run query, e.g. run.hparams.lr < 0.01'),
                    offset: int = Query(0, ge=0, le=MAX_OFFSET),
                    limit: int = Query(50, ge=1, le=1000),
                    sort: str = Query('-creation_time', description='prop, params.<path> or '
                                      'metric:<name>; "-" prefix for descending'),
                    params: str = Query('', description='comma-separated param paths, or *'),
                    metrics: str = Query('', description='metric names whose last value to '
                                         'include, or *'),
                    archived: bool = Query(False, description='true: archived runs '
                                           'too, whatever the query; false: left out '
                                           'unless the query mentions run.archived')):
        return runs_page(repo, RunsPageRequest(q, offset, limit, sort, _split(params),
                                               _split(metrics), archived), queries)

    @app.get('/api/runs/active', tags=['runs'])
    def active_runs():
        hashes = list(repo.list_active_runs())
        info = runs_info(repo, hashes)
        return {'runs': [dict(info[h], active=True) for h in hashes if h in info]}

    @app.get('/api/runs/{run_hash}', tags=['runs'])
    def get_run(run_hash: str):
        return run_details.run_info(repo, run_hash)

    @app.get('/api/runs/{run_hash}/logs', tags=['runs'])
    def get_logs(run_hash: str, since_line: int = Query(0, ge=0, le=MAX_OFFSET)):
        return run_details.terminal_logs(repo, run_hash, since_line)

    @app.get('/api/runs/{run_hash}/records', tags=['runs'])
    def get_records(run_hash: str):
        return run_details.records(repo, run_hash, artifact_roots or [])

    @app.get('/api/runs/{run_hash}/artifacts/{name:path}', tags=['runs'])
    def get_artifact(run_hash: str, name: str):
        from fastapi.responses import Response
        data, filename = run_details.artifact_bytes(repo, run_hash, name, artifact_roots or [])
        from urllib.parse import quote
        plain = filename.encode('ascii', 'replace').decode().replace('\\', '_') \
            .replace('"', '_')
        return Response(data, media_type='application/octet-stream', headers={
            'Content-Disposition': f"attachment; filename=\"{plain}\"; "
                                   f"filename*=UTF-8''{quote(filename)}",
            'X-Content-Type-Options': 'nosniff'})

    @app.get('/api/runs/{run_hash}/notes', tags=['runs'])
    def get_notes(run_hash: str):
        return run_details.run_notes(repo, run_hash)

    @app.patch('/api/runs/{run_hash}', tags=['edits'])
    def patch_run(run_hash: str, edit: RunEdit):
        writable()
        return run_details.edit_run(repo, run_hash, edit.model_dump())

    @app.delete('/api/runs/{run_hash}', tags=['edits'])
    def delete_run(run_hash: str):
        writable()
        return run_details.delete_runs(repo, [run_hash])

    @app.post('/api/runs/delete', tags=['edits'])
    def delete_many(body: RunHashes):
        writable()
        return run_details.delete_runs(repo, body.hashes)

    @app.post('/api/runs/archive', tags=['edits'])
    def archive_many(body: ArchiveRuns):
        writable()
        for h in body.hashes:
            run_details.edit_run(repo, h, {'archived': body.archived})
        return {'archived': body.archived, 'hashes': body.hashes}

    # --- repository facts ------------------------------------------------------------

    @app.get('/api/params', tags=['repository'])
    def params():
        return app.state.params_summary.get()

    @app.get('/api/metric-names', tags=['repository'])
    def metric_names():
        return repo_summary.metric_names(repo)

    @app.get('/api/experiments', tags=['repository'])
    def experiments():
        return repo_summary.experiments(repo)

    # --- series ----------------------------------------------------------------------
    @app.get('/api/series', tags=['series'],
             responses={200: {'content': {BINARY_MEDIA_TYPE: {}, 'application/json': {}}}})
    def series(q: str = Query('', max_length=MAX_QUERY_LENGTH,
                              description='metric query, e.g. metric.name == "loss"'),
               runs: str = Query('', description='comma-separated run hashes (instead of q)'),
               names: str = Query('', description='only these metric names'),
               x_axis: str = Query('step', max_length=300,
                                   description='step, epoch, relative_time, wall_time, or '
                                   'metric:<name> (the value of the run\'s metric <name> at '
                                   'the same step)'),
               width: int = Query(1000, ge=1, le=20000, description='buckets; each keeps '
                                  'first, last, min and max (M4). Long evenly spaced series '
                                  'may come back in whole stored blocks: between width/2 '
                                  'and width buckets, each exact'),
               x_min: float | None = Query(None, description='visible range start'),
               x_max: float | None = Query(None, description='visible range end'),
               since: float | None = Query(None, description='only points written after '
                                              'this wall time (the last answer\'s "until")'),
               full: bool = Query(False, description='no downsampling'),
               max_series: int = Query(1000, ge=1, le=20000),
               smoothing: float = Query(0.0, ge=0.0, le=0.999, description='EMA factor, '
                                        'applied to every point before downsampling'),
               smoothing_kind: str = Query('ema', description='ema (factor: smoothing) or '
                                           'cma (centred moving average over window points)'),
               window: int = Query(0, ge=0, le=100_001, description='cma window in points'),
               format: str = Query('json', description='json or binary'),
               precision: str = Query('f64', description='binary only: f64, or f32 for '
                                      'overview charts (half the bytes)')):
        req = series_request(q, runs, names, x_axis, width, x_min, x_max, since, full,
                             max_series, smoothing, smoothing_kind, window)
        if precision not in ('f64', 'f32'):
            raise ApiError(400, 'InvalidPrecision', f'Unknown precision {precision!r}; use '
                           f'f64 or f32.')
        if format not in ('json', 'binary'):
            raise ApiError(400, 'InvalidFormat', f'Unknown format {format!r}; use json or '
                           f'binary.')
        if format == 'binary':
            req.precision = precision
        started = time.perf_counter()
        cached = {}

        def answered(fetch_key):  # an identical earlier answer, encoded: skip reducing
            if format != 'binary':
                return None
            cached['item'] = body_cache.get(body_key(fetch_key, precision, req.x_axis))
            return cached['item'][0] if cached['item'] else None

        fetched = fetch_series(repo, req, cache, answered, queries)
        fetched_at = time.perf_counter()
        head = header(repo, fetched, req.x_axis)
        headed_at = time.perf_counter()
        if format == 'binary':
            item = cached.get('item')
            chunks = encode_binary(head, fetched['series'], precision,
                                   item[1] if item else None)
            key = body_key(fetched['body_key'], precision, req.x_axis)
            if item is None and key is not None:
                body_cache.put(key, [s['n'] for s in head['series']], chunks[1])
            length = sum(len(c) for c in chunks)
            # where the server's time went, for the browser's network panel
            timing = (f'fetch;dur={(fetched_at - started) * 1e3:.1f}, '
                      f'header;dur={(headed_at - fetched_at) * 1e3:.1f}, '
                      f'encode;dur={(time.perf_counter() - headed_at) * 1e3:.1f}')
            return StreamingResponse(iter(chunks), media_type=BINARY_MEDIA_TYPE,
                                     headers={'Content-Length': str(length),
                                              'Server-Timing': timing})
        return encode_json(head, fetched['series'])

    @app.get('/api/series/export', tags=['series'])
    def export(q: str = Query('', max_length=MAX_QUERY_LENGTH), runs: str = Query(''),
               names: str = Query(''),
               format: str = Query('csv', description='csv or jsonl'),
               max_series: int = Query(20000, ge=1, le=20000)):
        req = SeriesRequest(query=q, runs=_split(runs), names=_split(names),
                            max_series=max_series)
        req.check()
        if format == 'csv':
            return StreamingResponse(export_csv(repo, req, queries), media_type='text/csv',
                                     headers={'Content-Disposition':
                                              'attachment; filename="series.csv"'})
        if format in ('json', 'jsonl'):
            return StreamingResponse(export_json_lines(repo, req, queries),
                                     media_type='application/x-ndjson',
                                     headers={'Content-Disposition':
                                              'attachment; filename="series.jsonl"'})
        raise ApiError(400, 'InvalidFormat', f'Unknown export format {format!r}; use csv or '
                       f'jsonl.')

    app.include_router(objects_router(repo, queries))  # images, texts, audio, ... (+ blobs)
    app.include_router(tags_router(repo, writable))  # tags: colours, rename, remove
    app.include_router(explore_router(repo))  # experiments summary, run comparison
    app.include_router(views_router(repo, read_only, PAGE_ROUTES))  # saved views

    # --- pages -----------------------------------------------------------------------
    @app.get('/static/{path:path}', include_in_schema=False)
    def static(path: str):
        return static_response(path)

    def page():
        return index_page(write_token)

    for route in PAGE_ROUTES:
        app.add_api_route(route, page, include_in_schema=False, methods=['GET'])
    app.add_api_route('/runs/{run_hash}', lambda run_hash: page(),
                      include_in_schema=False, methods=['GET'])

    # A browser asking for a path that is no page gets the UI's "page not found" page;
    # the API (and every non-GET request) keeps its JSON 404.
    json_http_error = app.exception_handlers[StarletteHTTPException]

    async def not_found(request: Request, exc: Exception):
        path = request.url.path
        if request.method in ('GET', 'HEAD') and not path.startswith('/api/') and path != '/api':
            return not_found_page(path, write_token)
        answer = json_http_error(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(404, not_found)
    return app
