"""The metrics explorer of issue 16: server-side CMA smoothing and x aligned by another
metric (API), and in a real Chromium against a real ``aim up``: distinguishable train /
val lines, system metrics last, readable numbers, the series table (show / hide, value at
the cursor, min / max / last), ignoring outliers, rectangle zoom with its history,
aggregation lines and bands."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

from aim import Repo
from aim.web.downsample import cma
from tests.web.live_server import CHROMIUM, aim_up, chromium_page
from tests.web.repo_factory import quiet_run

STEPS = 200
SPIKE_STEP = 101
SPIKE = 50.0
TINY = 6.306263089267136e-05


def loss_of(i: int, s: int) -> float:
    if i == 0 and s == SPIKE_STEP:
        return SPIKE
    return math.exp(-s / 60) + 0.1 * i + 0.02 * math.sin(s * (i + 1))


def tokens_of(i: int, s: int) -> float:
    return float(s * 100 + 7 * i) if s % 3 else float('nan')  # a gap every third step


@pytest.fixture(scope='module')
def repo_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('explorer'))
    repo = Repo(path, init=True)
    hashes = []
    for i in range(3):
        run = quiet_run(repo, experiment='explore')
        run.name = f'explore-{i}'
        run['hparams'] = {'lr': 0.1 / (i + 1), 'opt': 'adam' if i else 'sgd'}
        for s in range(STEPS):
            run.track(loss_of(i, s), name='loss', step=s, context={'subset': 'train'})
            if s % 5 == 0:
                run.track(loss_of(i, s) + 0.05, name='loss', step=s, context={'subset': 'val'})
            run.track(tokens_of(i, s), name='tokens', step=s)
            run.track(TINY * (1 + s / STEPS), name='grad', step=s)
            run.track(10.0 + i, name='__system__cpu', step=s)
        run.close()
        hashes.append(run.hash)
    return path, hashes


@pytest.fixture(scope='module')
def client(repo_path):
    from fastapi.testclient import TestClient

    from aim.web.app import create_app
    path, hashes = repo_path
    with TestClient(create_app(Repo(path))) as c:
        yield c, hashes


def series(client, **params):
    answer = client.get('/api/series', params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def reference_cma(values, window):
    half = window // 2
    finite = [k for k, v in enumerate(values) if math.isfinite(v)]
    out = list(values)
    for pos, k in enumerate(finite):
        near = finite[max(0, pos - half):pos + half + 1]
        out[k] = sum(values[j] for j in near) / len(near)
    return np.array(out)


@pytest.mark.parametrize('window', [1, 2, 3, 10, 51, 4001])
def test_cma_matches_the_centred_average(window):
    rng = np.random.default_rng(4)
    values = rng.normal(size=1001) * 3 + 1e6  # far from 0: the sums must keep precision
    values[rng.random(len(values)) < 0.05] = np.nan
    values[7] = np.inf
    got, want = cma(values, window), reference_cma(values.tolist(), window | 1 if window > 1
                                                   else 1)
    assert np.array_equal(np.isnan(got), np.isnan(want)) and got[7] == np.inf
    finite = np.isfinite(want)
    assert np.allclose(got[finite], want[finite], rtol=1e-12, atol=1e-6)


def test_cma_smoothing_in_the_api_at_any_width_and_zoom(client):
    c, hashes = client
    want = reference_cma([loss_of(0, s) for s in range(STEPS)], 21)
    for params in ({'width': 1000}, {'width': 20}, {'width': 20, 'x_min': 90, 'x_max': 120}):
        got = series(c, runs=hashes[0], names='loss', q='', smoothing_kind='cma', window=21,
                     **params)
        assert got['smoothing_kind'] == 'cma' and got['window'] == 21
        s = next(x for x in got['series'] if x['context'] == {'subset': 'train'})
        steps = np.array(s['step'], dtype=int)
        assert np.allclose(s['y'], want[steps], rtol=1e-12)
    # the EMA is still the default kind, and the kinds are cached apart
    ema = series(c, runs=hashes[0], names='loss', smoothing=0.5, width=1000)
    assert ema['smoothing_kind'] == 'ema'
    assert ema['series'][0]['y'] != got['series'][0]['y']
    bad = c.get('/api/series', params={'runs': hashes[0], 'smoothing_kind': 'median'})
    assert bad.status_code == 400 and bad.json()['error']['type'] == 'InvalidSmoothing'
    live = c.get('/api/series', params={'runs': hashes[0], 'smoothing_kind': 'cma',
                                        'window': 5, 'since': 0})
    assert live.status_code == 400


def test_x_axis_aligned_by_another_metric(client):
    c, hashes = client
    got = series(c, runs=','.join(hashes), names='loss,grad', x_axis='metric:tokens')
    assert got['x_axis'] == 'metric:tokens'
    runs = {h: i for i, h in enumerate(hashes)}
    seen = 0
    for s in got['series']:
        i = runs[s['run']]
        assert s['step'] and all(step % 3 for step in s['step'])  # NaN tokens: left out
        for x, y, step in zip(s['x'], s['y'], s['step']):
            assert x == tokens_of(i, step)
            if s['name'] == 'loss' and s['context'] == {'subset': 'train'}:
                assert y == loss_of(i, step)
        seen += 1
    assert seen == 3 * 3  # loss train, loss val, grad: each aligned by the run's tokens
    # zoomed: the range is on the new x axis
    zoomed = series(c, runs=hashes[1], names='loss', x_axis='metric:tokens',
                    x_min=5000, x_max=6000)
    for s in zoomed['series']:
        inside = [x for x in s['x'] if 5000 <= x <= 6000]
        assert inside and len(s['x']) <= len(inside) + 2  # one neighbour each side
    missing = series(c, runs=hashes[0], names='loss', x_axis='metric:nothing')
    assert all(s['n'] == 0 for s in missing['series'])
    bad = c.get('/api/series', params={'runs': hashes[0], 'x_axis': 'steps'})
    assert bad.status_code == 400 and bad.json()['error']['type'] == 'InvalidXAxis'


# --- in the browser -------------------------------------------------------------------

def in_browser(test):
    test = pytest.mark.browser(test)
    return pytest.mark.skipif(not os.path.exists(CHROMIUM), reason='needs /usr/bin/chromium '
                              '(scripts/setup_web.sh installs it)')(test)


@pytest.fixture(scope='module')
def site(repo_path):
    path, hashes = repo_path
    with aim_up(path) as url:
        yield url, hashes


@pytest.fixture(scope='module')
def page(site):
    with chromium_page(1400, 900) as p:
        p.series_requests = []
        p.on('request', lambda r: '/api/series?' in r.url and p.series_requests.append(r.url))
        yield p
        assert p.console_errors == []


def open_view(page, site, query=''):
    url, hashes = site
    page.goto(f'{url}/metrics?runs={",".join(hashes)}{query}')
    page.wait_for_selector('#page[data-ready="1"]')
    return hashes


CHARTS = '''() => window.__aimCharts.map((c) => c.chartKey)'''


def chart_of(page, key):
    keys = page.evaluate(CHARTS)
    assert key in keys, keys
    return keys.index(key)


def point_at(page, index, x, y=None):
    """Page coordinates of data (x, y) on chart ``index`` (y None: the plot's middle)."""
    box = page.locator('.chart-overlay').nth(index).bounding_box()
    px, py = page.evaluate('''([i, x, y]) => { const c = window.__aimCharts[i];
        return [c.px(c.xOf(x)), y === null ? (c.py(c.b.ylo) + c.py(c.b.yhi)) / 2
                                           : c.py(c.yOf(y))]; }''', [index, x, y])
    return box['x'] + px, box['y'] + py


def drag(page, start, end):
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=4)
    page.mouse.up()


