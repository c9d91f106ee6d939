"""Chart bugs of issue 16, in a real Chromium against a real ``aim up``: resizing,
log-scale ticks and a log x axis, isolated points and divergence to NaN, spikes in the
aggregation band, smoothing that does not change with the chart's width, and the live
page's legend, zoom and tooltip."""
from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from aim import Repo
from tests.web.live_server import CHROMIUM, aim_up, chromium_page
from tests.web.repo_factory import quiet_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)'),
]
SPIKE_STEP = 1501   # between two points of the old 400-point aggregation grid
STEPS = 3000


@contextlib.contextmanager
def browser_page(width=1400, height=900, scale=1):
    with chromium_page(width, height, device_scale_factor=scale) as page:
        yield page
        assert page.console_errors == []


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('chartbugs'))
    repo = Repo(path, init=True)
    rng = np.random.default_rng(5)
    hashes = {}
    for i in range(2):
        run = quiet_run(repo, experiment='spikes')
        run.name = f'spiky-{i}'
        for s in range(STEPS):
            v = math.exp(-s / 1000) + 0.05 * i
            if i == 0 and s == SPIKE_STEP:
                v = 50.0
            run.track(v, name='spiky', step=s)
            run.track(10 ** (-4 * s / STEPS), name='decades', step=s)
            run.track(float(rng.normal()), name='noisy', step=s)
        run.close()
        hashes[f'spiky-{i}'] = run.hash
    run = quiet_run(repo, experiment='diverges')
    run.name = 'diverging'
    for s in range(300):
        # finite up to step 199, NaN after, with one finite point alone at step 250
        v = 1.0 / (s + 1) if s < 200 or s == 250 else (math.nan if s % 2 else math.inf)
        run.track(v, name='diverge', step=s)
    run.close()
    hashes['diverging'] = run.hash
    with aim_up(path) as url:
        yield url, hashes


CHART_OF = '''(name) => {
  const boxes = [...document.querySelectorAll('#charts .chart-box')];
  const i = boxes.findIndex((b) => b.querySelector('h3').textContent.endsWith(`= ${name}`));
  return i; }'''


def chart_index(page, name):
    index = page.evaluate(CHART_OF, name)
    assert index >= 0, name
    return index


def open_metrics(page, url, query=''):
    page.goto(url + '/metrics' + query)
    page.wait_for_selector('#page[data-ready="1"]')


def test_chart_follows_window_resizes_at_device_pixel_ratio(server):
    url, hashes = server
    with browser_page(1400, 900, scale=2) as page:
        open_metrics(page, url, f'?runs={hashes["spiky-0"]}&chart=none')
        size = '''() => { const c = window.__aimCharts[0];
            return [c.root.clientWidth, c.base.width, c.w, c.dpr]; }'''
        wide, canvas, w, dpr = page.evaluate(size)
        assert dpr == 2 and canvas == round(w * 2) and w == wide
        # one grid column at 1,400 px holds 654 px; at 800 px it is the whole width
        for viewport in (800, 1100, 1400):
            page.set_viewport_size({'width': viewport, 'height': 900})
            page.wait_for_function('(old) => { const c = window.__aimCharts[0]; '
                                   'return c.root.clientWidth !== old && '
                                   'c.w === c.root.clientWidth; }', arg=w, timeout=5000)
            now, canvas, w, _ = page.evaluate(size)
            # drawn again across the new width at the screen's density, not stretched
            assert canvas == round(now * 2)
            assert page.evaluate('() => window.__aimCharts[0].base.style.width') == f'{now}px'
        assert w == wide


