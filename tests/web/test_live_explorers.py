"""Issue 16: the explorers follow live runs, in a real headless Chromium against ``aim up``.
Runs kept open by the test process write while a page is open: the params explorer, the
scatters and the images explorer show the new values and steps without a reload, the
user's state (a brush, the axes, the step slider, an open image) stays, and once the runs
are closed the pages stop asking. The interval is shortened to 0.6 s for the tests
(``window.__aimLiveMs``)."""
from __future__ import annotations

import os

import pytest

from tests.web.live_server import CHROMIUM, aim_up, borrowed_browser, chromium_page
from tests.web.repo_factory import quiet_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)'),
]

LIVE_MS = 600
STEPS = ("() => [...document.querySelectorAll('#images-grid figure[data-step]')]"
         ".map((f) => f.dataset.step)")
LIVE_NAME = '<b>live</b> & "run"'


def _image(value: int):
    import numpy as np

    from aim import Image
    return Image(np.full((8, 12, 3), value, dtype=np.uint8), caption=f'c{value}')


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """Two finished runs: params, a loss and three steps of images."""
    from aim import Repo
    path = str(tmp_path_factory.mktemp('live_explorers'))
    repo = Repo(path, init=True)
    for i in range(2):
        run = quiet_run(repo, experiment='done')
        run.name = f'done-{i}'
        run['hparams'] = {'lr': [0.001, 0.1][i], 'batch': 32 * (i + 1)}
        for s in range(3):
            run.track(1.0 - i / 4 - s / 10, name='loss', step=s)
            run.track(_image(40 * i + s), name='samples', step=s)
        run.close()
    with aim_up(path) as url:
        yield url, path


@pytest.fixture(scope='module')
def browser():
    with borrowed_browser() as chromium:
        yield chromium


@pytest.fixture
def page(browser):
    with chromium_page(1300, 900) as p:
        p.add_init_script(f'window.__aimLiveMs = {LIVE_MS};')
        yield p
        errors = p.console_errors
    assert errors == []


def live_run(path: str, name: str, lr: float, losses, first_step: int = 0):
    from aim import Repo
    run = quiet_run(Repo(path), experiment='live')
    run.name = name
    run['hparams'] = {'lr': lr, 'batch': 64}
    track_loss(run, losses, first_step)
    return run


def track_loss(run, values, first_step: int) -> None:
    for i, v in enumerate(values):
        run.track(v, name='loss', step=first_step + i)
    run.flush()


def requests_to(page, needle: str) -> list:
    seen = []
    page.on('request', lambda r: needle in r.url and seen.append(r.url))
    return seen


def assert_stops(page, badge: str, seen: list) -> None:
    """The badge goes, then no more requests of the page's kind."""
    page.wait_for_function(f"() => document.querySelector('#{badge}').hidden", timeout=10000)
    page.wait_for_timeout(300)   # an answer in flight lands
    settled = len(seen)
    page.wait_for_timeout(4 * LIVE_MS)
    assert len(seen) == settled


def test_params_explorer_follows_live_runs(server, page):
    url, path = server
    first = live_run(path, LIVE_NAME, 0.01, [0.9, 0.8])
    second = None
    try:
        reads = requests_to(page, '/api/runs?')
        # a brush on the loss axis that keeps every run
        page.goto(url + '/params?brush=loss:0:5')
        page.wait_for_selector('#page[data-ready="1"]')
        page.wait_for_function("() => !document.querySelector('#params-live').hidden")
        assert page.inner_text('#params-live').startswith('1 running')
        assert page.inner_text('#params-count') == '3 of 3 runs selected'
        row = f'#params-selected tr[data-hash="{first.hash}"]'
        assert page.inner_text(f'{row} a') == LIVE_NAME   # text, not markup

        track_loss(first, [0.125], 2)
        second = live_run(path, 'second-live', 0.5, [0.25])
        page.wait_for_function(
            f"() => document.querySelector('{row}')?.innerText.includes('0.125')", timeout=10000)
        page.wait_for_function(
            f"() => !!document.querySelector('#params-selected tr[data-hash=\"{second.hash}\"]')",
            timeout=10000)
        # the brush, its chip and the URL stay; the new run is counted and selected
        assert page.inner_text('#params-count') == '4 of 4 runs selected'
        assert page.locator('.params-brush-chip[data-axis="loss"]').count() == 1
        assert 'brush=loss' in page.url
        assert page.inner_text('#params-live').startswith('2 running')
        # the re-reads ask only for the runs that changed
        assert any('run.updated_at' in u for u in reads)
    finally:
        first.close()
        if second is not None:
            second.close()
    assert_stops(page, 'params-live', reads)


