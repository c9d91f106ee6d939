"""The params explorer in a real headless Chromium against a real ``aim up`` (issue 16,
bug 10): default axes are the params that vary across the selected runs and that most
runs have, a positive numeric param spanning more than two decades gets a log axis with
decade ticks, and the colour scale has a legend. Brushing ranges on axes selects runs (kept
in the URL), hover names the nearest run and a click opens it."""
from __future__ import annotations

import json
import math
import os

import pytest

from tests.web.live_server import CHROMIUM, aim_up, chromium_page
from tests.web.repo_factory import quiet_run
from tests.web.test_browser import shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)'),
]

LRS = [3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1]
XSS_NAME = '<img src=x onerror=alert(1)>'


def _build(path: str) -> list[dict]:
    """Eight runs (run 5 with a name full of markup). Alphabetically first come params
    that say nothing about the runs: the same everywhere (a_const, data.path) or set on one
    run (aaa_note, hparams.beta, hparams.comment); the first six names in order left lr and
    optimizer out."""
    from aim import Repo
    repo = Repo(path, init=True)
    made = []
    for i, lr in enumerate(LRS):
        run = quiet_run(repo)
        run.name = XSS_NAME if i == 5 else f'run-{i}'
        params = {'a_const': 'same', 'data': {'path': '/data'},
                  'hparams': {'lr': lr, 'optimizer': 'adam' if i % 2 else 'sgd',
                              'batch': 32 * (i % 2 + 1)}}
        if i == 3:
            params['aaa_note'] = 'only here'
            params['hparams'].update(beta=0.9, comment='tuned by hand')
        run['hparams'] = params['hparams']
        for key in ('a_const', 'data', 'aaa_note'):
            if key in params:
                run[key] = params[key]
        for step in range(3):
            run.track(0.5 + i / 10 - step / 100, name='loss', step=step)
            run.track(0.1 * i + step / 100, name='acc', step=step)
        run.close()
        made.append({'hash': run.hash, 'lr': lr, 'optimizer': params['hparams']['optimizer']})
    return made


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('paramsrepo'))
    return path, _build(path)


@pytest.fixture(scope='module')
def server(built):
    with aim_up(built[0]) as url:
        yield url


@pytest.fixture(scope='module')
def runs(built):
    return built[1]


@pytest.fixture
def page():
    with chromium_page() as p:
        yield p
        assert p.console_errors == []


def _axes(page) -> list[dict]:
    return json.loads(page.locator('#parallel').get_attribute('data-axes'))


def test_default_axes_log_scale_and_legend(server, page):
    page.goto(server + '/params')
    page.wait_for_selector('#page[data-ready="1"]')
    axes = _axes(page)
    assert [a['label'] for a in axes] == ['hparams.batch', 'hparams.lr', 'hparams.optimizer',
                                         'acc', 'loss']
    lr = axes[1]
    assert lr['scale'] == 'log'
    assert lr['ticks'] == ['1e-4', '0.001', '0.01', '0.1']
    assert axes[0]['scale'] == 'linear' and axes[0]['ticks'] == ['40', '50', '60']
    assert axes[2] == {'label': 'hparams.optimizer', 'scale': 'category',
                       'ticks': ['adam', 'sgd']}
    # the axes follow the runs: they are not written into the URL until the user picks
    assert 'params=' not in page.url
    # one stylesheet, loaded by the page; the legend shows the colour metric's range
    assert page.locator('link[href="/static/css/params.css"]').count() == 1
    legend = page.locator('#params-legend')
    assert legend.is_visible()
    assert legend.get_attribute('data-metric') == 'acc'
    assert float(legend.get_attribute('data-min')) == pytest.approx(0.02)
    assert float(legend.get_attribute('data-max')) == pytest.approx(0.72)
    assert 'acc (last value)' in legend.inner_text() and 'no value' in legend.inner_text()
    assert page.evaluate("getComputedStyle(document.querySelector('.params-legend')).display") \
        == 'flex'
    shot(page, 'params-explorer')

    page.select_option('#params-color', 'loss')
    page.wait_for_function("() => document.querySelector('#params-legend').dataset.metric "
                           "=== 'loss'")
    assert 'color=loss' in page.url
    page.select_option('#params-color', '')
    page.wait_for_function("() => document.querySelector('#params-legend').hidden")