def table_rows(page):
    """[run hash, metric, context, cursor value, its step, min, max, last] per row."""
    return page.eval_on_selector_all('.series-table tbody tr', '''rs => rs.map((r) => [
        r.dataset.run, r.cells[3].textContent, r.cells[4].textContent,
        ...['.cursor-value', '.series-min', '.series-max', '.series-last'].flatMap((c, k) =>
          k ? [r.querySelector(c).textContent] : [r.querySelector(c).textContent,
                                                  r.querySelector(c).dataset.step])])''')


@in_browser
def test_train_and_val_differ_system_metrics_last_numbers_readable(site, page):
    hashes = open_view(page, site)
    keys = page.evaluate(CHARTS)
    assert keys[-1] == '__system__cpu' and set(keys) == {'loss', 'tokens', 'grad', '__system__cpu'}
    # colour by run, line style by context: a run's train and val lines look different
    i = chart_of(page, 'loss')
    styles = page.evaluate(f'''() => window.__aimCharts[{i}].lines.map((l) =>
        [l.meta.s.run, JSON.stringify(l.meta.s.context), l.color, l.dash])''')
    assert len(styles) == 6
    for run in hashes:
        mine = {(ctx, color, dash) for r, ctx, color, dash in styles if r == run}
        assert len(mine) == 2 and len({(c, d) for _, c, d in mine}) == 2
    assert 'context:' in page.inner_text('#legend')
    # the table lists every series, system metrics last
    metrics = [r[1] for r in table_rows(page)]
    assert len(metrics) == 15 and metrics[-3:] == ['__system__cpu'] * 3
    assert '__system__cpu' not in metrics[:-3]
    # a tiny value: six significant digits in exponent notation
    g = chart_of(page, 'grad')
    y = page.evaluate(f'() => window.__aimCharts[{g}].lines[0].y[10]')
    page.mouse.move(*point_at(page, g, 10, y))
    page.wait_for_selector('.chart-tooltip:not([hidden])')
    tip = page.locator('.chart-tooltip:not([hidden])').inner_text()
    value = next(line for line in tip.splitlines() if line.startswith('value: '))[7:]
    assert value.endswith('e-5') and len(value.split('e')[0].replace('.', '')) <= 6, tip
    assert abs(float(value) - TINY * (1 + 10 / STEPS)) <= 1e-5 * TINY
    assert 'hparams.lr: 0.1' in tip or 'hparams.lr: 0.05' in tip or 'hparams.lr: 0.0333333' in tip
    page.mouse.move(5, 5)
    lasts = [r[7] for r in table_rows(page) if r[1] == 'grad']
    assert lasts and all(len(c) <= 10 and abs(float(c) / (TINY * (1 + 199 / STEPS)) - 1) < 1e-5
                         for c in lasts), lasts


