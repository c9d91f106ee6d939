"""The object pages (images, texts, audio, distributions, figures) and the run page's object
tabs in a real headless Chromium against a real ``aim up`` subprocess."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.web.live_server import CHROMIUM, aim_up, borrowed_browser, open_page
from tests.web.test_objects_api import HOSTILE, build_object_repo

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)'),
]
SHOTS = Path(__file__).resolve().parents[2] / 'test-output' / 'screenshots'
PLOTLY = Path(__file__).resolve().parents[2] / 'aim' / 'web' / 'static' / 'vendor' / \
    'plotly.min.js'


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f'{name}.png'), full_page=True)


@pytest.fixture(scope='module')
def object_repo(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('objbrowser'))
    return path, build_object_repo(path)


@pytest.fixture(scope='module')
def server(object_repo):
    path, hashes = object_repo
    with aim_up(path) as url:
        yield url, hashes


# plotly.js sets a few style attributes that the page's Content-Security-Policy (no inline
# styles) refuses; the figures draw regardless (see docs/ui.md, Figures).
PLOTLY_CSP = 'Applying inline style violates'


@pytest.fixture(scope='module')
def browser():
    """One Chromium for the module (each test gets its own context and page)."""
    with borrowed_browser() as chromium:
        yield chromium


@pytest.fixture
def new_page(browser):
    """Opens fresh pages (own context: no cache shared) that record script errors."""
    contexts = []

    def make(width: int = 1400, height: int = 900):
        p = open_page(width, height)
        contexts.append(p.context)
        return p
    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    p = new_page()
    yield p
    assert [e for e in p.console_errors if not e.startswith(PLOTLY_CSP)] == []


def ready(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('#page[data-ready]')


def test_images_grid_steps_grouping_and_hostile_captions(server, page):
    url, _ = server
    ready(page, url + '/images')
    cards = page.locator('figure.image-card')
    assert cards.count() == 9                     # 3 runs × (1 + a list of 2) at the newest step
    assert {cards.nth(i).get_attribute('data-step') for i in range(9)} == {'3'}
    assert page.locator('table.object-grid tbody tr').count() == 3   # a row per run
    # a caption full of markup is shown as text, never run
    assert page.get_by_text(HOSTILE).count() >= 1
    assert page.evaluate('window.__xss') is None
    page.wait_for_function("() => [...document.querySelectorAll('img.thumb')].every("
                           "(i) => i.complete && i.naturalWidth > 0)")
    assert all('thumb=' in src for src in page.eval_on_selector_all(
        'img.thumb', 'xs => xs.map((x) => x.getAttribute("src"))'))
    shot(page, 'images')
    # an older step, through the slider
    page.eval_on_selector('.step-range', "(r) => { r.value = '1'; "
                          "r.dispatchEvent(new Event('input', { bubbles: true })); }")
    page.wait_for_function("() => document.querySelector('figure.image-card')"
                           "?.dataset.step === '1'")
    assert 'step=1' in page.url
    page.select_option('select[aria-label="rendering"]', 'smooth')
    assert 'render=smooth' in page.url
    assert page.eval_on_selector('img.thumb', '(i) => getComputedStyle(i).imageRendering') == 'auto'
    # one index of the step's list
    page.select_option('#image-index', '1')
    assert page.locator('figure.image-card').count() == 3
    # columns by a context key
    page.select_option('select[aria-label="Columns"]', 'context.subset')
    heads = page.locator('table.object-grid thead th.group-label').all_inner_texts()
    assert sorted(heads) == ['(none)', 'val']
    # the query bar
    page.fill('.query-input', "images.name == 'samples' and run.hparams.lr > 0.005")
    page.keyboard.press('Enter')
    page.wait_for_function("() => document.querySelector('.objects-status')"
                           ".textContent.startsWith('2 series')")
    page.fill('.query-input', 'images.name ==')
    page.keyboard.press('Enter')
    page.wait_for_selector('.query-error:not([hidden])')


def test_image_full_size_view_with_zoom(server, page):
    url, _ = server
    ready(page, url + '/images?index=0')
    page.locator('figure.image-card').first.click()
    page.wait_for_selector('.viewer img.viewer-image')
    src = page.get_attribute('.viewer img.viewer-image', 'src')
    assert src.startswith('/api/blobs/') and 'thumb' not in src
    before = page.inner_text('.zoom-label')
    page.click('.viewer button[title="zoom in"]')
    assert page.inner_text('.zoom-label') != before
    shot(page, 'images-viewer')
    page.keyboard.press('Escape')
    assert page.locator('.viewer').count() == 0


def test_images_fetch_only_visible_thumbnails(server, new_page):
    url, _ = server
    page = new_page(width=900, height=300)
    thumbs = []
    page.on('request', lambda r: '/api/blobs/' in r.url and thumbs.append(r.url))
    ready(page, url + '/images?size=384')
    page.wait_for_timeout(300)
    total = page.locator('img.thumb').count()
    assert total == 9
    first = len(thumbs)
    assert 0 < first < total                     # only the ones on screen
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function(f"() => performance.getEntriesByType('resource').filter("
                           f"(e) => e.name.includes('/api/blobs/')).length > {first}")
    assert len(thumbs) > first                   # scrolled into view: fetched then
    assert page.console_errors == []


def test_texts_table_search_and_hostile_text(server, page):
    url, _ = server
    ready(page, url + '/texts')
    rows = page.locator('table.texts-table tbody tr')
    assert rows.count() == 12
    assert page.get_by_text(HOSTILE).count() == 4
    assert page.evaluate('window.__xss') is None
    page.fill('#text-search', 'prediction 1/')
    page.wait_for_function("() => document.querySelectorAll('table.texts-table tbody tr')"
                           ".length === 4")
    page.check('text=regular expression >> input')
    page.fill('#text-search', r'prediction [12]/[03]')
    page.wait_for_function("() => document.querySelectorAll('table.texts-table tbody tr')"
                           ".length === 4")
    page.fill('#text-search', '(')
    page.wait_for_selector('.objects-body .error')
    shot(page, 'texts')


def test_audio_players_and_distribution_heatmaps(server, page):
    url, _ = server
    ready(page, url + '/audios')
    players = page.locator('audio')
    assert players.count() == 3
    assert players.first.get_attribute('preload') == 'none'
    assert players.first.get_attribute('src').startswith('/api/blobs/')
    shot(page, 'audios')
    ready(page, url + '/distributions')
    assert page.locator('.dist-card').count() == 3
    assert page.locator('.dist-card canvas').count() == 6
    note = page.locator('.dist-card').first.locator('div.muted').last
    assert note.inner_text().startswith('step 3')
    page.eval_on_selector('.step-range', "(r) => { r.value = '0'; "
                          "r.dispatchEvent(new Event('input', { bubbles: true })); }")
    page.wait_for_function("() => document.querySelector('.dist-card div.muted:last-child')"
                           ".textContent.startsWith('step 0')")
    # the heatmap has ink: some pixel is not white
    assert page.evaluate("""() => { const c = document.querySelector('.dist-card canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 200) return true; return false; }""")
    shot(page, 'distributions')


def test_figures_drawn_by_plotly_or_say_how_to_install(server, page):
    url, _ = server
    if not PLOTLY.exists():
        pytest.skip('plotly.js is not installed (bash scripts/setup_web.sh)')
    ready(page, url + '/figures')
    if page.locator('.figure-card').count() == 0:
        pytest.skip('no figures tracked (plotly for Python missing)')
    page.wait_for_selector('.figure-plot[data-drawn] .main-svg', timeout=20000)
    assert page.locator('.figure-card').count() == 3
    page.wait_for_function("() => document.querySelectorAll('.figure-plot[data-drawn]')"
                           ".length === 3")
    shot(page, 'figures')


def test_figures_without_plotly_say_how_to_install(server, new_page):
    url, _ = server
    page = new_page()
    page.route('**/static/vendor/plotly.min.js', lambda r: r.fulfill(status=404, body=''))
    ready(page, url + '/figures')
    if page.locator('.figure-card').count() == 0:
        pytest.skip('no figures tracked (plotly for Python missing)')
    page.wait_for_selector('.figure-plot .error')
    assert 'scripts/setup_web.sh' in page.locator('.figure-plot .error').first.inner_text()
    assert page.console_errors == []


def test_run_page_object_tabs(server, page):
    url, hashes = server
    ready(page, url + f'/runs/{hashes[0]}?tab=objects')
    page.wait_for_selector('#run-objects .object-tabs button')
    tabs = page.locator('#run-objects .object-tabs button').all_inner_texts()
    assert tabs[:4] == ['Images (2)', 'Texts (1)', 'Audio (1)', 'Distributions (1)']
    page.wait_for_selector('#run-objects [data-kind="images"][data-ready] figure.image-card')
    assert page.locator('#run-objects figure.image-card').count() == 3
    page.click('#run-objects .object-tabs button[data-kind="texts"]')
    page.wait_for_selector('#run-objects [data-kind="texts"][data-ready] table')
    assert page.locator('#run-objects').get_by_text(HOSTILE).count() >= 4
    page.click('#run-objects .object-tabs button[data-kind="distributions"]')
    page.wait_for_selector('#run-objects [data-kind="distributions"][data-ready] canvas')
    assert page.evaluate('window.__xss') is None
    shot(page, 'run-objects')


PLAYER = """() => { const a = window.__player;
    return { connected: a.isConnected, paused: a.paused, time: a.currentTime,
             players: document.querySelectorAll('audio').length }; }"""


def test_playing_audio_survives_a_live_refresh_that_adds_a_series(object_repo, server, page):
    """A live re-read that brings a new series draws the grid again; the clip being played
    keeps its <audio> node, still playing, its position not reset. (Last in the module:
    its run is added to the shared repository, and deleted at the end.)"""
    import numpy as np

    from aim import Audio, Repo
    from tests.web.repo_factory import quiet_run
    path, _ = object_repo
    url, _ = server
    repo = Repo(path)
    run = quiet_run(repo, experiment='live-audio')
    run.name = 'audio-live'
    # 20 s at 8 kHz: playing still when the new series comes
    wave = (np.sin(np.arange(8000 * 20) * 2 * np.pi * 440 / 8000) * 0.1).astype(np.float32)
    run.track(Audio(wave, rate=8000, caption='long'), name='live-tone', step=0,
              context={'take': 1})
    run.flush()
    try:
        page.add_init_script('window.__aimLiveMs = 300;')
        ready(page, url + "/audios?q=audios.name == 'live-tone'")
        page.wait_for_function("() => !document.querySelector('#audios-live').hidden")
        # muted, a clip may play without a user gesture in headless Chromium
        page.evaluate("""async () => { const a = document.querySelector('audio');
            window.__player = a; a.muted = true; await a.play(); }""")
        page.wait_for_function('() => window.__player.currentTime > 0.3', timeout=10000)
        before = page.evaluate(PLAYER)
        run.track(Audio(wave[:4000], rate=8000, caption='short'), name='live-tone', step=0,
                  context={'take': 2})
        run.flush()
        page.wait_for_function("() => document.querySelectorAll('audio').length === 2",
                               timeout=10000)
        after = page.evaluate(PLAYER)
        assert after['connected'] and not after['paused'], after
        assert after['time'] >= before['time'], (before, after)
        assert page.evaluate("() => [...document.querySelectorAll('audio')]"
                             ".includes(window.__player)")
        page.wait_for_function(f"() => window.__player.currentTime > {after['time']} "
                               "&& !window.__player.paused")
    finally:
        run.close()
        repo.delete_run(run.hash)