def test_log_ticks_are_powers_of_ten_and_x_can_be_log(server):
    url, _ = server
    with browser_page() as page:
        open_metrics(page, url, '?log=1&logx=1')
        assert page.is_checked('#log-scale') and page.is_checked('#log-x')
        i = chart_index(page, 'decades')
        labels = page.evaluate(f'() => window.__aimCharts[{i}].tickLabels')
        assert {'1e-4', '0.001', '0.01', '0.1', '1'} <= set(labels['y']), labels
        assert not any(len(t) > 5 for t in labels['y']), labels  # no "0.31623"
        assert {'10', '100', '1k'} <= set(labels['x']), labels
        # few decades: 1, 2, 5 between the powers of ten
        j = chart_index(page, 'spiky')
        y = page.evaluate(f'() => window.__aimCharts[{j}].tickLabels.y')
        assert {'0.1', '0.2', '0.5', '1', '2', '5', '10', '20'} <= set(y), y
        # the keyboard zooms a log x axis in its own units: + halves the decades shown
        page.mouse.move(5, 5)
        lo, hi = page.evaluate(f'() => {{ const b = window.__aimCharts[{i}].b; return [b.xlo, b.xhi]; }}')
        page.locator('.chart-overlay').nth(i).focus()
        page.keyboard.press('+')
        page.wait_for_function("() => location.search.includes('xmin=')")
        q = page.evaluate("() => Object.fromEntries(new URLSearchParams(location.search))")
        assert abs(math.log10(float(q['xmin'])) - (lo + (hi - lo) / 4)) < 1e-6, (q, lo, hi)
        assert abs(math.log10(float(q['xmax'])) - (hi - (hi - lo) / 4)) < 1e-6, (q, lo, hi)
        page.keyboard.press('0')
        page.wait_for_function("() => !location.search.includes('xmin=')")
        page.wait_for_selector('#page[data-ready="1"]')
        page.uncheck('#log-x')
        page.wait_for_function("() => !location.search.includes('logx=')")
        labels = page.evaluate(f'() => window.__aimCharts[{i}].tickLabels.x')
        assert '1k' not in labels and '1000' in labels


def test_isolated_points_are_dots_and_divergence_is_marked(server):
    url, hashes = server
    with browser_page() as page:
        open_metrics(page, url, f'?runs={hashes["diverging"]}')
        found = page.evaluate('''() => { const c = window.__aimCharts[0];
            const step = (m) => m.line.x[m.index];
            const at = (m) => { const x = c.px(m.line.x[m.index]), y = c.py(m.line.y[m.index]);
              const px = c.base.getContext('2d')
                .getImageData(Math.round(x * c.dpr), Math.round(y * c.dpr), 1, 1).data;
              return [x, y, px[3]]; };
            return { dots: c.dots.map(step), markers: c.markers.map(step),
                     dot: c.dots.length ? at(c.dots[0]) : null,
                     marker: c.markers.length ? at(c.markers[0]) : null }; }''')
        assert found['dots'] == [250]
        assert found['markers'] == [199, 250]
        assert found['dot'][2] > 0 and found['marker'][2] > 0  # painted there
        box = page.locator('.chart-overlay').first.bounding_box()
        page.mouse.move(box['x'] + found['marker'][0], box['y'] + found['marker'][1])
        page.wait_for_selector('.chart-tooltip:not([hidden])')
        tip = page.locator('.chart-tooltip:not([hidden])').inner_text()
        assert 'turns +inf at step 200' in tip and 'diverging' in tip


def test_min_max_band_keeps_a_one_step_spike(server):
    url, hashes = server
    with browser_page() as page:
        open_metrics(page, url, f'?runs={hashes["spiky-0"]},{hashes["spiky-1"]}'
                     '&agg=minmax&color=none')
        i = chart_index(page, 'spiky')
        band = page.evaluate(f'''() => {{ const b = window.__aimCharts[{i}].bands[0];
            let k = 0; for (let j = 1; j < b.hi.length; j++) if (b.hi[j] > b.hi[k]) k = j;
            return [b.hi[k], b.x[k], b.x[1] - b.x[0]]; }}''')
        assert band[0] == 50.0
        assert abs(band[1] - SPIKE_STEP) <= band[2]


def test_smoothing_is_computed_on_the_server_and_ignores_width(server):
    url, hashes = server
    seen = []
    for width in (1400, 700):
        with browser_page(width, 900) as page:
            with page.expect_request(lambda r: 'smoothing=0.9' in r.url):
                open_metrics(page, url, f'?runs={hashes["spiky-0"]}&smooth=0.9')
            i = chart_index(page, 'noisy')
            seen.append(page.evaluate(f'''() => {{ const l = window.__aimCharts[{i}].lines[0];
                return [Array.from(l.x), Array.from(l.y)]; }}'''))
    (x0, y0), (x1, y1) = seen
    assert len(x0) != len(x1)  # two widths, two reductions
    first = dict(zip(x0, y0))
    common = [(first[x], y) for x, y in zip(x1, y1) if x in first and x > 100]
    assert len(common) >= 5
    for a, b in common:
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a))