@in_browser
def test_series_table_hides_lines_and_reads_values_at_the_cursor(site, page):
    hashes = open_view(page, site, '&chart=metric.name')
    i = chart_of(page, 'loss')
    rows = table_rows(page)
    train = [r for r in rows if r[1] == 'loss' and r[2] == 'subset=train']
    # min / max / last over the visible range: the spike is the max of run 0
    first = next(r for r in train if r[0] == hashes[0])
    assert float(first[6]) == SPIKE and first[5] == first[3]  # cursor off: the last value
    assert abs(float(first[7]) - loss_of(0, STEPS - 1)) < 1e-5 and first[4] == str(STEPS - 1)
    # the value at the cursor is the stored value at the step under it
    page.mouse.move(*point_at(page, i, 57))
    head = "() => document.querySelector('#cursor-head').textContent"
    page.wait_for_function(f"{head}.includes('57')")
    for run_hash, name, ctx, value, step, *_ in table_rows(page):
        if name == 'loss' and ctx == 'subset=train':
            assert step == '57' and abs(float(value) - loss_of(hashes.index(run_hash), 57)) < 1e-5
        if name == 'loss' and ctx == 'subset=val':  # tracked every 5 steps: the nearest
            assert step == '55'
    page.mouse.move(5, 5)
    page.wait_for_function(f"{head} === 'last value'")
    # hiding a series removes its line without asking the server again
    before = len(page.series_requests)
    page.locator(f'.series-table tr[data-run="{hashes[0]}"]', has_text='subset=train')\
        .first.locator('input[type=checkbox]').uncheck()
    lines = page.evaluate(f'''() => window.__aimCharts[{i}].lines.map((l) =>
        l.meta.s.run + JSON.stringify(l.meta.s.context))''')
    assert len(lines) == 5 and hashes[0] + '{"subset":"train"}' not in lines
    assert 'hide=' in page.url and len(page.series_requests) == before
    assert page.evaluate(f'() => window.__aimCharts[{i}].b.yhi') < 10  # the spike went too
    page.reload()
    page.wait_for_selector('#page[data-ready="1"]')
    assert page.evaluate(f'() => window.__aimCharts[{i}].lines.length') == 5
    page.locator('.series-table thead input[type=checkbox]').check()
    assert page.evaluate(f'() => window.__aimCharts[{i}].lines.length') == 6
    assert 'hide=' not in page.url


