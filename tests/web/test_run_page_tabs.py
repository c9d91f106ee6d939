"""The run page's tabs, notes and tag colours, and the runs table's tag chips and Compare
params, in a real headless Chromium against ``aim up``."""
from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from tests.web.live_server import CHROMIUM, aim_up, borrowed_browser
from tests.web.repo_factory import build_repo, quiet_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)'),
]
LAZY = ('/api/series', '/logs', '/records', '/objects', '/notes')
HOSTILE_NOTES = ('# Findings\n\nSome *emphasis*, **strong** and `code`, '
                 '[docs](https://example.com/a_(b)) and [evil](javascript:window.__xss=1) '
                 '[evil2](JaVaScRiPt:window.__xss=1) [data](data:text/html,<b>x</b>)\n\n'
                 '- one\n- two\n\n1. first\n\n'
                 '<script>window.__xss=1</script> <img src=x onerror="window.__xss=1">\n\n'
                 '```\n<img src=y onerror="window.__xss=1">\n```\n')


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('run_tabs'))
    hashes = build_repo(path, n_runs=3, steps=20)
    with aim_up(path) as url:
        yield url, hashes, path


@pytest.fixture(scope='module')
def browser():
    with borrowed_browser() as chromium:
        yield chromium


@pytest.fixture
def new_page(browser):
    pages = []

    def make(width: int = 1300, height: int = 900):
        p = browser.new_context(viewport={'width': width, 'height': height}).new_page()
        p.errors = []
        p.on('pageerror', lambda e: p.errors.append(str(e)))
        p.api = []
        p.on('request', lambda r: '/api/' in r.url and p.api.append(r.url))
        pages.append(p)
        return p
    yield make
    for p in pages:
        errors = p.errors
        p.context.close()
        assert errors == []


def ready(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('#page[data-ready]')


def asked(page, *parts) -> list[str]:
    return [u for u in page.api if any(part in u for part in parts)]


def api(url: str, method: str, path: str, body: dict) -> dict:
    token = json.loads(urllib.request.urlopen(url + '/api/status').read())['write_token']
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                 headers={'Content-Type': 'application/json',
                                          'X-Aim-Token': token})
    return json.loads(urllib.request.urlopen(req).read())


def test_tabs_are_linked_lazy_and_keyboard_driven(server, new_page):
    url, hashes, _ = server
    page = new_page()
    ready(page, f'{url}/runs/{hashes[1]}')
    assert page.get_attribute('#tab-overview', 'aria-selected') == 'true'
    assert page.locator('[role=tablist] [role=tab]').count() == 8
    assert asked(page, *LAZY) == []          # the overview reads nothing more
    # arrow keys move along the tabs and show each one; the address follows
    page.focus('#tab-overview')
    page.keyboard.press('ArrowRight')
    page.wait_for_selector('#panel-params[data-ready]')
    assert page.evaluate('document.activeElement.id') == 'tab-params'
    assert page.url.endswith('?tab=params') and page.is_hidden('#panel-overview')
    assert 'optimizer' in page.inner_text('#run-params')
    assert asked(page, *LAZY) == []          # params came with the run
    page.fill('#params-filter', 'LR')
    page.wait_for_function("() => document.querySelector('#params-filter-count').textContent === '1 match'")
    assert 'lr' in page.inner_text('#run-params') and 'optimizer' not in page.inner_text('#run-params')
    page.focus('#tab-params')
    page.keyboard.press('ArrowRight')
    page.wait_for_selector('#panel-metrics[data-ready]')
    assert page.locator('#run-traces .small-chart').count() == 3
    assert len(asked(page, '/api/series')) == 1 and asked(page, '/logs', '/notes', '/objects') == []
    page.keyboard.press('End')
    page.wait_for_selector('#panel-settings:not([hidden])')
    page.keyboard.press('Home')
    assert page.get_attribute('#tab-overview', 'aria-selected') == 'true'
    assert not page.url.endswith('tab=settings')
    page.keyboard.press('ArrowLeft')   # wraps round to the last tab
    assert page.get_attribute('#tab-settings', 'aria-selected') == 'true'
    # a link opens its tab, and only that tab reads its data
    fresh = new_page()
    ready(fresh, f'{url}/runs/{hashes[1]}?tab=logs')
    fresh.wait_for_selector('#panel-logs[data-ready] #run-logs')
    assert asked(fresh, '/logs') and asked(fresh, '/records')
    assert asked(fresh, '/api/series', '/notes', '/objects') == []
    ready(fresh, f'{url}/runs/{hashes[1]}#system')
    fresh.wait_for_selector('#panel-system[data-ready] #run-env')