TRACKER = textwrap.dedent('''
    import sys, time
    from aim import Repo, Run
    run = Run(repo=Repo(sys.argv[1], init=True), system_tracking_interval=None,
              capture_terminal_logs=False)
    run.name = 'live-chart-run'
    for step in range(2000):
        run.track(step * 0.5, name='loss', step=step)
        if step > 200:
            time.sleep(0.05)
    run.close()
''')


def test_live_page_has_a_legend_zooms_and_drops_its_tooltip(tmp_path):
    tracker = subprocess.Popen([sys.executable, '-c', TRACKER, str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 20
        while not os.path.exists(tmp_path / '.aim') and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        with aim_up(str(tmp_path)) as url, browser_page() as page:
            page.goto(url + '/live')
            page.wait_for_function('() => (window.__aimLiveCharts || []).length > 0 && '
                                   'window.__aimLiveCharts[0].lines.length > 0',
                                   timeout=20_000)
            assert 'live-chart-run' in page.locator('#live-legend').inner_text()
            overlay = page.locator('.chart-overlay').first
            box = overlay.bounding_box()
            full = page.evaluate('() => { const b = window.__aimLiveCharts[0].b; '
                                 'return [b.xlo, b.xhi]; }')
            page.mouse.move(box['x'] + box['width'] * 0.3, box['y'] + 100)
            page.mouse.down()
            page.mouse.move(box['x'] + box['width'] * 0.6, box['y'] + 100, steps=5)
            page.mouse.up()
            zoomed = page.evaluate('() => window.__aimLiveCharts[0].zoomRange')
            assert zoomed and full[0] < zoomed[0] < zoomed[1] < full[1]
            # the zoom stays while new points arrive
            points = int(page.locator('#page').get_attribute('data-points'))
            page.wait_for_function(
                f"() => Number(document.querySelector('#page').dataset.points) > {points}",
                timeout=15_000)
            again = page.evaluate('() => { const c = window.__aimLiveCharts[0]; '
                                  'return [c.zoomRange, c.b.xlo, c.b.xhi]; }')
            assert again[0] == zoomed and again[1:] == zoomed
            page.mouse.dblclick(box['x'] + box['width'] * 0.5, box['y'] + 100)
            assert page.evaluate('() => window.__aimLiveCharts[0].zoomRange') is None
            # a move and a leave in the same frame: no tooltip is left behind
            page.mouse.move(box['x'] - 50, box['y'] - 50)
            # keys on a chart that zooms itself (no onZoom): + halves x around the middle,
            # Shift+Up zooms y and leaves x as it was, 0 resets both
            keys = page.evaluate('''() => { const c = window.__aimLiveCharts[0];
                c.overlay.focus();
                const key = (k, shift) => c.overlay.dispatchEvent(new KeyboardEvent('keydown',
                  { key: k, shiftKey: !!shift, bubbles: true, cancelable: true }));
                const b = c.b; const before = [b.xlo, b.xhi];
                key('+'); const x = c.zoomRange && [...c.zoomRange];
                key('ArrowUp', true); const after = [[...c.zoomRange], c.zoomY && [...c.zoomY]];
                key('0');
                return { tab: c.overlay.tabIndex, before, x, after, reset: [c.zoomRange, c.zoomY] }; }''')
            lo, hi = keys['before']
            assert keys['tab'] == 0 and keys['x'] == [lo + (hi - lo) / 4, hi - (hi - lo) / 4], keys
            assert keys['after'][0] == keys['x'] and keys['after'][1], keys
            assert keys['reset'] == [None, None]
            hidden = page.evaluate('''async () => { const c = window.__aimLiveCharts[0];
                const l = c.lines[0]; const i = l.x.length >> 1;
                const r = c.overlay.getBoundingClientRect();
                const at = { clientX: r.left + c.px(l.x[i]), clientY: r.top + c.py(l.y[i]) };
                c.overlay.dispatchEvent(new MouseEvent('mousemove', at));
                c.overlay.dispatchEvent(new MouseEvent('mouseleave', at));
                for (let k = 0; k < 3; k++) await new Promise((f) => requestAnimationFrame(f));
                const shown = !c.tip.hidden;
                c.overlay.dispatchEvent(new MouseEvent('mousemove', at));
                for (let k = 0; k < 3; k++) await new Promise((f) => requestAnimationFrame(f));
                return [shown, !c.tip.hidden]; }''')
            assert hidden == [False, True]
    finally:
        tracker.terminate()
        tracker.wait(10)


TOUCH = '''([kind, points]) => {
    // points: [[pointerId, fraction of the plot's width, fraction of its height], ...]
    const c = window.__aimCharts[0]; const r = c.overlay.getBoundingClientRect();
    const left = r.left + 70, width = r.width - 90;   // inside the axes' padding
    for (const [id, fx, fy] of points) {
      c.overlay.dispatchEvent(new PointerEvent(kind, { pointerId: id, pointerType: 'touch',
        isPrimary: id === 1, bubbles: true, cancelable: true,
        clientX: left + fx * width, clientY: r.top + 20 + fy * (r.height - 60) }));
    }
}'''


def _touch(page, kind, *points):
    page.evaluate(TOUCH, [kind, [list(p) for p in points]])


def _zoom(page):
    return page.evaluate("() => { const q = new URLSearchParams(location.search); "
                         "return q.has('xmin') ? [+q.get('xmin'), +q.get('xmax')] : null; }")


def test_touch_tap_tooltip_drag_pinch_and_double_tap(server):
    """Bug 12: on a phone a tap shows the tooltip, a sideways drag zooms, two fingers
    pinch-zoom, a double tap goes back; a vertical swipe is left to the page."""
    url, hashes = server
    with chromium_page(390, 844, has_touch=True, is_mobile=True) as page:
        errors = page.console_errors
        open_metrics(page, url, f'?runs={hashes["spiky-0"]}&chart=none&names=spiky')
        assert page.evaluate('() => window.__aimCharts[0].overlay.style.touchAction') == 'pan-y'
        page.evaluate('() => window.__aimCharts[0].root.scrollIntoView()')
        box = page.evaluate('() => { const r = window.__aimCharts[0].overlay'
                            '.getBoundingClientRect(); return [r.left, r.top, r.width]; }')
        page.touchscreen.tap(box[0] + box[2] / 2, box[1] + 150)
        page.wait_for_selector('.chart-tooltip:not([hidden])')
        assert 'spiky-0' in page.inner_text('.chart-tooltip')

        # one finger sideways: zooms x (from a quarter to three quarters of the width)
        _touch(page, 'pointerdown', (1, 0.25, 0.5))
        _touch(page, 'pointermove', (1, 0.5, 0.52))
        _touch(page, 'pointermove', (1, 0.75, 0.55))
        _touch(page, 'pointerup', (1, 0.75, 0.55))
        page.wait_for_function("() => new URLSearchParams(location.search).has('xmin')")
        lo, hi = _zoom(page)
        assert 0.2 * STEPS < lo < 0.3 * STEPS and 0.7 * STEPS < hi < 0.8 * STEPS, (lo, hi)
        page.wait_for_selector('#page[data-ready="1"]')

        # two fingers spread from the middle fifth to the middle three fifths: 3x in
        _touch(page, 'pointerdown', (1, 0.4, 0.5), (2, 0.6, 0.5))
        _touch(page, 'pointermove', (1, 0.2, 0.5), (2, 0.8, 0.5))
        _touch(page, 'pointerup', (1, 0.2, 0.5), (2, 0.8, 0.5))
        page.wait_for_function('([lo, hi]) => { const q = new URLSearchParams(location.search);'
                               ' return +q.get("xmin") > lo + 1 && +q.get("xmax") < hi - 1; }',
                               arg=[lo, hi])
        lo2, hi2 = _zoom(page)
        assert abs((hi2 - lo2) - (hi - lo) / 3) < 0.05 * (hi - lo), (lo, hi, lo2, hi2)
        assert abs((lo2 + hi2) / 2 - (lo + hi) / 2) < 0.05 * (hi - lo)
        page.wait_for_selector('#page[data-ready="1"]')

        # a double tap: the whole range again
        for _ in range(2):
            page.touchscreen.tap(box[0] + box[2] / 2, box[1] + 150)
        page.wait_for_function("() => !new URLSearchParams(location.search).has('xmin')")
        assert errors == []