@in_browser
def test_ignore_outliers_keeps_the_spike_clipped(site, page):
    open_view(page, site)
    i = chart_of(page, 'loss')
    assert page.evaluate(f'() => window.__aimCharts[{i}].b.yhi') >= SPIKE
    page.check('#ignore-outliers')
    page.wait_for_function("() => location.search.includes('robust=1')")
    i = chart_of(page, 'loss')
    top, peak = page.evaluate(f'''() => {{ const c = window.__aimCharts[{i}];
        return [c.b.yhi, Math.max(...c.lines.flatMap((l) => Array.from(l.y)))]; }}''')
    assert top < 3 and peak == SPIKE  # drawn, clipped at the top


@in_browser
def test_rectangle_zoom_back_and_reset(site, page):
    open_view(page, site, '&robust=1')  # without the spike's range, a rectangle is tall
    i = chart_of(page, 'loss')
    page.series_requests.clear()
    # a rectangle: x and y
    drag(page, point_at(page, i, 40, 1.2), point_at(page, i, 120, 0.3))
    page.wait_for_selector('#page[data-ready="1"]')
    page.wait_for_function("() => location.search.includes('ymin=')")
    assert any('x_min=' in u for u in page.series_requests)  # full resolution re-query
    i = chart_of(page, 'loss')
    b = page.evaluate(f'() => window.__aimCharts[{i}].b')
    assert 38 < b['xlo'] < 42 and 118 < b['xhi'] < 122
    assert 0.25 < b['ylo'] < 0.35 and 1.15 < b['yhi'] < 1.25
    other = page.evaluate(f'() => window.__aimCharts[{chart_of(page, "grad")}].b')
    assert other['yhi'] < 1e-3  # the y range is the loss chart's alone
    # then an x-only drag, then Back twice
    drag(page, point_at(page, i, 60), point_at(page, i, 80))
    page.wait_for_function("() => !location.search.includes('ymin=')")
    page.wait_for_selector('#page[data-ready="1"]')
    page.click('#zoom-back')
    page.wait_for_function("() => location.search.includes('ymin=')")
    page.wait_for_selector('#page[data-ready="1"]')
    b = page.evaluate(f'() => window.__aimCharts[{chart_of(page, "loss")}].b')
    assert 38 < b['xlo'] < 42 and 0.25 < b['ylo'] < 0.35
    page.keyboard.press('Backspace')
    page.wait_for_function("() => !location.search.includes('xmin=')")
    page.wait_for_selector('#page[data-ready="1"]')
    assert page.is_disabled('#zoom-back')
    drag(page, point_at(page, i, 60), point_at(page, i, 80))
    page.wait_for_function("() => location.search.includes('xmin=')")
    page.click('#reset-zoom')
    page.wait_for_function("() => !location.search.includes('xmin=')")
    assert page.is_disabled('#zoom-back')