def test_axes_follow_the_query_until_the_user_picks(server, page):
    page.goto(server + '/params')
    page.wait_for_selector('#page[data-ready="1"]')
    page.fill('.query-input', 'run.hparams.optimizer == "adam"')
    page.keyboard.press('Enter')
    page.wait_for_function("() => !JSON.parse(document.querySelector('#parallel').dataset.axes)"
                           ".some((a) => a.label === 'hparams.optimizer')")
    axes = _axes(page)
    # adam runs: batch is 64 on all of them, so only lr varies
    assert [a['label'] for a in axes] == ['hparams.lr', 'acc', 'loss']
    assert axes[0]['scale'] == 'log'     # 1e-4 ... 0.03
    # picking an axis makes the choice explicit (and kept in the URL)
    page.click('.columns-menu summary')
    page.locator('.columns-list label.check', has_text='hparams.batch').locator('input').check()
    page.wait_for_function("() => location.search.includes('params=hparams.lr%2Chparams.batch')"
                           " || location.search.includes('params=hparams.lr,hparams.batch')")
    assert [a['label'] for a in _axes(page)][:2] == ['hparams.lr', 'hparams.batch']
    page.reload()
    page.wait_for_selector('#page[data-ready="1"]')
    assert [a['label'] for a in _axes(page)][:2] == ['hparams.lr', 'hparams.batch']


# --- brushing, hover, the selected runs -------------------------------------------------
# Default axes: hparams.batch, hparams.lr (log, 3e-5 .. 0.1), hparams.optimizer (adam at
# the bottom, sgd at the top), acc, loss; data-layout gives the axes' x and the plot's
# top and bottom in CSS pixels of the canvas.

def _layout(page) -> dict:
    return json.loads(page.locator('#parallel').get_attribute('data-layout'))


def _y(layout: dict, t: float) -> float:
    return layout['top'] + (1 - t) * (layout['bottom'] - layout['top'])


def _lr_t(v: float) -> float:
    lo, hi = math.log10(LRS[0]), math.log10(LRS[-1])
    return (math.log10(v) - lo) / (hi - lo)


def _drag(page, x: float, y0: float, y1: float) -> None:
    box = page.locator('#parallel').bounding_box()
    page.mouse.move(box['x'] + x, box['y'] + y0)
    page.mouse.down()
    page.mouse.move(box['x'] + x, box['y'] + (y0 + y1) / 2, steps=3)
    page.mouse.move(box['x'] + x, box['y'] + y1, steps=3)
    page.mouse.up()


def _selected(page) -> set[str]:
    return set(page.evaluate("[...document.querySelectorAll('#params-selected tbody tr')]"
                             ".map((tr) => tr.dataset.hash)"))


def _hashes(runs, keep) -> set[str]:
    return {r['hash'] for r in runs if keep(r)}


def test_brushes_select_runs_and_survive_a_reload(server, page, runs):
    page.goto(server + '/params')
    page.wait_for_selector('#page[data-ready="1"]')
    assert page.locator('#params-count').inner_text().startswith('8 runs')
    assert page.locator('#params-selected').is_hidden()
    lay = _layout(page)
    x_lr, x_opt = lay['x'][1], lay['x'][2]
    # a value range on the log axis: 2e-4 .. 0.05
    _drag(page, x_lr, _y(lay, _lr_t(0.05)), _y(lay, _lr_t(2e-4)))
    expected = _hashes(runs, lambda r: 2e-4 <= r['lr'] <= 0.05)
    assert len(expected) == 5 and _selected(page) == expected
    assert page.locator('#params-count').inner_text() == '5 of 8 runs selected'
    # the categories inside a range: adam only; both brushes must pass
    _drag(page, x_opt, lay['bottom'] + 4, lay['bottom'] - 40)
    expected = _hashes(runs, lambda r: 2e-4 <= r['lr'] <= 0.05 and r['optimizer'] == 'adam')
    assert len(expected) == 2 and _selected(page) == expected
    assert page.locator('#params-count').inner_text() == '2 of 8 runs selected'
    assert 'brush=' in page.url
    shot(page, 'params-brushed')

    page.reload()
    page.wait_for_selector('#page[data-ready="1"]')
    assert _selected(page) == expected
    assert page.locator('#params-count').inner_text() == '2 of 8 runs selected'

    # dragging a brush moves it: down by a factor 0.05 / 0.015 on the lr axis
    shift = _y(lay, _lr_t(0.015)) - _y(lay, _lr_t(0.05))
    middle = _y(lay, _lr_t(3e-3))
    _drag(page, x_lr, middle, middle + shift)
    lo, hi = 2e-4 * 0.015 / 0.05, 0.015
    expected = _hashes(runs, lambda r: lo <= r['lr'] <= hi and r['optimizer'] == 'adam')
    assert len(expected) == 3 and _selected(page) == expected
    # a click on the axis outside its brush clears that brush
    box = page.locator('#parallel').bounding_box()
    page.mouse.click(box['x'] + x_opt, box['y'] + lay['top'] + 5)
    expected = _hashes(runs, lambda r: lo <= r['lr'] <= hi)
    assert len(expected) == 5 and _selected(page) == expected
    assert 'optimizer' not in page.url.split('brush=')[1]

    # the selected runs onward: the metrics explorer, back, then the comparison page
    page.click('#params-open-metrics')
    page.wait_for_url('**/metrics?runs=*')
    assert set(page.url.split('runs=')[1].split('&')[0].replace('%2C', ',').split(',')) \
        == expected
    page.go_back()
    page.wait_for_function("() => document.querySelectorAll('#params-selected tbody tr')"
                           ".length === 5")
    assert _selected(page) == expected
    page.click('#params-open-compare')
    page.wait_for_url('**/compare?runs=*')
    assert set(page.url.split('runs=')[1].split('&')[0].replace('%2C', ',').split(',')) \
        == expected


