"""The experiments, run comparison, scatters and saved views pages in a real headless
Chromium against a real ``aim up`` (issue 16): one server and one browser for the module,
a small repository with a run and an experiment named with markup."""
from __future__ import annotations

import os
import urllib.parse

import pytest

from tests.web.live_server import CHROMIUM, aim_up, borrowed_browser
from tests.web.repo_factory import XSS_NAME, build_repo, quiet_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)'),
]


@pytest.fixture(scope='module')
def repo_info(tmp_path_factory):
    """Six runs of build_repo (experiments baseline and wide, run 0 named with markup) and
    one run in an experiment named with markup whose param holds markup."""
    from aim import Repo
    path = str(tmp_path_factory.mktemp('newpages'))
    hashes = build_repo(path, n_runs=6, steps=12)
    run = quiet_run(Repo(path), experiment=XSS_NAME)
    run.name = 'odd-one'
    run['note'] = XSS_NAME
    run['hparams'] = {'lr': 0.5}
    run.track(3.0, name='loss', step=0)
    run.close()
    return path, hashes + [run.hash]


@pytest.fixture(scope='module')
def server(repo_info):
    with aim_up(repo_info[0]) as url:
        yield url


@pytest.fixture(scope='module')
def browser():
    with borrowed_browser() as b:
        yield b


def _page(browser, width=1280, height=860):
    page = browser.new_page(viewport={'width': width, 'height': height})
    page.console_errors = []
    page.on('console', lambda m: m.type == 'error'
            and not m.text.startswith('Failed to load resource')
            and page.console_errors.append(m.text))
    page.on('pageerror', lambda e: page.console_errors.append(str(e)))
    page.set_default_timeout(15_000)
    return page


@pytest.fixture
def page(browser):
    p = _page(browser)
    yield p
    errors = p.console_errors
    p.close()
    assert errors == []


def _ready(page):
    page.wait_for_selector('#page[data-ready="1"]')


def _no_overflow(page) -> None:
    width = page.evaluate('() => document.documentElement.scrollWidth')
    assert width <= 390, f'the page is {width} px wide at a 390 px viewport'


def _no_script(page) -> None:
    assert page.evaluate('() => window.__xss') is None


def test_experiments_page(server, page):
    page.goto(server + '/experiments')
    _ready(page)
    rows = page.locator('tr.experiment-row')
    assert rows.count() == 3
    names = page.locator('td.exp-name').all_inner_texts()
    assert set(names) == {'baseline', 'wide', XSS_NAME}   # markup shows as text
    _no_script(page)
    baseline = page.locator('tr.experiment-row[data-experiment="baseline"]')
    assert baseline.locator('td.exp-runs').inner_text() == '3'
    assert baseline.locator('td.exp-active').inner_text() == '0'
    # lr takes 0.1, 0.01 and 0.001 on runs 0, 2, 4: the most varied param of baseline
    chips = baseline.locator('.exp-param-path').all_inner_texts()
    assert chips[0] == 'hparams.lr' and 'hparams.batch' not in chips   # batch is 32 on all
    # sorting by a header: runs, most first; again: fewest first
    page.click('th.sortable[data-sort="runs"]')
    page.wait_for_selector('th[data-sort="runs"][aria-sort="descending"]')
    assert page.locator('td.exp-name').all_inner_texts()[-1] == XSS_NAME
    page.click('th.sortable[data-sort="runs"]')
    page.wait_for_selector('th[data-sort="runs"][aria-sort="ascending"]')
    assert page.locator('td.exp-name').all_inner_texts()[0] == XSS_NAME
    page.fill('#experiments-filter', 'wid')
    page.wait_for_function("() => document.querySelectorAll('tr.experiment-row').length === 1")
    page.fill('#experiments-filter', '')
    # a click opens the runs page filtered to the experiment
    page.locator('tr.experiment-row[data-experiment="baseline"] td.exp-runs').click()
    page.wait_for_url('**/runs?q=*')
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)['q'][0]
    assert q == 'run.experiment == "baseline"'
    page.wait_for_function("() => document.querySelector('#runs-count')?.textContent === '3 runs'")
    # the experiment named with markup: its query is exact too
    page.goto(server + '/experiments')
    _ready(page)
    page.locator('td.exp-name a', has_text='run & co').click()
    page.wait_for_function("() => document.querySelector('#runs-count')?.textContent === '1 runs'")
    _no_script(page)