def interpolated(i, x, fn=loss_of):
    k = int(math.floor(x))
    if k >= STEPS - 1:
        return fn(i, STEPS - 1)
    return fn(i, k) + (fn(i, k + 1) - fn(i, k)) * (x - k)


@in_browser
def test_aggregation_median_and_bands_keep_the_spike(site, page):
    # train and val are one group here (no colour, no style): use the train chart only
    open_view(page, site, '&agg=median&color=none&style=none&chart=context')
    i = chart_of(page, 'subset=train')
    got = page.evaluate(f'''() => {{ const c = window.__aimCharts[{i}];
        const l = c.lines[0]; const b = c.bands[0];
        let k = 0; for (let j = 1; j < b.hi.length; j++) if (b.hi[j] > b.hi[k]) k = j;
        return {{ x: Array.from(l.x), y: Array.from(l.y), top: b.hi[k], topX: b.x[k],
                 lo: Array.from(b.lo), hi: Array.from(b.hi) }}; }}''')
    assert got['top'] == SPIKE and abs(got['topX'] - SPIKE_STEP) <= 1.5
    for j in range(0, len(got['x']), 37):
        x = got['x'][j]
        values = sorted(interpolated(r, x) for r in range(3))
        if SPIKE_STEP - 1 <= x <= SPIKE_STEP + 1:
            continue
        assert abs(got['y'][j] - values[1]) < 1e-5, (x, got['y'][j], values)
    # 95 % CI of the mean: t(2 df) * sample std / sqrt(3)
    page.select_option('#agg-band', 'ci95')
    page.wait_for_function("() => location.search.includes('band=ci95')")
    band = page.evaluate(f'''() => {{ const b = window.__aimCharts[{i}].bands[0];
        return [Array.from(b.x), Array.from(b.lo), Array.from(b.hi)]; }}''')
    for j in range(3, len(band[0]), 41):
        x = band[0][j]
        values = np.array([interpolated(r, x) for r in range(3)])
        half = 4.303 * values.std(ddof=1) / math.sqrt(3)
        assert abs(band[1][j] - (values.mean() - half)) < 1e-4
        assert abs(band[2][j] - (values.mean() + half)) < 1e-4
    page.select_option('#aggregate', 'mean')
    page.wait_for_function("() => location.search.includes('agg=mean')")
    page.select_option('#agg-band', '')
    page.wait_for_function("() => location.search.includes('band=none')")
    page.reload()
    page.wait_for_selector('#page[data-ready="1"]')
    assert page.input_value('#agg-band') == '' and page.input_value('#aggregate') == 'mean'
    assert page.evaluate(f'() => window.__aimCharts[{i}].bands.length') == 0


@in_browser
def test_cma_smoothing_and_x_by_a_metric_in_the_page(site, page):
    hashes = open_view(page, site, '&chart=metric.name')
    page.check('#smoothing-on')
    page.wait_for_selector('#page[data-ready="1"]')
    with page.expect_request(lambda r: 'smoothing_kind=cma' in r.url and 'window=21' in r.url):
        page.select_option('#smoothing-kind', 'cma')
        page.fill('#smoothing-window', '21')
        page.dispatch_event('#smoothing-window', 'change')
    page.wait_for_function("() => location.search.includes('smooth=cma%3A21')")
    page.wait_for_selector('#page[data-ready="1"]')
    i = chart_of(page, 'loss')
    line = page.evaluate(f'''() => {{ const l = window.__aimCharts[{i}].lines.find((l) =>
        l.meta.s.run === '{hashes[0]}' && l.meta.s.context.subset === 'train');
        return [Array.from(l.x), Array.from(l.y)]; }}''')
    want = reference_cma([loss_of(0, s) for s in range(STEPS)], 21)
    assert np.allclose(line[1], want[np.array(line[0], dtype=int)], rtol=1e-6)
    page.uncheck('#smoothing-on')
    page.wait_for_selector('#page[data-ready="1"]')
    with page.expect_request(lambda r: 'x_axis=metric%3Atokens' in r.url):
        page.select_option('#x-axis', 'metric:tokens')
    page.wait_for_selector('#page[data-ready="1"]')
    assert 'x=metric%3Atokens' in page.url
    i = chart_of(page, 'loss')
    line = page.evaluate(f'''() => {{ const l = window.__aimCharts[{i}].lines.find((l) =>
        l.meta.s.run === '{hashes[2]}' && l.meta.s.context.subset === 'train');
        return [Array.from(l.x), Array.from(l.meta.s.step)]; }}''')
    assert line[0] and all(x == tokens_of(2, int(s)) for x, s in zip(*line))


