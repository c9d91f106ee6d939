"""The metrics explorer of issue 16: server-side CMA smoothing and x aligned by another
metric (API), and in a real Chromium against a real ``aim up``: distinguishable train /
val lines, system metrics last, readable numbers, the series table (show / hide, value at
the cursor, min / max / last), ignoring outliers, rectangle zoom with its history,
aggregation lines and bands."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

from aim import Repo
from aim.web.downsample import cma
from tests.web.live_server import CHROMIUM, CHROMIUM_ARGS, aim_up
from tests.web.repo_factory import quiet_run

STEPS = 200
SPIKE_STEP = 101
SPIKE = 50.0
TINY = 6.306263089267136e-05


def loss_of(i: int, s: int) -> float:
    if i == 0 and s == SPIKE_STEP:
        return SPIKE
    return math.exp(-s / 60) + 0.1 * i + 0.02 * math.sin(s * (i + 1))


def tokens_of(i: int, s: int) -> float:
    return float(s * 100 + 7 * i) if s % 3 else float('nan')  # a gap every third step


@pytest.fixture(scope='module')
def repo_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('explorer'))
    repo = Repo(path, init=True)
    hashes = []
    for i in range(3):
        run = quiet_run(repo, experiment='explore')
        run.name = f'explore-{i}'
        run['hparams'] = {'lr': 0.1 / (i + 1), 'opt': 'adam' if i else 'sgd'}
        for s in range(STEPS):
            run.track(loss_of(i, s), name='loss', step=s, context={'subset': 'train'})
            if s % 5 == 0:
                run.track(loss_of(i, s) + 0.05, name='loss', step=s, context={'subset': 'val'})
            run.track(tokens_of(i, s), name='tokens', step=s)
            run.track(TINY * (1 + s / STEPS), name='grad', step=s)
            run.track(10.0 + i, name='__system__cpu', step=s)
        run.close()
        hashes.append(run.hash)
    return path, hashes


@pytest.fixture(scope='module')
def client(repo_path):
    from fastapi.testclient import TestClient

    from aim.web.app import create_app
    path, hashes = repo_path
    with TestClient(create_app(Repo(path))) as c:
        yield c, hashes


def series(client, **params):
    answer = client.get('/api/series', params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def reference_cma(values, window):
    half = window // 2
    finite = [k for k, v in enumerate(values) if math.isfinite(v)]
    out = list(values)
    for pos, k in enumerate(finite):
        near = finite[max(0, pos - half):pos + half + 1]
        out[k] = sum(values[j] for j in near) / len(near)
    return np.array(out)


@pytest.mark.parametrize('window', [1, 2, 3, 10, 51, 4001])
def test_cma_matches_the_centred_average(window):
    rng = np.random.default_rng(4)
    values = rng.normal(size=1001) * 3 + 1e6  # far from 0: the sums must keep precision
    values[rng.random(len(values)) < 0.05] = np.nan
    values[7] = np.inf
    got, want = cma(values, window), reference_cma(values.tolist(), window | 1 if window > 1
                                                   else 1)
    assert np.array_equal(np.isnan(got), np.isnan(want)) and got[7] == np.inf
    finite = np.isfinite(want)
    assert np.allclose(got[finite], want[finite], rtol=1e-12, atol=1e-6)


def test_cma_smoothing_in_the_api_at_any_width_and_zoom(client):
    c, hashes = client
    want = reference_cma([loss_of(0, s) for s in range(STEPS)], 21)
    for params in ({'width': 1000}, {'width': 20}, {'width': 20, 'x_min': 90, 'x_max': 120}):
        got = series(c, runs=hashes[0], names='loss', q='', smoothing_kind='cma', window=21,
                     **params)
        assert got['smoothing_kind'] == 'cma' and got['window'] == 21
        s = next(x for x in got['series'] if x['context'] == {'subset': 'train'})
        steps = np.array(s['step'], dtype=int)
        assert np.allclose(s['y'], want[steps], rtol=1e-12)
    # the EMA is still the default kind, and the kinds are cached apart
    ema = series(c, runs=hashes[0], names='loss', smoothing=0.5, width=1000)
    assert ema['smoothing_kind'] == 'ema'
    assert ema['series'][0]['y'] != got['series'][0]['y']
    bad = c.get('/api/series', params={'runs': hashes[0], 'smoothing_kind': 'median'})
    assert bad.status_code == 400 and bad.json()['error']['type'] == 'InvalidSmoothing'
    live = c.get('/api/series', params={'runs': hashes[0], 'smoothing_kind': 'cma',
                                        'window': 5, 'since': 0})
    assert live.status_code == 400


def test_x_axis_aligned_by_another_metric(client):
    c, hashes = client
    got = series(c, runs=','.join(hashes), names='loss,grad', x_axis='metric:tokens')
    assert got['x_axis'] == 'metric:tokens'
    runs = {h: i for i, h in enumerate(hashes)}
    seen = 0
    for s in got['series']:
        i = runs[s['run']]
        assert s['step'] and all(step % 3 for step in s['step'])  # NaN tokens: left out
        for x, y, step in zip(s['x'], s['y'], s['step']):
            assert x == tokens_of(i, step)
            if s['name'] == 'loss' and s['context'] == {'subset': 'train'}:
                assert y == loss_of(i, step)
        seen += 1
    assert seen == 3 * 3  # loss train, loss val, grad: each aligned by the run's tokens
    # zoomed: the range is on the new x axis
    zoomed = series(c, runs=hashes[1], names='loss', x_axis='metric:tokens',
                    x_min=5000, x_max=6000)
    for s in zoomed['series']:
        inside = [x for x in s['x'] if 5000 <= x <= 6000]
        assert inside and len(s['x']) <= len(inside) + 2  # one neighbour each side
    missing = series(c, runs=hashes[0], names='loss', x_axis='metric:nothing')
    assert all(s['n'] == 0 for s in missing['series'])
    bad = c.get('/api/series', params={'runs': hashes[0], 'x_axis': 'steps'})
    assert bad.status_code == 400 and bad.json()['error']['type'] == 'InvalidXAxis'