def test_scatters_move_and_add_points(server, page):
    url, path = server
    run = live_run(path, 'scatter-live', 0.02, [0.7])
    second = None
    try:
        reads = requests_to(page, '/api/runs?')
        page.goto(url + '/scatters?x=param:hparams.lr&y=metric:loss@{}&logx=1')
        page.wait_for_selector('#page[data-ready="1"]')
        page.wait_for_function("() => !document.querySelector('#scatters-live').hidden")
        points = page.locator('#scatter').get_attribute('data-points')
        y_of = ("() => document.querySelector('#scatter').scatterPoints"
                f".find((p) => p.hash === '{run.hash}').y")
        y0 = page.evaluate(y_of)
        track_loss(run, [0.05], 1)   # the point moves down
        page.wait_for_function(f'() => ({y_of})() > {y0 + 5}', timeout=10000)
        second = live_run(path, 'scatter-new', 0.3, [0.4])
        page.wait_for_function(
            f"() => document.querySelector('#scatter').dataset.points === '{int(points) + 1}'",
            timeout=10000)
        # the axes chosen stay
        assert page.eval_on_selector('#scatter-x', 'e => e.value') == 'param:hparams.lr'
        assert page.eval_on_selector('#scatter-y', 'e => e.value') == 'metric:loss@{}'
        assert page.is_checked('#scatter-logx')
    finally:
        run.close()
        if second is not None:
            second.close()
    assert_stops(page, 'scatters-live', reads)


def test_images_follow_the_newest_step_and_keep_an_older_one(server, page):
    url, path = server
    run = live_run(path, 'images-live', 0.05, [0.5])
    run.track(_image(200), name='samples', step=0)
    run.flush()
    try:
        reads = requests_to(page, '/api/objects/images')
        page.goto(url + '/images?q=' + "images.name == 'samples'")
        page.wait_for_selector('#page[data-ready="1"]')
        page.wait_for_function("() => !document.querySelector('#images-live').hidden")
        slider = '.step-range'
        assert page.eval_on_selector(slider, 'e => e.max') == '2'
        # the newest step is shown: new steps of the live run appear, the slider follows
        run.track(_image(210), name='samples', step=4)
        run.flush()
        page.wait_for_function(f"() => document.querySelector('{slider}').max === '4'",
                               timeout=10000)
        page.wait_for_function(
            f"() => ({STEPS})().includes('4')",
            timeout=10000)
        assert page.eval_on_selector(slider, 'e => e.value') == '4'
        # an open image stays open while the page follows the run
        page.click('#images-grid figure.image-card')
        page.wait_for_selector('.viewer')
        run.track(_image(215), name='samples', step=5)
        run.flush()
        page.wait_for_function(f"() => ({STEPS})().includes('5')", timeout=10000)
        assert page.locator('.viewer').count() == 1
        page.keyboard.press('Escape')
        # an older step chosen by the user stays chosen while the range grows
        page.eval_on_selector(slider,
                              "e => { e.value = '1'; e.dispatchEvent(new Event('input')); }")
        page.wait_for_function("() => new URL(location.href).searchParams.get('step') === '1'")
        run.track(_image(220), name='samples', step=6)
        run.flush()
        page.wait_for_function(f"() => document.querySelector('{slider}').max === '6'",
                               timeout=10000)
        assert page.eval_on_selector(slider, 'e => e.value') == '1'
        assert 'step=1' in page.url
        assert '6' not in page.evaluate(STEPS)
    finally:
        run.close()
    assert_stops(page, 'images-live', reads)
