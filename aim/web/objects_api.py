"""The JSON API of the rich-object pages: images, texts, audio, distributions, figures.

- ``GET /api/objects/{kind}?q=`` the series of one kind matching a query (``images.name ==
  'samples' and run.hparams.lr > 0.01``), with their runs' props and flattened params;
- ``GET /api/objects/{kind}/points?ids=&step=`` the objects of those series at one step
  (the newest at or before ``step``; the last step without it), or every step with
  ``all=true``;
- ``GET /api/runs/{hash}/objects`` the object series of one run, by kind (the run page);
- ``GET /api/blobs/{digest}?thumb=160`` an object's bytes (image, audio, figure JSON). Blobs
  are content-addressed, so answers are cached for good (``immutable``, ETag = digest);
  ``thumb`` answers a server-made thumbnail (Pillow), kept in a small in-memory LRU.

Everything reads through :mod:`aim.storage.objects`, which works on SQLite and PostgreSQL.
"""
from __future__ import annotations

import bisect
import io
import json
import re
import threading
import time
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from aim.web.api_errors import ApiError
from aim.web.series_payload import runs_info

# page name -> (stored kind, Repo query method)
KINDS: dict[str, tuple[str, str]] = {
    'images': ('image', 'query_images'),
    'texts': ('text', 'query_texts'),
    'audios': ('audio', 'query_audios'),
    'distributions': ('distribution', 'query_distributions'),
    'figures': ('figure', 'query_figure_objects'),
}
PAGE_OF_KIND = {kind: page for page, (kind, _) in KINDS.items()}
MAX_QUERY_LENGTH = 10_000
MAX_IDS = 2000
MAX_POINTS = 20_000          # points of one all=true answer
THUMB_SIZES = (16, 2048)     # the smallest and largest thumbnail edge served
THUMB_PASS_BYTES = 16 << 10  # an image this small is sent as it is: a thumbnail saves nothing
IMMUTABLE = 'public, max-age=31536000, immutable'
_DIGEST = re.compile(r'^[0-9a-f]{64}$')
INT64 = (-2 ** 63, 2 ** 63 - 1)   # steps and ids: what the database holds


# --- reading ------------------------------------------------------------------------------
def _objects_module():
    from aim.storage import objects
    return objects


def _db(repo):
    store = repo._store
    db = getattr(store, 'db', None)
    if db is None:
        raise ApiError(501, 'NotSupported', 'Tracked objects are not served for this kind of '
                       'repository (a remote tracking server); open the repository itself '
                       'with `aim up --repo`.')
    return db


def _page_kind(kind: str) -> tuple[str, str]:
    if kind not in KINDS:
        raise ApiError(404, 'UnknownObjectKind', f'No object kind {kind!r}; use one of '
                       f'{", ".join(KINDS)}.')
    return KINDS[kind]


def series_item(row: dict) -> dict:
    """One series row as the pages see it (context decoded)."""
    context = row.get('context')
    if isinstance(context, str):
        try:
            context = json.loads(context) if context else {}
        except ValueError:
            context = {}
    return {'id': row['id'], 'run': row['run_hash'], 'name': row['name'],
            'context': context or {}, 'kind': row.get('kind'),
            'count': row.get('count'), 'first_step': row.get('first_step'),
            'last_step': row.get('last_step'), 'last_time': row.get('last_time')}


def matching_rows(repo, kind: str, query: str, limit: int,
                  timeout_s: float | None = None) -> tuple[list[dict], bool]:
    """The first ``limit`` series rows of ``kind`` matching ``query``, and whether more
    match. Without a query the index lists them directly; with one, the SDK's query
    evaluates it (inside the query language's time limit)."""
    stored_kind, method = _page_kind(kind)
    if not query.strip():
        db = _db(repo)
        # archived runs left out, as by any query that does not mention run.archived
        archived = {r[0] for r in db.query('SELECT hash FROM runs WHERE archived = 1')}
        rows = [r for r in _objects_module().list_series(db, kind=stored_kind)
                if r['run_hash'] not in archived]
        return rows[:limit], len(rows) > limit
    from aim.errors import QueryError
    from aim.ql.budget import CancelScope
    from aim.web.query_worker import timeout_error
    rows = []
    more = False
    scope = CancelScope(wall_s=timeout_s)
    try:
        with scope:
            for seq in getattr(repo, method)(query):
                if len(rows) >= limit:
                    more = True
                    break
                rows.append(dict(seq._row))
    except QueryError:
        if timeout_s is not None and scope.deadline is not None \
                and time.monotonic() >= scope.deadline:  # the server's limit, as the pool says
            err = timeout_error(timeout_s, query)
            raise ApiError(err['status'], err['type'], err['message'],
                           **err['detail']) from None
        raise
    return rows, more