def test_compare_page(server, page, repo_info):
    hashes = repo_info[1]
    # runs 0 and 2: same batch (32) and optimizer (adam), lr 0.1 vs 0.001, seed 0 vs 2
    page.goto(f'{server}/compare?runs={hashes[0]},{hashes[2]}')
    _ready(page)
    assert page.locator('#compare-table thead th[data-hash]').count() == 2
    assert XSS_NAME in page.locator('#compare-table thead').inner_text()
    _no_script(page)
    lr = page.locator('tr.param-row[data-key="hparams.lr"]')
    batch = page.locator('tr.param-row[data-key="hparams.batch"]')
    assert 'differs' in lr.get_attribute('class')
    assert 'differs' not in batch.get_attribute('class')
    assert lr.locator('td').all_inner_texts() == ['0.1', '0.001']
    assert 'differs' not in page.locator('tr.param-row[data-key="hparams.optimizer"]') \
        .get_attribute('class')
    href = page.locator('#compare-metrics').get_attribute('href')
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)['runs'] == \
        [f'{hashes[0]},{hashes[2]}']
    # metric rows per name and context
    assert page.locator('tr.metric-row[data-key="acc (subset=val)"]').count() == 1
    # only differences: equal rows go, differing rows stay; kept in the URL
    page.check('#compare-only-diff')
    page.wait_for_function(
        "() => !document.querySelector('tr.param-row[data-key=\"hparams.batch\"]')")
    assert lr.count() == 1 and 'diff=1' in page.url
    # add a run by hash (run 3: batch 64 and sgd), then an unknown hash
    page.fill('#compare-add-hash', hashes[3])
    page.click('#compare-add')
    page.wait_for_function("() => document.querySelectorAll('#compare-table thead th[data-hash]')"
                           ".length === 3")
    assert batch.count() == 1 and 'differs' in batch.get_attribute('class')
    assert hashes[3] in page.url
    page.fill('#compare-add-hash', 'nosuchrun')
    page.keyboard.press('Enter')
    page.wait_for_selector('#compare-missing')
    assert 'nosuchrun' in page.locator('#compare-missing').inner_text()
    # remove a column
    page.locator(f'th[data-hash="{hashes[3]}"] .compare-remove').click()
    page.wait_for_function("() => document.querySelectorAll('#compare-table thead th[data-hash]')"
                           ".length === 2")


def test_scatters_page(server, page, repo_info):
    page.goto(server + '/scatters?x=param:hparams.lr&y=' +
              urllib.parse.quote('metric:loss@{}') + '&color=param:hparams.optimizer')
    _ready(page)
    canvas = page.locator('#scatter')
    assert canvas.get_attribute('data-points') == '7'      # every run has lr and loss
    legend = page.locator('#scatter-legend')
    assert legend.get_attribute('data-kind') == 'category'
    assert legend.locator('.scatter-category').all_inner_texts() == ['adam', 'sgd']
    assert 'null' not in legend.inner_text()
    # a query narrows the points to its runs
    page.fill('.query-input', 'run.experiment == "baseline"')
    page.keyboard.press('Enter')
    page.wait_for_function("() => document.querySelector('#scatter').dataset.points === '3'")
    # log x: lr 0.1, 0.01 and 0.001 sit a decade apart
    page.check('#scatter-logx')
    page.wait_for_function("() => location.search.includes('logx=1')")
    xs = sorted(p['x'] for p in page.evaluate(
        "() => document.querySelector('#scatter').scatterPoints"))
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1], abs=0.5)
    # colour by a numeric metric: a scale with its range
    page.select_option('#scatter-color', 'metric:acc@{"subset":"val"}')
    page.wait_for_function(
        "() => document.querySelector('#scatter-legend').dataset.kind === 'number'")
    assert float(legend.get_attribute('data-max')) > float(legend.get_attribute('data-min'))
    assert legend.get_attribute('data-scale') == 'linear'
    # hover names the run; a click opens it
    point = page.evaluate("() => document.querySelector('#scatter').scatterPoints[0]")
    box = canvas.bounding_box()
    page.mouse.move(box['x'] + point['x'], box['y'] + point['y'])
    page.wait_for_selector('#scatter-tooltip:not([hidden])')
    assert 'hparams.lr' in page.locator('#scatter-tooltip').inner_text()
    page.mouse.click(box['x'] + point['x'], box['y'] + point['y'])
    page.wait_for_url(f"**/runs/{point['hash']}")
    _ready(page)
    page.console_errors.clear()   # the run page has its own tests
    # the run named with markup shows as text in the tooltip
    page.goto(server + '/scatters?x=param:seed&y=' + urllib.parse.quote('metric:loss@{}') +
              '&color=param:hparams.lr')
    _ready(page)
    # lr from 0.001 to 0.5: more than two decades, coloured on a log scale
    assert legend.get_attribute('data-scale') == 'log'
    first = next(p for p in page.evaluate("() => document.querySelector('#scatter').scatterPoints")
                 if p['hash'] == repo_info[1][0])
    box = canvas.bounding_box()
    page.mouse.move(box['x'] + first['x'], box['y'] + first['y'])
    page.wait_for_selector('#scatter-tooltip:not([hidden])')
    assert XSS_NAME in page.locator('#scatter-tooltip').inner_text()
    _no_script(page)


