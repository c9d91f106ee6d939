"""EMA smoothing on the server: computed on every point before downsampling, so the
smoothed curve is the same whatever the chart's width or zoom."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aim import Repo
from aim.web.downsample import ema
from tests.web.repo_factory import quiet_run

STEPS = 20_000


def reference_ema(values, factor):
    out = list(values)
    acc = math.nan
    for i, v in enumerate(values):
        if not math.isfinite(v):
            continue
        acc = v if acc != acc else acc * factor + v * (1 - factor)
        out[i] = acc
    return np.array(out)


@pytest.mark.parametrize('factor', [0.0001, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_ema_matches_the_running_average(factor):
    rng = np.random.default_rng(7)
    values = rng.normal(size=3001) * 10 + 5
    values[rng.random(len(values)) < 0.05] = np.nan
    values[3], values[9] = np.inf, -np.inf
    got, want = ema(values, factor), reference_ema(values, factor)
    finite = np.isfinite(want)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    assert np.allclose(got[finite], want[finite], rtol=1e-12, atol=1e-9)


def test_ema_edge_cases():
    assert ema(np.array([]), 0.5).size == 0
    assert np.isnan(ema(np.array([np.nan, np.nan]), 0.5)).all()
    assert ema(np.array([4.0]), 0.9).tolist() == [4.0]
    assert ema(np.array([1.0, 2.0]), 0.0).tolist() == [1.0, 2.0]


@pytest.fixture(scope='module')
def noisy(tmp_path_factory):
    from fastapi.testclient import TestClient

    from aim.web.app import create_app
    path = str(tmp_path_factory.mktemp('smoothrepo'))
    repo = Repo(path, init=True)
    run = quiet_run(repo)
    rng = np.random.default_rng(3)
    values = np.sin(np.arange(STEPS) / 700) + rng.normal(size=STEPS)
    for step, v in enumerate(values):
        run.track(float(v), name='loss', step=step)
    run.close()
    with TestClient(create_app(Repo(path))) as client:
        yield client, run.hash, values


def series_of(client, **params):
    answer = client.get('/api/series', params={'names': 'loss', **params})
    assert answer.status_code == 200, answer.text
    s = answer.json()['series'][0]
    return np.array(s['step'], dtype=np.int64), np.array(s['y'], dtype=float)


def test_smoothed_points_do_not_depend_on_width_or_zoom(noisy):
    client, run_hash, values = noisy
    want = reference_ema(values, 0.9)
    seen = []
    for params in ({'width': 200}, {'width': 1000}, {'width': 150, 'x_min': 12_000,
                                                     'x_max': 12_900}):
        steps, y = series_of(client, runs=run_hash, smoothing=0.9, **params)
        assert len(steps) < STEPS
        # every point the answer holds is the full-resolution average at that step
        assert np.allclose(y, want[steps], rtol=1e-9, atol=1e-9)
        seen.append(dict(zip(steps.tolist(), y.tolist())))
    common = set(seen[0]) & set(seen[1])
    assert common and all(seen[0][k] == seen[1][k] for k in common)
    # zoomed in: the average still carries everything before the visible range
    zoomed = series_of(client, runs=run_hash, smoothing=0.9, x_min=12_000, x_max=12_100,
                       width=1000)
    assert np.allclose(zoomed[1], want[zoomed[0]], rtol=1e-9)


def test_the_binary_answer_and_its_cache_keep_smoothing_apart(noisy):
    from aim.web.series_payload import decode_binary
    client, run_hash, values = noisy
    params = {'runs': run_hash, 'names': 'loss', 'width': 300, 'format': 'binary'}
    raw = decode_binary(client.get('/api/series', params=params).content)
    smooth = decode_binary(client.get('/api/series', params=dict(params, smoothing=0.6))
                           .content)
    again = decode_binary(client.get('/api/series', params=params).content)
    assert smooth['smoothing'] == 0.6 and raw['smoothing'] == 0.0
    ys = smooth['series'][0]
    assert np.allclose(ys['y'], reference_ema(values, 0.6)[ys['x'].astype(int)])
    assert np.array_equal(raw['series'][0]['y'], again['series'][0]['y'])
    assert not np.array_equal(raw['series'][0]['y'][:50], ys['y'][:50])


def test_smoothing_is_checked(noisy):
    client, run_hash, _ = noisy
    bad = client.get('/api/series', params={'runs': run_hash, 'smoothing': 1.5})
    assert bad.status_code == 422
    live = client.get('/api/series', params={'runs': run_hash, 'smoothing': 0.5,
                                             'since': 0})
    assert live.status_code == 400
    assert live.json()['error']['type'] == 'InvalidSmoothing'
