"""The params explorer in a real headless Chromium against a real ``aim up`` (issue 16,
bug 10): default axes are the params that vary across the selected runs and that most
runs have, a positive numeric param spanning more than two decades gets a log axis with
decade ticks, and the colour scale has a legend. Brushing ranges on axes selects runs (kept
in the URL), hover names the nearest run and a click opens it."""
from __future__ import annotations

import json
import math
import os
import time

import pytest

from tests.web.live_server import CHROMIUM, aim_up, chromium_page, open_page
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
    narrow = open_page(390, 800, has_touch=True)
    context = narrow.context
    errors = narrow.console_errors
    try:
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



# --- keyboard brushing and touch (a swipe scrolls, an axis strip brushes) ----------------

def _brush_url(page) -> dict:
    from urllib.parse import parse_qs, urlparse
    # location.href, not page.url: Playwright learns of a replaceState a moment later
    text = parse_qs(urlparse(page.evaluate('location.href')).query).get('brush', [''])[0]
    return {part.split(':')[0].split('=')[0]: part for part in text.split(';') if part}


def _focused_axis(page) -> str | None:
    return page.evaluate('document.activeElement.dataset.axis ?? null')


def test_keyboard_brushes_an_axis(server, page, runs):
    page.goto(server + '/params')
    page.wait_for_selector('#page[data-ready="1"]')
    assert 'Shift+Up/Down' in page.locator('#params-keys').inner_text()
    strips = page.locator('.params-axis-strip')
    assert strips.count() == 5
    assert strips.evaluate_all('(ss) => ss.every((s) => s.tabIndex === 0)')
    # Tab reaches the first axis from the controls above the chart, then the next one;
    # Left/Right move between axes too
    page.focus('#params-color')
    for _ in range(4):                       # past the live badge, if any
        page.keyboard.press('Tab')
        if _focused_axis(page) is not None:
            break
    assert _focused_axis(page) == 'hparams.batch'
    page.keyboard.press('Tab')
    assert _focused_axis(page) == 'hparams.lr'
    page.keyboard.press('ArrowRight')
    page.keyboard.press('ArrowLeft')
    strip = page.locator('.params-axis-strip[data-axis="hparams.lr"]')
    assert _focused_axis(page) == 'hparams.lr'
    assert strip.evaluate("(s) => s.matches(':focus-visible') "
                          "&& getComputedStyle(s).outlineStyle === 'solid'")
    assert strip.get_attribute('aria-label') == 'hparams.lr, log axis: no selection'

    # Up makes a brush over the middle fifth of the log axis, Shift+Up extends its top by a
    # twentieth, Up moves it by a twentieth (a factor on a log axis)
    lo10, hi10 = math.log10(LRS[0]), math.log10(LRS[-1])

    def value(t):
        return 10 ** (lo10 + t * (hi10 - lo10))

    def check(t0, t1, n):
        part = _brush_url(page)['hparams.lr']
        lo, hi = (float(v) for v in part.split(':')[1:])
        assert lo == pytest.approx(value(t0), rel=2e-3) and hi == pytest.approx(value(t1), rel=2e-3)
        expected = _hashes(runs, lambda r: lo <= r['lr'] <= hi)
        assert len(expected) == n and _selected(page) == expected
        assert page.locator('#params-count').inner_text() == f'{n} of 8 runs selected'
        return lo, hi

    page.keyboard.press('ArrowUp')
    check(0.4, 0.6, 2)                                     # 7.7e-4 .. 3.9e-3
    for _ in range(3):
        page.keyboard.press('Shift+ArrowUp')
    check(0.4, 0.75, 3)                                    # .. 0.013: 0.01 in
    label = strip.get_attribute('aria-label')
    assert label.startswith('hparams.lr, log axis: selected ') and '–' in label
    page.keyboard.press('Shift+ArrowDown')
    check(0.4, 0.7, 2)                                     # .. 8.8e-3: 0.01 out
    page.keyboard.press('End')
    check(0.7, 1.0, 3)                                     # the top end (0.1) kept
    page.keyboard.press('Home')
    check(0.0, 0.3, 3)                                     # the bottom end (3e-5) kept
    page.keyboard.press('ArrowUp')
    lo, hi = check(0.05, 0.35, 2)                          # 4.5e-5 .. 5.1e-4

    # a category axis: the first key selects the middle category, Up the next one
    page.keyboard.press('ArrowRight')
    assert _focused_axis(page) == 'hparams.optimizer'
    page.keyboard.press('ArrowDown')
    assert _brush_url(page)['hparams.optimizer'] == 'hparams.optimizer=adam'
    page.keyboard.press('ArrowUp')
    assert _brush_url(page)['hparams.optimizer'] == 'hparams.optimizer=sgd'
    expected = _hashes(runs, lambda r: lo <= r['lr'] <= hi and r['optimizer'] == 'sgd')
    assert len(expected) == 1 and _selected(page) == expected
    # Escape and Delete clear the focused axis' brush alone
    page.keyboard.press('Escape')
    assert 'hparams.optimizer' not in _brush_url(page)
    assert page.locator('.params-axis-strip[data-axis="hparams.optimizer"]') \
        .get_attribute('aria-label') == 'hparams.optimizer, categories: no selection'
    page.keyboard.press('ArrowLeft')
    page.keyboard.press('Delete')
    assert 'brush=' not in page.url
    assert page.locator('#params-selected').is_hidden()
    assert page.locator('#params-count').inner_text().startswith('8 runs')
    assert _focused_axis(page) == 'hparams.lr'


