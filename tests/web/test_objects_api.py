"""The rich-object endpoints (aim/web/objects_api.py): series, points, run tabs, blobs and
thumbnails. The SDK-backed tests write a real repository with Image / Text / Distribution /
Audio / Figure; the rest check the pure parts and the blob endpoint directly."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from aim.web import objects_api
from aim.web.objects_api import ThumbnailCache, make_thumbnail, sniff_type

HOSTILE = '<img src=x onerror="window.__xss=1">'


def png_bytes(width: int, height: int, mode: str = 'RGB', noisy: bool = False) -> bytes:
    from PIL import Image
    out = io.BytesIO()
    image = Image.new(mode, (width, height), 128 if mode in ('L', 'I;16') else (200, 30, 30))
    if noisy:  # big enough (past THUMB_PASS_BYTES) to be worth a thumbnail
        image = Image.effect_noise((width, height), 60).convert(mode)
    image.save(out, 'PNG')
    return out.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image
    with Image.open(io.BytesIO(data)) as im:
        return im.size


# --- pure parts --------------------------------------------------------------------------
def test_sniff_type_names_only_inert_types():
    assert sniff_type(png_bytes(2, 2)) == 'image/png'
    assert sniff_type(b'\xff\xd8\xff\xe0....') == 'image/jpeg'
    assert sniff_type(b'RIFF\x00\x00\x00\x00WAVEfmt ') == 'audio/wav'
    assert sniff_type(b'RIFF\x00\x00\x00\x00WEBPVP8 ') == 'image/webp'
    assert sniff_type(b'  {"data": []}') == 'application/json'
    # markup is never served as something a browser would run
    assert sniff_type(b'<html><script>alert(1)</script>') == 'application/octet-stream'
    assert sniff_type(b'<svg onload="alert(1)"/>') == 'application/octet-stream'


def test_thumbnail_cache_drops_least_recently_used():
    cache = ThumbnailCache(max_bytes=10)
    cache.put(('a', 1), (b'1234', 'image/png'))
    cache.put(('b', 1), (b'1234', 'image/png'))
    assert cache.get(('a', 1)) is not None           # a is now the most recent
    cache.put(('c', 1), (b'1234', 'image/png'))      # over 10 bytes: b goes
    assert cache.get(('b', 1)) is None
    assert cache.get(('a', 1)) and cache.get(('c', 1))
    cache.put(('huge', 1), (b'x' * 11, 'image/png'))  # bigger than the cache: not kept
    assert cache.get(('huge', 1)) is None and len(cache) == 2


def test_make_thumbnail_shrinks_big_images_and_keeps_small_ones():
    small = png_bytes(20, 10)
    assert make_thumbnail(small, 64) == (small, 'image/png')
    few_bytes = png_bytes(400, 200)       # one colour: a few hundred bytes, sent as it is
    assert make_thumbnail(few_bytes, 64) == (few_bytes, 'image/png')
    data, kind = make_thumbnail(png_bytes(400, 200, noisy=True), 64)
    assert kind in ('image/webp', 'image/png')
    assert image_size(data) == (64, 32)
    for mode in ('L', 'I;16', 'RGBA', 'P'):
        data, _ = make_thumbnail(png_bytes(300, 300, mode, noisy=True), 50)
        assert image_size(data) == (50, 50)


# --- the blob endpoint, on blobs put directly ------------------------------------------------
@pytest.fixture(scope='module')
def blob_client(tmp_path_factory):
    from fastapi.testclient import TestClient

    from aim import Repo
    from aim.web.app import create_app
    repo = Repo(str(tmp_path_factory.mktemp('blobrepo')), init=True)
    digests = {'big': repo._store.blobs.put(png_bytes(640, 320, noisy=True)),
               'html': repo._store.blobs.put(b'<html><script>window.x=1</script></html>')}
    with TestClient(create_app(repo)) as c:
        yield c, digests


def test_blob_is_served_with_its_type_and_cached_for_good(blob_client):
    client, digests = blob_client
    d = digests['big']
    r = client.get(f'/api/blobs/{d}')
    assert r.status_code == 200
    assert r.headers['content-type'] == 'image/png'
    assert 'immutable' in r.headers['cache-control']
    assert r.headers['etag'] == f'"{d}"'
    assert image_size(r.content) == (640, 320)
    again = client.get(f'/api/blobs/{d}', headers={'If-None-Match': f'"{d}"'})
    assert again.status_code == 304 and not again.content


def test_thumbnail_is_small_cached_and_has_its_own_etag(blob_client):
    client, digests = blob_client
    d = digests['big']
    r = client.get(f'/api/blobs/{d}?thumb=160')
    assert r.status_code == 200
    assert r.headers['content-type'] in ('image/webp', 'image/png')
    assert r.headers['etag'] == f'"{d}-t160"'
    assert image_size(r.content) == (160, 80)
    assert len(r.content) < len(client.get(f'/api/blobs/{d}').content)
    assert client.get(f'/api/blobs/{d}?thumb=160').content == r.content
    assert client.get(f'/api/blobs/{d}?thumb=8').status_code == 422
    assert client.get(f'/api/blobs/{digests["html"]}?thumb=160').status_code == 415


def test_blob_errors_and_markup_served_as_download(blob_client):
    client, digests = blob_client
    r = client.get(f'/api/blobs/{digests["html"]}')
    assert r.headers['content-type'] == 'application/octet-stream'
    assert r.headers['content-disposition'] == 'attachment'
    assert r.headers['x-content-type-options'] == 'nosniff'
    missing = client.get('/api/blobs/' + '0' * 64)
    assert missing.status_code == 404 and missing.json()['error']['type'] == 'BlobNotFound'
    assert client.get('/api/blobs/..%2F..%2Fetc%2Fpasswd').status_code == 404
    assert client.get('/api/blobs/XYZ').json()['error']['type'] == 'BlobNotFound'


def test_unknown_kind_and_bad_ids(blob_client):
    client, _ = blob_client
    r = client.get('/api/objects/videos')
    assert r.status_code == 404 and 'images' in r.json()['error']['message']
    assert client.get('/api/objects/images').json()['series'] == []
    assert client.get('/api/objects/images/points?ids=1,x').status_code == 422
    assert client.get(f'/api/objects/images/points?ids={2 ** 70}').status_code == 422
    assert client.get(f'/api/objects/images/points?ids=1&step={2 ** 70}').status_code == 422
    many = ','.join(str(i) for i in range(objects_api.MAX_IDS + 1))
    assert client.get(f'/api/objects/images/points?ids={many}').status_code == 422


# --- a repository written through the SDK ----------------------------------------------------
def _sdk():
    try:
        from aim import Audio, Distribution, Image, Text  # noqa: F401
        from aim.storage import objects  # noqa: F401
    except ImportError:
        pytest.skip('the SDK object classes are not there yet')
    import aim
    return aim


def build_object_repo(path: str, n_runs: int = 3, steps: int = 4) -> list[str]:
    """Runs with image, text, distribution, audio and figure series; run 0 carries hostile
    captions and texts."""
    import numpy as np

    aim = _sdk()
    from tests.web.repo_factory import quiet_run
    repo = aim.Repo(path, init=True)
    rng = np.random.default_rng(0)
    hashes = []
    for i in range(n_runs):
        run = quiet_run(repo, experiment='exp')
        run.name = f'run-{i}'
        run['hparams'] = {'lr': [0.001, 0.01, 0.1][i % 3]}
        for s in range(steps):
            arr = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
            caption = HOSTILE if i == 0 else f'r{i} s{s}'
            run.track(aim.Image(arr, caption=caption), name='samples', step=s,
                      context={'subset': 'val'})
            run.track([aim.Image(arr[:, :16], caption=f'a{s}'), aim.Image(arr, caption=f'b{s}')],
                      name='batch', step=s)
            run.track(aim.Text(HOSTILE if i == 0 else f'prediction {i}/{s}'), name='preds',
                      step=s)
            run.track(aim.Distribution(rng.normal(s, 1, 500), bin_count=16), name='weights',
                      step=s)
        wave = (np.sin(np.linspace(0, 200, 800)) * 0.5).astype(np.float32)
        run.track(aim.Audio(wave, rate=8000, caption='tone'), name='tone', step=0)
        try:
            import plotly.graph_objects as go
            run.track(aim.Figure(go.Figure(go.Scatter(x=[1, 2, 3], y=[i, 2, 1]))),
                      name='curve', step=0)
        except ImportError:
            pass
        run.close()
        hashes.append(run.hash)
    return hashes


@pytest.fixture(scope='module')
def objects_client(tmp_path_factory):
    from fastapi.testclient import TestClient

    from aim import Repo
    from aim.web.app import create_app
    path = str(tmp_path_factory.mktemp('objrepo'))
    hashes = build_object_repo(path)
    with TestClient(create_app(Repo(path))) as c:
        yield c, hashes


def test_image_series_with_runs_and_newest_points(objects_client):
    client, hashes = objects_client
    data = client.get('/api/objects/images').json()
    assert {(s['name'], json.dumps(s['context'])) for s in data['series']} == {
        ('samples', '{"subset": "val"}'), ('batch', '{}')}
    assert len(data['series']) == 6 and set(data['runs']) == set(hashes)
    assert data['runs'][hashes[1]]['params']['hparams.lr'] == 0.01
    samples = [s for s in data['series'] if s['name'] == 'samples']
    assert all(s['first_step'] == 0 and s['last_step'] == 3 and s['count'] == 4
               for s in samples)
    ids = ','.join(str(s['id']) for s in data['series'])
    points = client.get(f'/api/objects/images/points?ids={ids}').json()['points']
    assert len(points) == 6 and {p['step'] for p in points} == {3}
    batch = next(p for p in points if p['id'] == next(s['id'] for s in data['series']
                                                      if s['name'] == 'batch'))
    assert [o['caption'] for o in batch['objects']] == ['a3', 'b3']
    obj = batch['objects'][0]
    assert (obj['width'], obj['height']) == (16, 24) and len(obj['blob']) == 64
    thumb = client.get(f'/api/blobs/{obj["blob"]}?thumb=16')
    assert thumb.status_code == 200   # a few hundred bytes: sent as it is
    assert image_size(thumb.content) == (16, 24)
    with_points = client.get('/api/objects/images?newest=true').json()
    assert sorted(map(json.dumps, with_points['points'])) == sorted(map(json.dumps, points))
    assert 'points' not in data
    at1 = client.get(f'/api/objects/images/points?ids={ids}&step=1').json()['points']
    assert {p['step'] for p in at1} == {1}
    hostile = next(p for p in client.get(f'/api/objects/images/points?ids={ids}').json()[
        'points'] if p['objects'][0]['caption'] == HOSTILE)
    assert hostile  # stored and answered as plain text, for the page to show as text


def test_image_query_by_name_and_param(objects_client):
    client, hashes = objects_client
    q = "images.name == 'samples' and run.hparams.lr > 0.005"
    data = client.get('/api/objects/images', params={'q': q}).json()
    assert sorted(s['run'] for s in data['series']) == sorted(hashes[1:])
    assert {s['name'] for s in data['series']} == {'samples'}
    ctx = client.get('/api/objects/images', params={'q': "images.context.subset == 'val'"})
    assert len(ctx.json()['series']) == 3
    bad = client.get('/api/objects/images', params={'q': 'images.name =='})
    assert bad.status_code == 400 and 'position' in bad.json()['error']['detail']


def test_texts_distributions_audio_and_figures(objects_client):
    client, hashes = objects_client
    texts = client.get('/api/objects/texts').json()['series']
    ids = ','.join(str(s['id']) for s in texts)
    every = client.get(f'/api/objects/texts/points?ids={ids}&all=true').json()
    assert len(every['points']) == 12 and not every['truncated']
    assert HOSTILE in {p['objects'][0]['text'] for p in every['points']}
    capped = client.get(f'/api/objects/texts/points?ids={ids}&all=true&max_points=5').json()
    assert len(capped['points']) == 5 and capped['truncated']
    dist = client.get('/api/objects/distributions').json()['series'][0]
    point = client.get(f'/api/objects/distributions/points?ids={dist["id"]}').json()[
        'points'][0]['objects'][0]
    assert point['bin_count'] == 16 and len(point['weights']) == 16 and len(point['range']) == 2
    audio = client.get('/api/objects/audios').json()['series'][0]
    obj = client.get(f'/api/objects/audios/points?ids={audio["id"]}').json()['points'][0][
        'objects'][0]
    blob = client.get(f'/api/blobs/{obj["blob"]}')
    assert blob.headers['content-type'].startswith('audio/') and obj['caption'] == 'tone'
    figures = client.get('/api/objects/figures').json()['series']
    if figures:
        fig = client.get(f'/api/objects/figures/points?ids={figures[0]["id"]}').json()[
            'points'][0]['objects'][0]
        body = client.get(f'/api/blobs/{fig["blob"]}')
        assert body.headers['content-type'] == 'application/json'
        assert body.json()['data'][0]['type'] == 'scatter'


def test_run_objects_by_kind(objects_client):
    client, hashes = objects_client
    kinds = client.get(f'/api/runs/{hashes[0]}/objects').json()['kinds']
    assert {k: len(v) for k, v in kinds.items() if k != 'figures'} == {
        'images': 2, 'texts': 1, 'distributions': 1, 'audios': 1}
    assert all(s['run'] == hashes[0] for v in kinds.values() for s in v)
    assert client.get('/api/runs/nosuchrun/objects').json()['kinds'] == {}


def test_points_cache_reads_a_series_once_and_again_when_it_grows(monkeypatch):
    reads = []

    class FakeObjects:
        @staticmethod
        def read_points(db, series_id, first_step=None, last_step=None):
            reads.append(series_id)
            return [(s, None, 0.0, [{'text': str(s)}]) for s in (0, 5, 10)]

    monkeypatch.setattr(objects_api, '_objects_module', lambda: FakeObjects)
    cache = objects_api.PointsCache(max_points=6)
    row = {'id': 1, 'count': 3, 'last_step': 10, 'last_time': 1.0}
    points = cache.points(None, row)
    assert cache.points(None, row) is points and reads == [1]
    assert objects_api._newest_at(points, 7)[0] == 5
    assert objects_api._newest_at(points, -1)[0] == 0      # all after: the first
    assert objects_api._newest_at(points, 99)[0] == 10
    cache.points(None, dict(row, count=4, last_step=11))   # grew: read again
    assert reads == [1, 1]
    cache.points(None, dict(row, id=2))                     # past 6 points: the oldest goes
    cache.points(None, row)
    assert reads == [1, 1, 2, 1]
    assert cache.points(None, dict(row, count=10 ** 6)) is None   # too long to keep whole


@pytest.mark.backends
def test_endpoints_on_both_backends(backend, repo_location):
    """The same answers from a repository on SQLite and on PostgreSQL."""
    import numpy as np
    from fastapi.testclient import TestClient

    aim = _sdk()
    from aim.web.app import create_app
    from tests.web.repo_factory import quiet_run
    repo = aim.Repo.from_path(repo_location)
    run = quiet_run(repo)
    run['hparams'] = {'lr': 0.1}
    arr = np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3)
    for s in range(3):
        run.track([aim.Image(arr, caption=HOSTILE), aim.Image(arr[:20])], name='samples',
                  step=s, context={'subset': 'val'})
        run.track(aim.Text(f'text {s}'), name='preds', step=s)
    run.close()
    with TestClient(create_app(aim.Repo.from_path(repo_location))) as client:
        q = "images.context.subset == 'val' and run.hparams.lr > 0.01"
        series = client.get('/api/objects/images', params={'q': q}).json()['series']
        assert [(s['name'], s['count'], s['last_step']) for s in series] == [('samples', 3, 2)]
        point = client.get(f'/api/objects/images/points?ids={series[0]["id"]}&step=1').json()[
            'points'][0]
        assert point['step'] == 1 and [o['height'] for o in point['objects']] == [40, 20]
        assert point['objects'][0]['caption'] == HOSTILE
        thumb = client.get(f'/api/blobs/{point["objects"][0]["blob"]}?thumb=30')
        assert thumb.status_code == 200 and max(image_size(thumb.content)) <= 60
        kinds = client.get(f'/api/runs/{run.hash}/objects').json()['kinds']
        assert sorted(kinds) == ['images', 'texts']
        texts = client.get(f'/api/objects/texts/points?ids={kinds["texts"][0]["id"]}&all=true')
        assert [p['objects'][0]['text'] for p in texts.json()['points']] == [
            'text 0', 'text 1', 'text 2']


def test_object_pages_served_and_endpoints_documented(blob_client):
    client, _ = blob_client
    for path in ('/images', '/texts', '/audios', '/distributions', '/figures'):
        r = client.get(path)
        assert r.status_code == 200 and '<main id="page">' in r.text
    paths = client.get('/openapi.json').json()['paths']
    for path in ('/api/objects/{kind}', '/api/objects/{kind}/points',
                 '/api/runs/{run_hash}/objects', '/api/blobs/{digest}'):
        assert path in paths
    doc = (Path(__file__).resolve().parents[2] / 'docs' / 'ui.md').read_text()
    for path in ('/api/objects/{kind}', '/api/objects/{kind}/points', '/api/runs/{hash}/objects',
                 '/api/blobs/{digest}'):
        assert f'`GET {path}' in doc


def test_object_query_past_the_server_limit_is_a_504(objects_client):
    from aim.web.api_errors import ApiError
    client, _ = objects_client
    repo = client.app.state.repo
    with pytest.raises(ApiError) as caught:
        objects_api.matching_rows(repo, 'images', "images.name == 'samples'", 10,
                                  timeout_s=1e-9)
    assert caught.value.status == 504 and caught.value.type == 'QueryTimeoutError'