def test_system_metrics_come_after_the_others_in_the_api(client):
    c, hashes = client
    names = [s['name'] for s in series(c, runs=hashes[0], width=10)['series']]
    assert names[-1] == '__system__cpu' and names.count('__system__cpu') == 1
    # and so max_series keeps the run's own metrics first
    kept = [s['name'] for s in series(c, runs=hashes[0], width=10, max_series=3)['series']]
    assert '__system__cpu' not in kept
    newest = [s['name'] for s in series(c, width=10)['series'][:5]]
    assert newest[-1] == '__system__cpu'


def url_zoom(page):
    return page.evaluate("() => { const q = new URLSearchParams(location.search); return "
                         "['xmin', 'xmax', 'ymin', 'ymax', 'ychart'].map((k) => q.get(k)); }")


@in_browser
def test_keyboard_zoom_requeries_keeps_history_and_resets(site, page):
    open_view(page, site, '&chart=metric.name')
    page.mouse.move(5, 5)   # off the charts: the keys zoom around the middle
    i = chart_of(page, 'loss')
    overlay = page.locator('.chart-overlay').nth(i)
    assert overlay.get_attribute('tabindex') == '0'
    label = overlay.get_attribute('aria-label')
    assert 'metric.name = loss' in label and '0 resets' in label, label
    assert page.evaluate(f'() => {{ const b = window.__aimCharts[{i}].b; '
                         'return [b.xlo, b.xhi]; }') == [0, STEPS - 1]
    # keys typed into a text field are the field's
    page.focus('.query-input')
    page.keyboard.type('+-0')
    page.keyboard.press('ArrowLeft')
    assert url_zoom(page)[0] is None and page.input_value('.query-input').endswith('+-0')
    page.fill('.query-input', '')
    page.series_requests.clear()
    overlay.focus()
    page.keyboard.press('=')
    page.wait_for_function("() => location.search.includes('xmin=')")
    page.wait_for_selector('#page[data-ready="1"]')
    assert any('x_min=' in u for u in page.series_requests)  # full resolution re-query
    mid, span = (STEPS - 1) / 2, STEPS - 1
    xmin, xmax, *_ = url_zoom(page)
    assert abs(float(xmin) - (mid - span / 4)) < 1e-6 and abs(float(xmax) - (mid + span / 4)) < 1e-6
    i = chart_of(page, 'loss')
    b = page.evaluate(f'() => window.__aimCharts[{i}].b')
    assert abs(b['xlo'] - float(xmin)) < 1e-9 and abs(b['xhi'] - float(xmax)) < 1e-9
    # the redrawn chart has the focus (and its ring): the keys go on
    assert page.evaluate(f'() => document.activeElement === window.__aimCharts[{i}].overlay '
                         '&& document.activeElement.style.outline.startsWith("2px solid")')
    page.keyboard.press('ArrowRight')   # pans by a fifth of the span
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('xmin') !== '{xmin}'")
    page.wait_for_selector('#page[data-ready="1"]')
    assert abs(float(url_zoom(page)[0]) - (float(xmin) + span / 10)) < 1e-6
    page.keyboard.press('Shift+ArrowUp')   # y: halved around the middle, this chart only
    page.wait_for_function("() => location.search.includes('ymin=')")
    *_, ymin, ymax, ychart = url_zoom(page)
    assert ychart == 'loss'
    i = chart_of(page, 'loss')
    b = page.evaluate(f'() => window.__aimCharts[{i}].b')
    assert abs(b['ylo'] - float(ymin)) < 1e-9 and abs(b['yhi'] - float(ymax)) < 1e-9
    page.keyboard.press('-')   # x wider again, the y zoom kept
    page.wait_for_function("() => +new URLSearchParams(location.search).get('xmax') - "
                           f"+new URLSearchParams(location.search).get('xmin') > {span / 2 + 1}")
    page.wait_for_selector('#page[data-ready="1"]')
    assert url_zoom(page)[4] == 'loss'
    # every key zoom went on the history: Back (Backspace) returns to the one before
    assert not page.is_disabled('#zoom-back')
    page.keyboard.press('Backspace')
    page.wait_for_function("() => +new URLSearchParams(location.search).get('xmax') - "
                           f"+new URLSearchParams(location.search).get('xmin') < {span / 2 + 1}")
    page.wait_for_selector('#page[data-ready="1"]')
    page.locator('.chart-overlay').nth(chart_of(page, 'loss')).focus()
    page.keyboard.press('0')
    page.wait_for_function("() => !location.search.includes('xmin=') && "
                           "!location.search.includes('ymin=')")
    page.wait_for_selector('#page[data-ready="1"]')
    assert page.is_disabled('#zoom-back')
    i = chart_of(page, 'loss')
    assert page.evaluate(f'() => {{ const b = window.__aimCharts[{i}].b; '
                         'return [b.xlo, b.xhi]; }') == [0, STEPS - 1]