def test_notes_render_safely_and_are_kept_with_the_run(server, new_page):
    from aim import Repo
    url, hashes, path = server
    page = new_page()
    ready(page, f'{url}/runs/{hashes[2]}?tab=notes')
    page.wait_for_selector('#panel-notes[data-ready] #run-notes-input')
    page.fill('#run-notes-input', HOSTILE_NOTES)
    preview = page.locator('#run-notes-preview')
    page.wait_for_function("() => document.querySelector('#run-notes-preview h1') !== null")
    assert preview.locator('h1').inner_text() == 'Findings'
    assert preview.locator('em').inner_text() == 'emphasis'
    assert preview.locator('ul li').count() == 2 and preview.locator('ol li').count() == 1
    hrefs = preview.locator('a').evaluate_all('(links) => links.map((a) => a.getAttribute("href"))')
    assert hrefs == ['https://example.com/a_(b)']
    assert preview.locator('script, img, iframe').count() == 0
    text = preview.inner_text()
    assert '<script>' in text and 'onerror=' in text and 'evil' in text
    assert page.inner_text('#notes-state') == 'unsaved changes'
    page.click('#save-notes')
    page.wait_for_function("() => document.querySelector('#run-message').textContent === 'Notes saved.'")
    assert Repo(path).get_run(hashes[2]).notes == HOSTILE_NOTES   # stored with the run
    page.reload()
    page.wait_for_selector('#panel-notes[data-ready] #run-notes-input')
    assert page.input_value('#run-notes-input') == HOSTILE_NOTES
    assert page.locator('#run-notes-preview strong').inner_text() == 'strong'
    # the renderer alone, on more hostile inputs
    found = page.evaluate("""async () => {
        const { renderMarkdown } = await import('/static/js/markdown.js');
        const inputs = ['[a](javascript:alert(1))', '[a]( javascript:alert(1))', '[a](vbscript:x)',
          '[a](//evil.example)', '[a](https://ok.example "t")', '<a href="javascript:x">a</a>',
          '**[a](java\\nscript:x)**', '# <svg onload=alert(1)>', '> <iframe src=x>', '`<b>`'];
        return inputs.map((s) => { const d = document.createElement('div'); d.append(renderMarkdown(s));
          return [...d.querySelectorAll('*')].map((n) => n.tagName + (n.getAttribute('href') ? ' ' + n.getAttribute('href') : '')); });
    }""")
    tags = {t for nodes in found for t in nodes}
    assert tags <= {'P', 'A https://ok.example/', 'STRONG', 'H1', 'BLOCKQUOTE', 'CODE', 'BR'}
    assert page.evaluate('window.__xss') is None