def _point(series_id: int, point) -> dict:
    step, epoch, wall, objects = point
    return {'id': series_id, 'step': step, 'epoch': epoch, 'time': wall,
            'objects': objects}


class PointsCache:
    """Decoded points of whole short series, keyed by the series' index summary (id, count,
    last step, last write), so moving the step slider back and forth decodes nothing again
    and a series that grew is read afresh. Least recently used dropped past ``max_points``."""

    def __init__(self, max_points: int = 200_000, max_series_points: int = 5000):
        self.max_points = max_points
        self.max_series_points = max_series_points
        self._items: OrderedDict[tuple, list] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def points(self, db, row: dict) -> list | None:
        """All points of ``row``'s series, or None for a series too long to keep whole."""
        if (row.get('count') or 0) > self.max_series_points:
            return None
        key = (row['id'], row.get('count'), row.get('last_step'), row.get('last_time'))
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        found = _objects_module().read_points(db, row['id'])
        with self._lock:
            if key not in self._items:
                self._items[key] = found
                self._size += len(found)
            while self._size > self.max_points and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)
        return found


def _newest_at(points: list, step: int):
    """The point at ``step`` or the newest before it; the first one if all come after."""
    i = bisect.bisect_right([p[0] for p in points], step)
    return points[i - 1] if i else points[0]


def points_at(repo, kind: str, ids: list[int], step: int | None,
              cache: PointsCache | None = None) -> list[dict]:
    """Per series, the point at ``step`` or the newest before it (the last point when
    ``step`` is None; the first point when the series starts after ``step``)."""
    objects = _objects_module()
    db = _db(repo)
    stored_kind = _page_kind(kind)[0]
    rows = {r['id']: r for r in objects.list_series(db, kind=stored_kind)} if ids else {}
    out = []
    for sid in ids:
        row = rows.get(sid)
        if row is None or not row.get('count'):
            continue
        whole = cache.points(db, row) if cache is not None else None
        if whole:
            out.append(_point(sid, _newest_at(whole, row['last_step'] if step is None
                                              else step)))
            continue
        last = row['last_step']
        want = last if step is None or step > last else max(step, row['first_step'])
        found = objects.read_points(db, sid, want, want)
        if not found:  # no point at exactly that step: the newest before it
            found = objects.read_points(db, sid, None, want)[-1:]
        if found:
            out.append(_point(sid, found[-1]))
    return out


def points_range(repo, ids: list[int], first_step: int | None, last_step: int | None,
                 limit: int = MAX_POINTS) -> tuple[list[dict], bool]:
    objects = _objects_module()
    db = _db(repo)
    out: list[dict] = []
    for sid in ids:
        for point in objects.read_points(db, sid, first_step, last_step):
            if len(out) >= limit:
                return out, True
            out.append(_point(sid, point))
    return out, False


# --- blobs and thumbnails -----------------------------------------------------------------
def sniff_type(data: bytes) -> str:
    """The content type of a blob from its first bytes. Only types a browser shows inert
    are named (never HTML or SVG): anything else is served as a download."""
    head = data[:16]
    if head.startswith(b'\x89PNG\r\n\x1a\n'):
        return 'image/png'
    if head.startswith(b'\xff\xd8\xff'):
        return 'image/jpeg'
    if head.startswith((b'GIF87a', b'GIF89a')):
        return 'image/gif'
    if head.startswith(b'RIFF') and head[8:12] == b'WEBP':
        return 'image/webp'
    if head.startswith(b'RIFF') and head[8:12] == b'WAVE':
        return 'audio/wav'
    if head.startswith(b'BM'):
        return 'image/bmp'
    if head.startswith(b'fLaC'):
        return 'audio/flac'
    if head.startswith(b'OggS'):
        return 'audio/ogg'
    if head.startswith(b'ID3') or head[:2] in (b'\xff\xfb', b'\xff\xf3', b'\xff\xf2'):
        return 'audio/mpeg'
    if data[:64].lstrip()[:1] in (b'{', b'['):
        return 'application/json'
    return 'application/octet-stream'