def test_axis_reorder_clear_and_a_narrow_touch_screen(server, page, runs):
    page.goto(server + '/params?brush=hparams.lr:0.0001:0.001;hparams.optimizer=sgd')
    page.wait_for_selector('#page[data-ready="1"]')
    expected = _hashes(runs, lambda r: 1e-4 <= r['lr'] <= 1e-3 and r['optimizer'] == 'sgd')
    assert len(expected) == 1 and _selected(page) == expected
    # dragging the optimizer axis' title to the left end moves the axis there
    lay = _layout(page)
    box = page.locator('#parallel').bounding_box()
    title_y = box['y'] + lay['top'] - 22
    page.mouse.move(box['x'] + lay['x'][2], title_y)
    page.mouse.down()
    page.mouse.move(box['x'] + lay['x'][1], title_y, steps=3)
    page.mouse.move(box['x'] + lay['x'][0] - 20, title_y, steps=3)
    page.mouse.up()
    order = ['hparams.optimizer', 'hparams.batch', 'hparams.lr', 'acc', 'loss']
    assert [a['label'] for a in _axes(page)] == order
    assert 'order=' in page.url and _selected(page) == expected
    # a chip per brush names its range; its button clears that brush alone
    chip = page.locator('.params-brush-chip[data-axis="hparams.lr"]')
    assert chip.text_content().startswith('hparams.lr 0.0001 – 0.001')
    page.click('.params-brush-chip[data-axis="hparams.optimizer"] button')
    assert _selected(page) == _hashes(runs, lambda r: 1e-4 <= r['lr'] <= 1e-3)
    page.click('#params-clear')
    assert page.locator('#params-selected').is_hidden()
    assert page.locator('#params-count').inner_text().startswith('8 runs')
    assert 'brush=' not in page.url

    # 390 px wide, touch: nothing overflows; a tap names the nearest run, with a link to it
    context = page.context.browser.new_context(viewport={'width': 390, 'height': 800},
                                               has_touch=True)
    try:
        narrow = context.new_page()
        errors = []
        narrow.on('pageerror', lambda e: errors.append(str(e)))
        narrow.goto(server + '/params?brush=hparams.lr:0.0001:0.001')
        narrow.wait_for_selector('#page[data-ready="1"]')
        assert len(_selected(narrow)) == 3
        assert narrow.evaluate('document.documentElement.scrollWidth') <= 390
        assert narrow.locator('#parallel').bounding_box()['width'] <= 390
        lay = _layout(narrow)
        run = runs[2]                    # lr 3e-4, sgd: the batch axis at 32
        x0, x1 = lay['x'][0], lay['x'][1]
        x = x0 + (x1 - x0) * 0.6
        y = _y(lay, 0.0) + (_y(lay, _lr_t(run['lr'])) - _y(lay, 0.0)) * 0.6
        box = narrow.locator('#parallel').bounding_box()
        narrow.touchscreen.tap(box['x'] + x, box['y'] + y)
        tip = narrow.locator('#params-tooltip')
        tip.wait_for(state='visible')
        assert tip.get_attribute('data-hash') == run['hash']
        assert '/params' in narrow.url
        assert tip.locator('a').get_attribute('href') == f'/runs/{run["hash"]}'
        shot(narrow, 'params-narrow')
        assert errors == []
    finally:
        context.close()


def test_hover_names_the_run_and_a_click_opens_it(server, page, runs):
    page.goto(server + '/params')
    page.wait_for_selector('#page[data-ready="1"]')
    lay = _layout(page)
    x_lr, x_opt = lay['x'][1], lay['x'][2]
    run = runs[5]                        # lr 0.01, adam, named with markup
    y_lr, y_opt = _y(lay, _lr_t(run['lr'])), _y(lay, 0.0)
    x = x_lr + 40
    y = y_lr + (y_opt - y_lr) * 40 / (x_opt - x_lr)
    box = page.locator('#parallel').bounding_box()
    page.mouse.move(box['x'] + x, box['y'] + y)
    tip = page.locator('#params-tooltip')
    tip.wait_for(state='visible')
    assert tip.get_attribute('data-hash') == run['hash']
    text = tip.inner_text()
    assert XSS_NAME in text                       # shown as text
    assert tip.locator('img').count() == 0
    assert 'hparams.lr: 0.01' in text and 'hparams.optimizer: adam' in text
    assert 'acc: 0.52' in text
    page.mouse.click(box['x'] + x, box['y'] + y)
    page.wait_for_url(f'**/runs/{run["hash"]}')

