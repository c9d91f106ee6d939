"""Issue 16, the look and the small bugs, in a real headless Chromium against ``aim up``:
phone-sized pages, the dark theme, page titles, the not-found page, the empty
repository, the run page's polling and keyboard-sortable headers."""
from __future__ import annotations

import os
import time

import pytest

from tests.web.live_server import CHROMIUM, aim_up, borrowed_browser
from tests.web.repo_factory import XSS_NAME, build_repo, quiet_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)'),
]


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('polish'))
    hashes = build_repo(path, n_runs=3, steps=60)
    with aim_up(path) as url:
        yield url, hashes, path


@pytest.fixture(scope='module')
def empty_server(tmp_path_factory):
    from aim import Repo
    path = str(tmp_path_factory.mktemp('polish_empty'))
    Repo(path, init=True)
    with aim_up(path) as url:
        yield url


@pytest.fixture(scope='module')
def browser():
    with borrowed_browser() as chromium:
        yield chromium


@pytest.fixture
def new_page(browser):
    """Fresh pages in their own contexts; each records script errors, checked at the end."""
    pages = []

    def make(width: int = 1400, height: int = 900, **context_options):
        context = browser.new_context(viewport={'width': width, 'height': height},
                                      **context_options)
        p = context.new_page()
        p.console_errors = []
        p.on('console', lambda m: m.type == 'error'
             and not m.text.startswith('Failed to load resource')
             and p.console_errors.append(m.text))
        p.on('pageerror', lambda e: p.console_errors.append(str(e)))
        pages.append(p)
        return p
    yield make
    for p in pages:
        errors = p.console_errors
        p.context.close()
        assert errors == []


def ready(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('#page[data-ready]')


def test_no_page_is_wider_than_a_phone(server, new_page):
    url, hashes, _ = server
    page = new_page(390, 844)
    too_wide = {}
    for path in ['/runs', '/metrics', '/params', '/live', '/images', '/texts',
                 f'/runs/{hashes[0]}']:
        page.goto(url + path)
        if path in ('/runs', '/metrics') or path.startswith('/runs/'):
            page.wait_for_selector('#page[data-ready]')
        else:
            page.wait_for_load_state('networkidle')
        page.wait_for_timeout(150)
        width = page.evaluate('document.documentElement.scrollWidth')
        if width > 390:
            too_wide[path] = width
    assert too_wide == {}


def test_wide_screen_keeps_the_layout(server, new_page):
    url, _, _ = server
    page = new_page(2560, 1200)
    ready(page, url + '/runs')
    assert page.evaluate('document.documentElement.scrollWidth') <= 2560
    # the top bar stays one row on a wide screen
    assert page.evaluate("document.querySelector('.topbar').getBoundingClientRect().height") < 60


def _colours(page) -> tuple[float, float]:
    """(luminance of the page background, luminance of body text), 0 black .. 1 white."""
    return tuple(page.evaluate("""() => {
        const lum = (c) => { const [r, g, b] = c.match(/[\\d.]+/g).map(Number);
          return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255; };
        const body = getComputedStyle(document.body);
        const h1 = document.querySelector('h1, th, td, p') || document.body;
        return [lum(body.backgroundColor), lum(getComputedStyle(h1).color)];
    }"""))


def test_dark_theme_follows_the_system(server, new_page):
    url, hashes, _ = server
    light = new_page()
    ready(light, url + f'/runs/{hashes[1]}')
    background, text = _colours(light)
    assert background > 0.8 and text < 0.35
    dark = new_page(color_scheme='dark')
    for path in ['/runs', f'/runs/{hashes[1]}']:
        ready(dark, url + path)
        background, text = _colours(dark)
        assert background < 0.2 and text > 0.7, path
        card = dark.evaluate("getComputedStyle(document.querySelector('.card, .table-holder'))"
                             ".backgroundColor")
        assert card not in ('rgb(255, 255, 255)', 'rgba(0, 0, 0, 0)')


def test_every_page_has_its_own_title(server, new_page):
    url, hashes, _ = server
    page = new_page()
    ready(page, url + '/runs')
    assert page.title() == 'Runs · aim'
    page.click('nav a[data-page=metrics]')
    page.wait_for_function("() => document.title === 'Metrics · aim'")
    for path, title in [('/params', 'Params · aim'), ('/live', 'Live · aim'),
                        ('/images', 'Images · aim'), ('/texts', 'Texts · aim')]:
        page.goto(url + path)
        page.wait_for_function(f'() => document.title === {title!r}')
    ready(page, url + f'/runs/{hashes[1]}')
    assert page.title() == 'run-1 · aim'
    ready(page, url + f'/runs/{hashes[0]}')  # a name full of markup stays text
    assert page.title() == f'{XSS_NAME} · aim'
    assert page.evaluate('window.__xss') is None


def test_unknown_route_shows_a_page_not_found(server, new_page):
    import json
    import urllib.error
    import urllib.request
    url, _, _ = server
    page = new_page()
    response = page.goto(url + '/nope')
    assert response.status == 404
    assert 'text/html' in response.headers['content-type']
    page.wait_for_selector('#page[data-ready]')
    assert page.title() == 'Page not found · aim'
    assert 'not found' in page.inner_text('#page').lower()
    page.click('#page a[href="/runs"]')
    page.wait_for_function("() => document.title === 'Runs · aim'")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url + '/api/nope')
    assert caught.value.code == 404
    assert 'json' in caught.value.headers['content-type']
    assert json.loads(caught.value.read())['error']['type'] == 'HTTPError'
    # a route not found client-side (no server round trip) says so too
    page.evaluate("history.pushState(null, '', '/nope/deeper'); "
                  "dispatchEvent(new PopStateEvent('popstate'))")
    page.wait_for_function("() => document.title === 'Page not found · aim'")