class ThumbnailCache:
    """Thumbnails by (digest, edge), least recently used dropped past ``max_bytes``."""

    def __init__(self, max_bytes: int = 32 << 20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int], tuple[bytes, str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple[str, int], item: tuple[bytes, str]) -> None:
        if len(item[0]) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old[0])
            self._items[key] = item
            self._bytes += len(item[0])
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped[0])

    def __len__(self) -> int:
        return len(self._items)


def make_thumbnail(data: bytes, edge: int) -> tuple[bytes, str]:
    """``data`` (an image in any format Pillow reads) shrunk to fit ``edge`` × ``edge``,
    as WEBP (PNG where Pillow lacks WEBP). An image already that small, or of at most
    THUMB_PASS_BYTES, in a format every browser shows, is returned as it is."""
    from PIL import Image, features
    kind = sniff_type(data)
    if len(data) <= THUMB_PASS_BYTES and kind in ('image/png', 'image/jpeg', 'image/gif',
                                                  'image/webp'):
        return data, kind
    with Image.open(io.BytesIO(data)) as opened:
        image: Image.Image = opened
        if max(image.size) <= edge and kind in ('image/png', 'image/jpeg', 'image/gif',
                                                'image/webp'):
            return data, kind
        image.draft('RGB', (edge, edge))  # JPEG: decode at a reduced scale
        if image.mode not in ('RGB', 'RGBA'):
            has_alpha = image.mode in ('LA', 'PA', 'RGBa', 'La') or \
                (image.mode == 'P' and 'transparency' in image.info)
            image = image.convert('RGBA' if has_alpha else 'RGB')
        image.thumbnail((edge, edge))
        out = io.BytesIO()
        if features.check('webp'):
            image.save(out, 'WEBP', quality=80, method=0)
            return out.getvalue(), 'image/webp'
        image.save(out, 'PNG', compress_level=1)
        return out.getvalue(), 'image/png'


def _blob_response(request: Request, body: bytes, media_type: str, etag: str) -> Response:
    headers = {'Cache-Control': IMMUTABLE, 'ETag': etag}
    if request.headers.get('if-none-match') in (etag, f'W/{etag}'):
        return Response(status_code=304, headers=headers)
    if media_type == 'application/octet-stream':
        headers['Content-Disposition'] = 'attachment'
    return Response(body, media_type=media_type, headers=headers)


# --- the router ---------------------------------------------------------------------------
def _ids(text: str) -> list[int]:
    out = []
    for part in text.split(','):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise ApiError(422, 'InvalidRequest', f'ids must be comma-separated series ids '
                           f'(integers), got {part[:40]!r}.') from None
    if any(not INT64[0] <= i <= INT64[1] for i in out):
        raise ApiError(422, 'InvalidRequest', 'A series id is out of range (64-bit integers).')
    if len(out) > MAX_IDS:
        raise ApiError(422, 'InvalidRequest', f'At most {MAX_IDS} series a request, got '
                       f'{len(out)}; ask in batches.')
    return list(dict.fromkeys(out))