def test_tag_colours_editor_and_runs_table(server, new_page):
    url, hashes, _ = server
    api(url, 'PUT', '/api/tags/even', {'color': '#2a9d8f', 'description': 'an even run'})
    page = new_page()
    ready(page, f'{url}/runs/{hashes[0]}')
    chip = page.locator('#run-tag-chips .tag[data-tag=even]')
    assert chip.evaluate('(n) => getComputedStyle(n).backgroundColor') == 'rgb(42, 157, 143)'
    assert chip.get_attribute('title') == 'an even run'
    # completion offers the repository's other tags; Enter adds a chip, × removes one
    options = page.locator('#run-tag-options option').evaluate_all('(o) => o.map((x) => x.value)')
    assert options == ['odd']
    page.fill('#edit-tags', 'fresh')
    page.press('#edit-tags', 'Enter')
    page.wait_for_selector('#run-tag-chips .tag[data-tag=fresh]')
    page.click('#run-tags-editor .tag[data-tag=even] .tag-remove')
    page.wait_for_function("() => !document.querySelector('#run-tag-chips .tag[data-tag=even]')")
    run = json.loads(urllib.request.urlopen(f'{url}/api/runs/{hashes[0]}').read())
    assert run['props']['tags'] == ['fresh']
    # Settings: a colour picked there shows on the chips
    page.click('#tab-settings')
    row = page.locator('.tag-setting[data-tag=fresh]')
    row.locator('input[type=color]').fill('#ff8800')
    row.locator('button.save-tag').click()
    page.wait_for_function("() => document.querySelector('#run-tag-chips .tag[data-tag=fresh]').dataset.color === '#ff8800'")
    # renaming there renames it on every run, colour included
    page.once('dialog', lambda d: d.accept('ripe'))
    row.locator('button.rename-tag').click()
    page.wait_for_function("() => document.querySelector('#run-tag-chips .tag[data-tag=ripe]')?.dataset.color === '#ff8800'")
    run = json.loads(urllib.request.urlopen(f'{url}/api/runs/{hashes[0]}').read())
    assert run['props']['tags'] == ['ripe']
    # the runs table paints its chips; Compare params takes the selected runs
    ready(page, f'{url}/runs')
    page.wait_for_function("() => document.querySelector('.runs-table .tag[data-tag=even]')?.dataset.color === '#2a9d8f'")
    assert page.is_disabled('#compare-params')
    boxes = page.locator('.runs-table tbody input[type=checkbox]')
    boxes.nth(0).check()
    assert page.is_disabled('#compare-params')
    boxes.nth(1).check()
    selected = page.locator('.runs-table tbody tr.selected').evaluate_all('(r) => r.map((x) => x.dataset.hash)')
    page.click('#compare-params')
    page.wait_for_function("() => location.pathname === '/compare'")
    assert page.evaluate("new URLSearchParams(location.search).get('runs')").split(',') == selected


def test_only_the_visible_tab_polls_a_live_run(server, new_page):
    from aim import Repo
    url, _, path = server
    run = quiet_run(Repo(path), experiment='live-tabs')
    try:
        for s in range(3):
            run.track(s * 0.1, name='loss', step=s)
        time.sleep(1.2)  # folded into the index
        page = new_page()
        page.add_init_script('window.__aimLiveMs = 1000')   # polls every 0.6 s, not 3 s
        ready(page, f'{url}/runs/{run.hash}?tab=metrics')
        page.wait_for_selector('#panel-metrics[data-ready] #run-traces .small-chart')
        run.track(0.5, name='loss', step=3)
        page.wait_for_function("() => document.querySelector('#run-traces .small-chart .muted').textContent.includes('step 3')",
                               timeout=15_000)
        assert asked(page, 'since=') and asked(page, '/logs', '/records', '/notes') == []
    finally:
        run.close()
    page.wait_for_function("() => document.querySelector('.badge.live') === null", timeout=10_000)
    page.wait_for_timeout(300)
    settled = len(page.api)
    page.wait_for_timeout(1500)
    assert len(page.api) == settled          # nothing asked once the run has ended


def test_every_tab_fits_a_phone(server, new_page):
    url, hashes, _ = server
    page = new_page(390, 844)
    ready(page, f'{url}/runs/{hashes[0]}')
    too_wide = {}
    for tab in ['overview', 'params', 'metrics', 'system', 'logs', 'objects', 'notes', 'settings']:
        page.click(f'#tab-{tab}')
        page.wait_for_selector(f'#panel-{tab}[data-ready]')
        width = page.evaluate('document.documentElement.scrollWidth')
        if width > 390:
            too_wide[tab] = width
    assert too_wide == {}
