"""The pages in a real headless Chromium against a real ``aim up`` subprocess.

Screenshots of every page land in test-output/screenshots/.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.web.live_server import CHROMIUM, aim_up, chromium_page
from tests.web.repo_factory import build_repo

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)'),
]
SHOTS = Path(__file__).resolve().parents[2] / 'test-output' / 'screenshots'
HAS_QUERY_LAYER = importlib.util.find_spec('aim.sdk.collections') is not None


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f'{name}.png'), full_page=True)


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('browserrepo'))
    hashes = build_repo(path)
    with aim_up(path) as url:
        yield url, hashes


@pytest.fixture
def page():
    with chromium_page() as p:
        yield p
        assert p.console_errors == []


def test_runs_table_escapes_names_and_completes_params(server, page):
    url, _ = server
    page.goto(url + '/runs')
    page.wait_for_selector('table.runs-table tbody tr')
    assert page.locator('table.runs-table tbody tr').count() == 6
    # A run name full of markup is shown as text, never run.
    assert page.get_by_text('<img src=x onerror="window.__xss=1">run & co').count() == 1
    assert page.evaluate('window.__xss') is None
    page.click('.query-input')
    page.keyboard.type('run.hpa')
    page.wait_for_selector('.completion li')
    assert 'run.hparams.lr' in page.locator('.completion').inner_text()
    shot(page, 'runs-completion')
    page.fill('.query-input', 'run.hparams.optimizer == "adam"')
    page.keyboard.press('Enter')
    if HAS_QUERY_LAYER:
        page.wait_for_function("() => document.querySelector('#runs-count').textContent === '3 runs'")
        assert page.locator('table.runs-table tbody tr').count() == 3
        assert 'q=run.hparams.optimizer' in page.url
        page.fill('.query-input', 'run.hparams.lr <')
        page.keyboard.press('Enter')
        page.wait_for_selector('.query-error:not([hidden])')
        assert '^' in page.locator('.query-error').inner_text()
    shot(page, 'runs')


def test_runs_sort_and_compare(server, page):
    url, hashes = server
    page.goto(url + '/runs')
    page.wait_for_selector('table.runs-table tbody tr')
    page.click('th:has-text("seed")')
    page.wait_for_function("() => location.search.includes('sort=params.seed')")
    first = page.locator('table.runs-table tbody tr').first
    assert first.get_attribute('data-hash') == hashes[0]
    page.locator('input[aria-label="select run"]').nth(0).check()
    page.locator('input[aria-label="select run"]').nth(1).check()
    page.click('#compare')
    page.wait_for_selector('#page[data-ready="1"]')
    assert '/metrics?runs=' in page.url
    assert page.locator('#metrics-status').inner_text().startswith('6 series')


def test_metrics_explorer_groups_smooths_and_zooms(server, page):
    url, _ = server
    page.goto(url + '/metrics')
    page.wait_for_selector('#page[data-ready="1"]')
    assert page.locator('.chart').count() == 2  # one chart per metric name
    shot(page, 'metrics')
    page.select_option('#group-color', 'run.hparams.optimizer')
    page.wait_for_function("() => location.search.includes('color=run.hparams.optimizer')")
    legend = page.locator('#legend').inner_text()
    assert 'adam' in legend and 'sgd' in legend
    page.select_option('#group-style', 'context.subset')
    page.check('#smoothing-on')
    page.wait_for_function("() => location.search.includes('smooth=')")
    page.select_option('#aggregate', 'std')
    shot(page, 'metrics-grouped-smoothed')
    page.select_option('#aggregate', '')
    # Zoom: drag across the loss chart; the page asks the server for the visible range.
    overlay = page.locator('.chart-overlay').nth(1)
    box = overlay.bounding_box()
    with page.expect_request(lambda r: '/api/series' in r.url and 'x_min=' in r.url):
        page.mouse.move(box['x'] + box['width'] * 0.45, box['y'] + 100)
        page.mouse.down()
        page.mouse.move(box['x'] + box['width'] * 0.55, box['y'] + 100, steps=5)
        page.mouse.up()
    page.wait_for_selector('#page[data-ready="1"]')
    assert 'xmin=' in page.url and 'xmax=' in page.url
    # Hovering a line shows the run's name, the value and params in the tooltip.
    point = page.evaluate('''() => { const c = window.__aimCharts[1]; const l = c.lines[0];
        const i = Math.floor(l.x.length / 2);
        return [c.px(l.x[i]), c.py(l.y[i]), l.meta.run.name]; }''')
    page.mouse.move(box['x'] + point[0], box['y'] + point[1])
    page.wait_for_selector('.chart-tooltip:not([hidden])')
    tip = page.locator('.chart-tooltip:not([hidden])').inner_text()
    assert point[2] in tip and 'value:' in tip and 'hparams.lr' in tip
    shot(page, 'metrics-zoomed')
    # The state is in the URL: reloading it restores the view.
    page.reload()
    page.wait_for_selector('#page[data-ready="1"]')
    assert page.input_value('#group-color') == 'run.hparams.optimizer'
    assert page.is_checked('#smoothing-on')


def test_metrics_explorer_x_axis_and_log_scale(server, page):
    url, _ = server
    page.goto(url + '/metrics?x=epoch&log=1')
    page.wait_for_selector('#page[data-ready="1"]')
    assert page.input_value('#x-axis') == 'epoch'
    assert page.is_checked('#log-scale')
    page.select_option('#x-axis', 'wall_time')
    page.wait_for_function("() => location.search.includes('x=wall_time')")
    page.wait_for_selector('#page[data-ready="1"]')
    shot(page, 'metrics-walltime-log')


def test_params_explorer_draws(server, page):
    url, _ = server
    page.goto(url + '/params')
    page.wait_for_selector('#page[data-ready="1"]')
    assert page.locator('#parallel').is_visible()
    page.select_option('#params-color', 'loss')
    page.wait_for_function("() => location.search.includes('color=loss')")
    shot(page, 'params')


def test_run_page_shows_everything_and_edits(server, page):
    url, _ = server
    page.goto(url + '/runs')
    page.wait_for_selector('a.run-link')
    page.locator('a.run-link', has_text='run-1').click()
    page.wait_for_selector('#page[data-ready="1"]')
    page.click('#tab-metrics')
    page.wait_for_selector('#panel-metrics[data-ready]')
    assert page.locator('#run-traces .small-chart').count() == 3
    page.click('#tab-params')
    assert 'optimizer' in page.locator('#run-params').inner_text()
    page.click('#tab-overview')
    page.fill('#edit-name', 'renamed <b>run</b>')
    page.fill('#edit-tags', 'keep, best')
    page.click('#save-run')
    page.wait_for_function("() => document.querySelector('#run-title').textContent === 'renamed <b>run</b>'")
    shot(page, 'run')


def test_read_only_server_disables_edits(tmp_path, page):
    build_repo(str(tmp_path), n_runs=1, steps=10)
    with aim_up(str(tmp_path), '--read-only') as url:
        page.goto(url + '/runs')
        page.wait_for_selector('a.run-link')
        page.click('a.run-link')
        page.wait_for_selector('#page[data-ready="1"]')
        assert page.is_disabled('#save-run') and page.is_disabled('#delete-run')


TRACKER = textwrap.dedent('''
    import sys, time
    from aim import Repo, Run
    run = Run(repo=Repo(sys.argv[1]), system_tracking_interval=None)
    run.name = 'live-run'
    for step in range(400):
        run.track(step * 0.5, name='loss', step=step)
        print('step', step, flush=True)
        time.sleep(0.1)
    run.close()
''')


def test_live_page_appends_new_points(tmp_path, page):
    build_repo(str(tmp_path), n_runs=1, steps=10)
    tracker = subprocess.Popen([sys.executable, '-c', TRACKER, str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with aim_up(str(tmp_path)) as url:
            page.goto(url + '/live')
            page.wait_for_function("() => Number(document.querySelector('#page').dataset.points || 0) > 0",
                                   timeout=20_000)
            first = int(page.locator('#page').get_attribute('data-points'))
            with page.expect_request(lambda r: '/api/series' in r.url and 'since=' in r.url,
                                     timeout=10_000):
                pass
            page.wait_for_function(
                f"() => Number(document.querySelector('#page').dataset.points) > {first}",
                timeout=15_000)
            assert 'live-run' in page.locator('#live-status').inner_text()
            shot(page, 'live')
            # The run page of a live run shows its terminal output as it arrives.
            page.goto(url + '/runs')
            page.locator('a.run-link', has_text='live-run').click()
            page.click('#tab-logs')
            page.wait_for_function("() => (document.querySelector('#run-logs')?.textContent || '').includes('step')",
                                   timeout=15_000)
            # ... and its charts grow with the points written since the page opened.
            page.click('#tab-metrics')
            page.wait_for_selector('#run-traces .small-chart .muted')
            caption = page.locator('#run-traces .small-chart .muted').first
            before = caption.inner_text()
            page.wait_for_function(
                "(b) => document.querySelector('#run-traces .small-chart .muted').textContent !== b",
                arg=before, timeout=15_000)
            shot(page, 'run-live')
    finally:
        tracker.terminate()
        tracker.wait(10)