def _settle(page) -> int:
    """scrollY once scrolling has stopped (unchanged over three reads 150 ms apart: a
    renderer starved by a busy machine may skip a frame; 6 s at most)."""
    y = page.evaluate('scrollY')
    still = 0
    for _ in range(40):
        page.wait_for_timeout(150)
        y, last = page.evaluate('scrollY'), y
        still = still + 1 if y == last else 0
        if still == 3:
            break
    return y


def _swipe(cdp, x: float, y0: float, y1: float, steps: int = 8) -> None:
    """A one-finger swipe from (x, y0) to (x, y1), in CSS pixels of the viewport, that
    rests at its end before the finger lifts: no fling goes on scrolling after it (on a
    busy machine a fling outlived the checks and took the next swipe for itself)."""
    def touch(kind, points):
        cdp.send('Input.dispatchTouchEvent', {'type': kind, 'touchPoints': points})
    touch('touchStart', [{'x': x, 'y': y0}])
    for i in range(1, steps + 1):
        touch('touchMove', [{'x': x, 'y': y0 + (y1 - y0) * i / steps}])
    for _ in range(3):
        time.sleep(0.06)
        touch('touchMove', [{'x': x, 'y': y1}])
    touch('touchEnd', [])


def test_touch_swipe_scrolls_and_an_axis_strip_brushes(server, page, runs):
    phone = open_page(390, 560, has_touch=True, is_mobile=True)
    context = phone.context
    errors = phone.console_errors
    try:
        phone.goto(server + '/params')
        phone.wait_for_selector('#page[data-ready="1"]')
        cdp = context.new_cdp_session(phone)
        lay = _layout(phone)
        box = phone.locator('#parallel').bounding_box()
        assert box['y'] + lay['bottom'] > 300          # the chart reaches below the middle
        # a one-finger swipe up between two axes scrolls the page, and brushes nothing
        x = box['x'] + (lay['x'][0] + lay['x'][1]) / 2
        y0 = min(box['y'] + lay['bottom'] - 10, 540)
        _swipe(cdp, x, y0, y0 - 200)
        phone.wait_for_function('() => window.scrollY > 40', timeout=10_000)
        assert 'brush=' not in phone.url
        assert phone.locator('#params-count').inner_text().startswith('8 runs')
        # a swipe that starts on an axis' strip brushes it, and does not scroll
        scrolled = _settle(phone)                      # a fling may go on a while
        strip = phone.locator('.params-axis-strip[data-axis="hparams.lr"]').bounding_box()
        box = phone.locator('#parallel').bounding_box()
        assert strip['width'] <= 30
        sx = strip['x'] + strip['width'] / 2
        _swipe(cdp, sx, box['y'] + _y(lay, _lr_t(0.05)), box['y'] + _y(lay, _lr_t(2e-4)))
        phone.wait_for_function("() => location.search.includes('brush=')", timeout=10_000)
        assert phone.evaluate('window.scrollY') == scrolled
        part = _brush_url(phone)['hparams.lr']
        lo, hi = (float(v) for v in part.split(':')[1:])
        expected = _hashes(runs, lambda r: lo <= r['lr'] <= hi)
        assert lo == pytest.approx(2e-4, rel=0.2) and hi == pytest.approx(0.05, rel=0.2)
        assert len(expected) == 5 and _selected(phone) == expected
        assert errors == []
    finally:
        context.close()