def objects_router(repo, queries=None) -> APIRouter:
    """The endpoints above for ``repo``; ``queries`` (the server's query pool) lends its
    time limit to object queries."""
    router = APIRouter()
    thumbs = ThumbnailCache()
    decoded = PointsCache()
    threading.Thread(target=_warm_imports, name='aim-objects-warm', daemon=True).start()
    timeout_s = getattr(queries, 'timeout_s', None)

    @router.get('/api/objects/{kind}', tags=['objects'])
    def object_series(kind: str,
                      q: str = Query('', max_length=MAX_QUERY_LENGTH,
                                     description="e.g. images.name == 'samples' and "
                                                 "run.hparams.lr > 0.01"),
                      max_series: int = Query(1000, ge=1, le=MAX_IDS),
                      newest: bool = Query(False, description='also the objects of every '
                                           'series at its last step (saves the first '
                                           'points request)')):
        started = time.perf_counter()
        rows, more = matching_rows(repo, kind, q, max_series, timeout_s)
        series = [series_item(r) for r in rows]
        hashes = list(dict.fromkeys(s['run'] for s in series))
        answer = {'kind': kind, 'truncated': more, 'series': series,
                  'runs': runs_info(repo, hashes)}
        if newest:
            answer['points'] = points_at(repo, kind, [s['id'] for s in series], None, decoded)
        answer['took_ms'] = round((time.perf_counter() - started) * 1e3, 1)
        return answer

    @router.get('/api/objects/{kind}/points', tags=['objects'])
    def object_points(kind: str,
                      ids: str = Query(..., description='comma-separated series ids'),
                      step: int | None = Query(None, ge=INT64[0], le=INT64[1],
                                               description='the step shown (the newest at '
                                               'or before it); none: the last'),
                      all: bool = Query(False, description='every point between '
                                        'first_step and last_step'),
                      first_step: int | None = Query(None, ge=INT64[0], le=INT64[1]),
                      last_step: int | None = Query(None, ge=INT64[0], le=INT64[1]),
                      max_points: int = Query(MAX_POINTS, ge=1, le=MAX_POINTS)):
        _page_kind(kind)
        wanted = _ids(ids)
        if all:
            points, more = points_range(repo, wanted, first_step, last_step, max_points)
            return {'kind': kind, 'points': points, 'truncated': more}
        return {'kind': kind, 'points': points_at(repo, kind, wanted, step, decoded),
                'truncated': False}

    @router.get('/api/runs/{run_hash}/objects', tags=['objects'])
    def run_objects(run_hash: str):
        rows = _objects_module().list_series(_db(repo), run_hash=run_hash)
        by_kind: dict[str, list[dict]] = {}
        for row in rows:
            page = PAGE_OF_KIND.get(row.get('kind') or '')
            if page:
                by_kind.setdefault(page, []).append(series_item(row))
        return {'run': run_hash, 'kinds': by_kind}

    @router.get('/api/blobs/{digest}', tags=['objects'],
                responses={200: {'content': {'image/png': {}, 'audio/wav': {},
                                             'application/json': {}}}})
    def blob(request: Request, digest: str,
             thumb: int | None = Query(None, description='longest edge of a thumbnail '
                                       f'({THUMB_SIZES[0]}–{THUMB_SIZES[1]} px)')):
        if not _DIGEST.match(digest):
            raise ApiError(404, 'BlobNotFound', f'{digest[:80]!r} is not a blob digest '
                           f'(64 lowercase hex digits).')
        if thumb is not None and not THUMB_SIZES[0] <= thumb <= THUMB_SIZES[1]:
            raise ApiError(422, 'InvalidRequest', f'thumb must be between {THUMB_SIZES[0]} '
                           f'and {THUMB_SIZES[1]} pixels, got {thumb}.')
        etag = f'"{digest}"' if thumb is None else f'"{digest}-t{thumb}"'
        if request.headers.get('if-none-match') in (etag, f'W/{etag}'):
            return _blob_response(request, b'', '', etag)
        if thumb is not None:
            cached = thumbs.get((digest, thumb))
            if cached is not None:
                return _blob_response(request, cached[0], cached[1], etag)
        data = _read_blob(repo, digest)
        if thumb is None:
            return _blob_response(request, data, sniff_type(data), etag)
        try:
            made = make_thumbnail(data, thumb)
        except Exception:  # not an image Pillow reads: say so instead of a 500
            raise ApiError(415, 'NotAnImage', f'Blob {digest} is not an image Pillow can '
                           f'read, so it has no thumbnail; ask without thumb.') from None
        thumbs.put((digest, thumb), made)
        return _blob_response(request, made[0], made[1], etag)

    return router


def _warm_imports() -> None:
    """Import what the first object request needs (Pillow with its WEBP and PNG codecs:
    a fifth of a second) while the server starts, not while a page waits."""
    try:
        from PIL import Image, PngImagePlugin, WebPImagePlugin  # noqa: F401
        Image.new('RGB', (2, 2)).save(io.BytesIO(), 'WEBP')
        _objects_module()
    except Exception:  # Pillow missing or without WEBP: the request will say so
        pass


def _read_blob(repo, digest: str) -> bytes:
    blobs: Any = getattr(repo._store, 'blobs', None)
    if blobs is None:
        raise ApiError(501, 'NotSupported', 'This repository serves no object blobs (a '
                       'remote tracking server); open the repository itself with `aim up '
                       '--repo`.')
    from aim.errors import RepositoryError
    try:
        data = blobs.get(digest)
    except (KeyError, RepositoryError):
        data = None
    if data is None:
        raise ApiError(404, 'BlobNotFound', f'No blob {digest} in this repository (the run '
                       f'that tracked it may have been deleted).')
    return bytes(data)