def test_empty_repository_says_how_to_start(empty_server, new_page):
    page = new_page()
    for path in ['/runs', '/metrics']:
        ready(page, empty_server + path)
        text = page.inner_text('#page')
        assert 'No series match this query' not in text
        snippet = page.inner_text('#page .getting-started pre')
        assert snippet.startswith('from aim import Run') and 'Run().track(' in snippet


def test_run_page_stops_polling_once_the_run_has_finished(server, new_page):
    from aim import Repo
    url, _, path = server
    run = quiet_run(Repo(path), experiment='polled')
    try:
        for s in range(5):
            run.track(s * 0.1, name='loss', step=s)
        time.sleep(1.2)  # folded into the index
        page = new_page()
        page.add_init_script('window.__aimLiveMs = 1000')   # polls every 0.6 s, not 3 s
        polls = []
        page.on('request', lambda r: '/logs' in r.url and polls.append(time.monotonic()))
        ready(page, url + f'/runs/{run.hash}?tab=logs')
        page.wait_for_function('() => document.querySelector(".badge.live") !== null')
        started = len(polls)
        page.wait_for_timeout(1500)
        assert len(polls) > started  # polls while the run is written
    finally:
        run.close()
    page.wait_for_function("() => document.querySelector('.badge.live') === null", timeout=8000)
    page.wait_for_timeout(500)
    settled = len(polls)
    page.wait_for_timeout(1500)
    assert len(polls) == settled
    page.click('#tab-overview')
    assert 'finished' in page.inner_text('.props')


def test_sortable_headers_by_keyboard(server, new_page):
    url, _, _ = server
    page = new_page()
    ready(page, url + '/runs')
    header = page.locator('th.sortable[data-sort=name]')
    assert header.get_attribute('tabindex') == '0'
    header.focus()
    before = page.url
    page.keyboard.press('Enter')
    page.wait_for_function(f'() => location.href !== {before!r}')
    page.wait_for_function("() => document.activeElement && document.activeElement.dataset.sort === 'name'")
    first = page.url
    page.keyboard.press(' ')
    page.wait_for_function(f'() => location.href !== {first!r}')
    assert page.evaluate('window.scrollY') == 0  # Space sorted instead of scrolling