@in_browser
def test_hidden_series_url_is_short_and_old_json_links_still_open(site, page):
    import json
    from urllib.parse import quote
    url, hashes = site
    # a bookmark from before: hide= a JSON list of run|name|context keys
    old = json.dumps([f'{hashes[0]}|loss|{{"subset":"train"}}', f'{hashes[1]}|grad|{{}}'])
    page.goto(f'{url}/metrics?runs={",".join(hashes)}&chart=metric.name&hide={quote(old)}')
    page.wait_for_selector('#page[data-ready="1"]')
    runs_of = '''(i) => window.__aimCharts[i].lines.map((l) =>
        l.meta.s.run + JSON.stringify(l.meta.s.context))'''
    loss = page.evaluate(runs_of, chart_of(page, 'loss'))
    assert len(loss) == 5 and hashes[0] + '{"subset":"train"}' not in loss
    assert hashes[1] + '{}' not in page.evaluate(runs_of, chart_of(page, 'grad'))
    # written back in the short form: 8 characters of the hash, the name, the context
    short = f'hide={hashes[0][:8]}:loss:subset=train,{hashes[1][:8]}:grad'
    assert page.url.endswith(short), page.url
    assert page.inner_text('#series-hidden-count') == '2 hidden'
    # the short form opens as well, and a row unticked joins it
    page.reload()
    page.wait_for_selector('#page[data-ready="1"]')
    assert len(page.evaluate(runs_of, chart_of(page, 'loss'))) == 5
    page.locator(f'.series-table tr[data-run="{hashes[2]}"]', has_text='subset=val')\
        .first.locator('input[type=checkbox]').uncheck()
    assert page.url.endswith(short + f',{hashes[2][:8]}:loss:subset=val'), page.url
    assert len(page.evaluate(runs_of, chart_of(page, 'loss'))) == 4
    page.locator('.series-table thead input[type=checkbox]').check()
    assert 'hide=' not in page.url
