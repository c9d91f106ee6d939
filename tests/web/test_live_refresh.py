"""Issue 16, bug 14: the runs table and the metrics explorer follow live runs, in a real
headless Chromium against ``aim up``. A run kept open by the test process tracks more
points (and a second one starts); the pages show them within seconds, and once the runs
are closed the pages stop asking for them."""
from __future__ import annotations

import os
import time

import pytest

from tests.web.live_server import CHROMIUM, aim_up, chromium_page
from tests.web.repo_factory import build_repo, quiet_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)'),
]

LIVE_NAME = '<b>live</b> & "run"'


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('live_refresh'))
    hashes = build_repo(path, n_runs=2, steps=20)
    with aim_up(path) as url:
        yield url, hashes, path


@pytest.fixture
def page():
    with chromium_page(1400, 900) as p:
        # every polling interval five times shorter (pollMs in js/live_follow.js)
        p.add_init_script('window.__aimLiveMs = 1000')
        yield p
        errors = p.console_errors
    assert errors == []


def live_run(path: str, name: str, values):
    from aim import Repo
    run = quiet_run(Repo(path), experiment='live')
    run.name = name
    track(run, values, 0)
    return run


def track(run, values, first_step: int) -> None:
    for i, v in enumerate(values):
        run.track(v, name='loss', step=first_step + i)
    run.flush()


def requests_to(page, predicate) -> list:
    seen = []
    page.on('request', lambda r: predicate(r.url) and seen.append(r.url))
    return seen


def test_runs_table_follows_live_runs(server, page):
    url, _, path = server
    first = live_run(path, LIVE_NAME, [0.5, 0.25])
    second = None
    try:
        time.sleep(1.0)  # folded into the index
        reads = requests_to(page, lambda u: '/api/runs?' in u)
        page.goto(url + '/runs')
        page.wait_for_selector('#page[data-ready]')
        page.wait_for_function("() => !document.querySelector('#runs-live').hidden")
        assert page.inner_text('#runs-live').startswith('1 running')
        # the name is text, not markup
        assert page.inner_text(f'tr[data-hash="{first.hash}"] a.run-link') == LIVE_NAME
        # a selection and the scroll of the table survive the re-reads
        page.check(f'tr[data-hash="{first.hash}"] input[type=checkbox]')
        sort_url = page.url

        second = live_run(path, 'second-live', [1.0])
        track(first, [7.25], 2)
        page.wait_for_selector(f'tr[data-hash="{second.hash}"]', timeout=12000)
        page.wait_for_function(
            f"() => document.querySelector('tr[data-hash=\"{first.hash}\"]').innerText.includes('7.25')",
            timeout=12000)
        assert page.inner_text('#runs-live').startswith('2 running')
        assert page.is_checked(f'tr[data-hash="{first.hash}"] input[type=checkbox]')
        assert page.inner_text('#selection-count') == '1 selected'
        assert page.url == sort_url
    finally:
        first.close()
        if second is not None:
            second.close()
    # one last read shows them finished, then no more page reads
    page.wait_for_function("() => document.querySelector('#runs-live').hidden", timeout=12000)
    page.wait_for_function(
        f"() => document.querySelector('tr[data-hash=\"{first.hash}\"]').innerText.includes('finished')",
        timeout=8000)
    page.wait_for_timeout(500)
    settled = len(reads)
    page.wait_for_timeout(2500)   # more than two intervals
    assert len(reads) == settled


LAST_X = """() => Math.max(...window.__aimCharts.flatMap((c) => c.lines.map((l) => l.x[l.x.length - 1])))"""


def test_metrics_explorer_appends_points_of_live_runs(server, page):
    url, hashes, path = server
    run = live_run(path, 'charted-live', [1.0 / (s + 1) for s in range(10)])
    try:
        time.sleep(1.0)
        series = requests_to(page, lambda u: '/api/series?' in u)
        # zoomed in: the zoom stays while points arrive
        page.goto(url + f'/metrics?runs={run.hash},{hashes[0]}&xmin=0&xmax=15')
        page.wait_for_selector('#page[data-ready="1"]')
        assert page.evaluate(LAST_X) == 16  # the finished run's neighbour past the zoom
        page.wait_for_function("() => !document.querySelector('#metrics-live').hidden")
        assert page.inner_text('#metrics-live').startswith('1 running')
        page.evaluate('() => { window.__aimCharts[0].firstDrawn = true; }')

        track(run, [0.01 * s for s in range(20)], 10)   # steps 10..29
        page.wait_for_function(f'() => ({LAST_X})() === 29', timeout=12000)
        # appended to the charts already drawn, asked with since=, zoom kept
        assert page.evaluate('() => window.__aimCharts[0].firstDrawn === true')
        assert any('since=' in u for u in series)
        assert page.evaluate('() => window.__aimCharts[0].xRange') == [0, 15]
        live_points = page.evaluate(
            f"() => window.__aimCharts.flatMap((c) => c.lines).find((l) => l.meta.s.run === '{run.hash}').x.length")
        assert live_points == 30
    finally:
        run.close()
    page.wait_for_function("() => document.querySelector('#metrics-live').hidden", timeout=12000)
    page.wait_for_timeout(500)
    settled = len(series)
    page.wait_for_timeout(2500)   # more than two intervals
    assert len(series) == settled


def test_smoothed_view_is_read_again_whole(server, page):
    url, _, path = server
    run = live_run(path, 'smoothed-live', [1.0 / (s + 1) for s in range(10)])
    try:
        time.sleep(1.0)
        series = requests_to(page, lambda u: '/api/series?' in u)
        page.goto(url + f'/metrics?runs={run.hash}&smooth=0.6')
        page.wait_for_selector('#page[data-ready="1"]')
        page.wait_for_function("() => !document.querySelector('#metrics-live').hidden")
        assert 'smoothed' in page.inner_text('#metrics-live')
        page.evaluate('() => { window.__aimCharts[0].firstDrawn = true; }')
        track(run, [0.5] * 5, 10)   # steps 10..14
        page.wait_for_function(f'() => ({LAST_X})() === 14', timeout=20000)
        assert page.evaluate('() => window.__aimCharts[0].firstDrawn === true')
        assert len(series) == 2 and all('smoothing=0.6' in u and 'since=' not in u for u in series)
    finally:
        run.close()
