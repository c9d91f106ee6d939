"""Runs table (issue 16) in a real headless Chromium against a real ``aim up``: sorting by a
metric with contexts, the select-page checkbox, menus that close, archived runs on demand,
CSV export and bulk archive / tag / delete of the selected runs."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from aim import Repo
from tests.web.live_server import CHROMIUM, aim_up, chromium_page
from tests.web.repo_factory import quiet_run


def browser(test):
    return pytest.mark.browser(pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)')(test))

# last values per run; the train and val orders differ from each other and from hash order
TRAIN = [0.2, 0.9, 0.5, 0.7]
VAL = [0.8, 0.1, 0.6, 0.3]
SHOTS = Path(__file__).resolve().parents[2] / 'test-output' / 'screenshots'
FORMULA_NAME = '=HYPERLINK("http://x", "y")'


def make_runs(path: str, n: int) -> list[str]:
    repo = Repo(path, init=True)
    hashes = []
    for i in range(n):
        run = quiet_run(repo, experiment='exp')
        run.name = FORMULA_NAME if i == 3 else f'run-{i}'
        run['hparams'] = {'lr': 0.1 * (i + 1)}
        for step, scale in enumerate((2.0, 1.0)):
            run.track(TRAIN[i % 4] * scale, name='acc', step=step, context={'subset': 'train'})
            run.track(VAL[i % 4] * scale, name='acc', step=step, context={'subset': 'val'})
        run.close()
        hashes.append(run.hash)
    return hashes


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """Four runs with acc in two contexts, and a fifth, archived run."""
    path = str(tmp_path_factory.mktemp('runstable'))
    hashes = make_runs(path, 5)
    run = quiet_run(Repo(path), run_hash=hashes[4])
    run.archived = True
    run.close()
    with aim_up(path) as url:
        yield url, hashes, path


@pytest.fixture
def page():
    with chromium_page() as p:
        yield p
        assert p.console_errors == []


def row_hashes(page) -> list[str]:
    return page.eval_on_selector_all('table.runs-table tbody tr',
                                     'rows => rows.map(r => r.dataset.hash)')


def wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function('([s, t]) => document.querySelector(s).textContent === t',
                           arg=[selector, text])


def open_table(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('#page[data-ready="1"]')


@browser
def test_sort_by_a_metric_with_contexts(server, page):
    url, hashes, _ = server
    open_table(page, url + '/runs?metrics=acc')
    train = page.locator('th.sortable', has_text='subset=train')
    val = page.locator('th.sortable', has_text='subset=val')
    assert train.count() == 1 and val.count() == 1   # a column per context, labelled
    by_train = [hashes[i] for i in sorted(range(4), key=lambda i: TRAIN[i])]
    by_val = [hashes[i] for i in sorted(range(4), key=lambda i: VAL[i])]
    train.click()
    page.wait_for_function("() => document.querySelector('th[data-sort*=\"train\"]')"
                           ".textContent.endsWith('▲')")
    assert row_hashes(page) == by_train
    assert 'sort=metric%3Aacc%40' in page.url or 'sort=metric:acc@' in page.url
    # each cell shows its own context's value
    column = page.evaluate("() => [...document.querySelectorAll('thead th')]"
                           ".findIndex(th => th.dataset.sort && th.dataset.sort.includes('train'))")
    first = page.locator('table.runs-table tbody tr').first.locator('td').nth(column)
    assert first.inner_text() == '0.2'
    page.locator('th.sortable', has_text='subset=train').click()
    page.wait_for_function("() => document.querySelector('th[data-sort*=\"train\"]')"
                           ".textContent.endsWith('▼')")
    assert row_hashes(page) == by_train[::-1]
    page.locator('th.sortable', has_text='subset=val').click()
    page.wait_for_function("() => document.querySelector('th[data-sort*=\"val\"]')"
                           ".textContent.endsWith('▲')")
    assert row_hashes(page) == by_val
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / 'runs-sorted-by-context.png'), full_page=True)
    # an address sorted by plain metric:acc (from before contexts had columns): the first
    # context's column carries the arrow, and the rows follow it
    open_table(page, url + '/runs?metrics=acc&sort=metric:acc')
    assert page.locator('th.sortable', has_text='subset=train').inner_text().endswith('▲')
    assert row_hashes(page) == by_train


@browser
def test_select_page_checkbox_follows_the_selection(server, page):
    url, _, _ = server
    open_table(page, url + '/runs')
    select_page = page.locator('input[aria-label="select page"]')
    runs = page.locator('input[aria-label="select run"]')
    select_page.click()
    wait_text(page, '#compare', 'Compare 4 selected')
    assert select_page.is_checked()
    assert all(runs.nth(i).is_checked() for i in range(4))
    select_page.click()   # a second click deselects the page, it does not add it again
    wait_text(page, '#compare', 'Compare selected')
    assert not select_page.is_checked()
    assert not any(runs.nth(i).is_checked() for i in range(4))
    runs.nth(1).check()
    assert page.locator('#select-page').evaluate('box => box.indeterminate')
    runs.nth(0).check()
    page.click('#deselect-all')
    assert not any(runs.nth(i).is_checked() for i in range(4))
    assert page.locator('#compare').is_disabled()


@browser
def test_menus_close_on_escape_and_outside_click(server, page):
    url, _, _ = server
    open_table(page, url + '/runs')
    menu = page.locator('details.columns-menu')
    menu.locator('summary').click()
    page.wait_for_selector('.columns-list', state='visible')
    page.keyboard.press('Escape')
    page.wait_for_selector('.columns-list', state='hidden')
    assert menu.get_attribute('open') is None
    menu.locator('summary').click()
    page.wait_for_selector('.columns-list', state='visible')
    page.locator('h1').click()
    page.wait_for_selector('.columns-list', state='hidden')
    # a click inside the menu keeps it open
    menu.locator('summary').click()
    page.locator('.columns-list input[type=checkbox]').first.click()
    assert menu.get_attribute('open') is not None


@browser
def test_show_archived_toggle(server, page):
    url, hashes, _ = server
    open_table(page, url + '/runs')
    assert sorted(row_hashes(page)) == sorted(hashes[:4])   # archived runs hidden
    page.check('#show-archived')
    wait_text(page, '#runs-count', '5 runs')
    assert 'archived=1' in page.url
    assert page.locator(f'tr[data-hash="{hashes[4]}"] .badge').inner_text() == 'archived'
    # with a query too: the toggle adds the archived runs that match it
    page.fill('.query-input', 'run.hparams.lr > 0.25')
    page.keyboard.press('Enter')
    wait_text(page, '#runs-count', '3 runs')
    assert hashes[4] in row_hashes(page)
    page.uncheck('#show-archived')
    wait_text(page, '#runs-count', '2 runs')
    assert hashes[4] not in row_hashes(page)


@browser
def test_export_csv_has_the_visible_columns_in_table_order(server, page):
    url, hashes, _ = server
    sort = 'metric:acc@{"subset":"val"}'
    open_table(page, url + f'/runs?metrics=acc&params=hparams.lr&sort=-{sort}')
    with page.expect_download() as download:
        page.click('#export-csv')
    text = Path(download.value.path()).read_text(encoding='utf-8')
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ['hash', 'Name', 'Experiment', 'Tags', 'Created', 'Status', 'hparams.lr',
                       'acc (subset=train)', 'acc (subset=val)']
    by_val = [hashes[i] for i in sorted(range(4), key=lambda i: -VAL[i])]
    assert [r[0] for r in rows[1:]] == by_val
    assert [float(r[8]) for r in rows[1:]] == sorted(VAL, reverse=True)
    # a name a spreadsheet would run as a formula is exported as text
    assert "'" + FORMULA_NAME in [r[1] for r in rows]


@browser
def test_bulk_tag_archive_and_delete(tmp_path, page):
    hashes = make_runs(str(tmp_path), 3)
    with aim_up(str(tmp_path)) as url:
        open_table(page, url + '/runs')
        assert page.locator('#bulk-archive').is_disabled()   # nothing selected
        for h in hashes[:2]:
            page.check(f'tr[data-hash="{h}"] input[aria-label="select run"]')
        page.click('#tag-menu summary')
        page.fill('#bulk-tag-input', '<b>best</b>')
        page.click('#bulk-tag-add')
        wait_text(page, '#bulk-status', 'Tagged 2 runs.')
        for h in hashes[:2]:
            assert page.locator(f'tr[data-hash="{h}"] .tag').inner_text() == '<b>best</b>'
        assert page.locator(f'tr[data-hash="{hashes[2]}"] .tag').count() == 0
        page.click('#bulk-archive')
        wait_text(page, '#runs-count', '1 runs')
        page.check('#show-archived')
        wait_text(page, '#runs-count', '3 runs')
        page.once('dialog', lambda d: d.accept())
        page.click('#bulk-delete')
        wait_text(page, '#bulk-status', 'Deleted 2 runs.')
        wait_text(page, '#runs-count', '1 runs')
        assert page.locator('#compare').is_disabled()
    repo = Repo(str(tmp_path))
    assert [r.hash for r in repo.iter_runs()] == [hashes[2]]


@browser
def test_bulk_actions_disabled_on_a_read_only_server(server, page):
    _, hashes, path = server
    with aim_up(path, '--read-only') as url:
        open_table(page, url + '/runs')
        page.check(f'tr[data-hash="{hashes[0]}"] input[aria-label="select run"]')
        for button in ('#bulk-archive', '#bulk-unarchive', '#bulk-delete'):
            assert page.locator(button).is_disabled()
        assert not page.locator('#compare').is_disabled()


@pytest.mark.backends
def test_api_sorts_by_a_metric_context_and_adds_archived_runs(repo_location):
    """The API under the page, on both backends: `metric:<name>@<context>` sorts by that
    context's last value; `metric:<name>` by the context-less series, else the first
    context; `archived=true` adds archived runs to any query's answer, and without it the
    query rule holds for the empty query too: archived runs only when the query mentions
    run.archived."""
    from fastapi.testclient import TestClient

    from aim.web.app import create_app
    hashes = make_runs(repo_location, 4)
    run = quiet_run(Repo(repo_location), run_hash=hashes[3])
    run.archived = True
    run.close()
    client = TestClient(create_app(Repo(repo_location)))

    def order(**params):
        answer = client.get('/api/runs', params=params)
        assert answer.status_code == 200, answer.text
        return [r['hash'] for r in answer.json()['runs']]

    by_train = [hashes[i] for i in sorted(range(4), key=lambda i: TRAIN[i])]
    by_val = [hashes[i] for i in sorted(range(4), key=lambda i: VAL[i])]
    assert order(sort='metric:acc@{"subset": "train"}', archived=True) == by_train
    assert order(sort='-metric:acc@{"subset":"val"}', archived=True) == by_val[::-1]
    assert order(sort='metric:acc', archived=True) == by_train   # first context: train
    assert set(order(q='run.hparams.lr > 0')) == set(hashes[:3])
    assert set(order(q='run.hparams.lr > 0', archived=True)) == set(hashes)
    assert set(order(q='SELECT acc IF run.hparams.lr > 0', archived=True)) == set(hashes)
    assert set(order()) == set(order(archived=False)) == set(hashes[:3])
    assert set(order(archived=True)) == set(hashes)
    assert order(q='run.archived', archived=False) == [hashes[3]]