def test_saved_views(server, page):
    page.goto(server + '/params?metrics=loss&color=loss')
    _ready(page)
    page.click('#save-view')
    page.fill('#save-view-name', XSS_NAME)
    page.fill('#save-view-description', 'loss colours')
    page.click('#save-view-submit')
    page.wait_for_selector('#save-view-status a[href="/views"]')
    page.click('#save-view-status a[href="/views"]')
    page.wait_for_url('**/views')
    _ready(page)
    row = page.locator('tr.view-row', has_text='loss colours')
    assert row.locator('.view-open').inner_text() == XSS_NAME
    assert row.locator('.view-path').inner_text() == '/params?metrics=loss&color=loss'
    _no_script(page)
    # rename
    row.locator('.view-rename-button').click()
    page.fill('input.view-rename', 'coloured by loss')
    page.click('.view-rename-save')
    page.wait_for_selector('.view-open:text-is("coloured by loss")')
    # open it: the page with its settings
    page.click('.view-open:text-is("coloured by loss")')
    page.wait_for_url('**/params?metrics=loss&color=loss')
    _ready(page)
    # delete (two steps)
    page.goto(server + '/views')
    _ready(page)
    row = page.locator('tr.view-row', has_text='loss colours')
    row.locator('.view-delete').click()
    row.locator('.view-delete-confirm').click()
    page.wait_for_function("() => !document.querySelector('tr.view-row')")


def test_narrow_screens(server, browser, repo_info):
    page = _page(browser, width=390, height=800)
    try:
        hashes = repo_info[1]
        for path in ('/experiments', f'/compare?runs={hashes[0]},{hashes[1]},{hashes[2]}',
                     '/scatters', '/views'):
            page.goto(server + path)
            _ready(page)
            _no_overflow(page)
        page.click('#save-view')
        assert page.locator('#save-view-panel').is_visible()
        _no_overflow(page)
        assert page.console_errors == []
    finally:
        page.close()


def test_a_view_outlives_the_server_and_read_only_keeps_it(server, repo_info, browser):
    """A view saved through one ``aim up`` is listed by the next one, here started with
    --read-only: it opens, but cannot be changed, and nothing can be saved."""
    import json
    import urllib.request
    with urllib.request.urlopen(server + '/api/status') as answer:
        token = json.loads(answer.read())['write_token']
    request = urllib.request.Request(
        server + '/api/views', method='POST', headers={'X-Aim-Token': token,
                                                       'Content-Type': 'application/json'},
        data=json.dumps({'name': 'kept', 'path': '/experiments'}).encode())
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 201
    with aim_up(repo_info[0], '--read-only') as url:
        page = _page(browser)
        try:
            page.goto(url + '/views')
            _ready(page)
            page.wait_for_function("() => document.querySelector('#save-view').disabled")
            assert page.locator('.view-open').all_inner_texts() == ['kept']
            assert page.locator('.view-delete, .view-rename-button').count() == 0
            page.click('.view-open')
            page.wait_for_url('**/experiments')
            _ready(page)
            assert page.console_errors == []
        finally:
            page.close()
