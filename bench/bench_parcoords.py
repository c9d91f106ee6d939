"""Parallel coordinates: aimkit's Params explorer (/params, our own canvas code in
aim/web/static/js/pages/params.js) against plotly.js' `parcoords` trace, on the same runs and
axes, in one headless Chromium (docs/ui.md, "Parallel coordinates: measured choice").

    .venv/bin/python bench/bench_parcoords.py            # 2,000 runs, 7 rounds
    .venv/bin/python bench/bench_parcoords.py --quick    # 100 runs, 1 round: it works

A repository of N runs is written through the SDK once and kept under /tmp (8 hparams: lr
and weight decay spread over decades, two categorical ones, four numeric ones; the last
values of `loss` and `acc`). `aim up` serves it; both sides draw the same 10 axes from the
same answer of /api/runs (the request params.js makes), coloured by loss.

- aimkit: navigation to /params?params=...&metrics=loss,acc&color=loss until the page has
  marked itself ready (`#page[data-ready="1"]`) and the next animation frame has drawn the
  lines (one pixel read back); also the part of it after the last /api/runs response ended
  (parse + axes + layout + draw), the figure to set against plotly's render. Then a brush
  dragged on the lr axis (pointer events on its strip; per move: event to drawn frame) and
  a hover between two axes (event to the frame with the highlighted line and tooltip).
- plotly.js (the copy scripts/setup_web.sh puts in aim/web/static/vendor/, which the figures
  page uses), in a plain page of its own: the same /api/runs text parsed and turned into a
  parcoords trace (log axes as log10 values with decade tick labels, since parcoords has no
  log axis; categories as indices with tick text), Plotly.newPlot until the next frame (one
  WebGL pixel read back); a brush dragged on the lr axis (mouse events on its brush area:
  d3's drag, plotly's interactive path; per move until drawn); then a brush on lr set by
  Plotly.restyle of the dimension's constraintrange (a full replot) until the next frame.
  The time plotly spends in readPixels (its own pixel read after drawing lines, and the
  bench's) is the wait for the WebGL rasteriser, SwiftShader on the CPU under the tests'
  --disable-gpu; it is reported, and subtracted, on its own lines. parcoords has no hover
  on lines (its trace is in plotly's "noHover" category), so there is no hover figure.

Rounds alternate which side goes first; the first round is a discarded warm-up; medians
are printed with plotly / aimkit. Without Chromium, Playwright, plotly's file or a working
WebGL the bench says so and exits 0.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PLOTLY_JS = os.path.join(ROOT, 'aim', 'web', 'static', 'vendor', 'plotly.min.js')
CHROMIUM = '/usr/bin/chromium'
PARAMS = ['hparams.lr', 'hparams.weight_decay', 'hparams.batch', 'hparams.optimizer',
          'hparams.scheduler', 'hparams.dropout', 'hparams.layers', 'hparams.warmup']
METRICS = ['loss', 'acc']
COLOR = 'loss'
REPO_VERSION = 1


def skip(reason: str) -> None:
    print(f'bench_parcoords: skipped: {reason}')
    sys.exit(0)


def make_repo(path: str, n_runs: int) -> float:
    """The runs (reused when already there); returns the seconds it took (0: reused)."""
    marker = os.path.join(path, 'bench_parcoords.json')
    if os.path.exists(marker):
        try:
            with open(marker) as f:
                if json.load(f) == {'runs': n_runs, 'version': REPO_VERSION}:
                    return 0.0
        except (OSError, ValueError):
            pass
    import numpy as np

    from aim import Repo, Run
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    started = time.monotonic()
    repo = Repo(path, init=True)
    rng = np.random.default_rng(16)
    for i in range(n_runs):
        lr = float(10 ** rng.uniform(-5, -1))
        hp = {'lr': lr, 'weight_decay': float(10 ** rng.uniform(-6, -2)),
              'batch': int(2 ** rng.integers(4, 9)),
              'optimizer': ['adam', 'adamw', 'sgd', 'rmsprop'][int(rng.integers(0, 4))],
              'scheduler': ['cosine', 'linear', 'step'][int(rng.integers(0, 3))],
              'dropout': round(float(rng.uniform(0, 0.5)), 3),
              'layers': int(rng.integers(2, 13)), 'warmup': int(rng.integers(0, 2001))}
        # a loss that is best near lr 1e-3, so the picture has some structure
        loss = 0.2 + 0.15 * (math.log10(lr) + 3) ** 2 + hp['dropout'] * 0.3 \
            + float(rng.normal(0, 0.05))
        run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
        run.name = f'pc-{i:05d}'
        run['hparams'] = hp
        for step in range(3):
            run.track(max(0.01, loss) * (1 + 0.5 * (2 - step)), name='loss', step=step)
            run.track(min(0.99, max(0.01, 1 - loss / 2)), name='acc', step=step)
        run.close()
    with open(marker, 'w') as f:
        json.dump({'runs': n_runs, 'version': REPO_VERSION}, f)
    return time.monotonic() - started


def api_runs_text(server: str, n_runs: int) -> str:
    """What params.js asks of /api/runs for these axes (one page: N <= 1,000 a page is
    what it reads; above that the pages are joined as params.js joins them)."""
    runs = []
    total = None
    while total is None or len(runs) < total:
        query = urllib.parse.urlencode({'q': '', 'offset': len(runs), 'limit': 1000,
                                        'params': ','.join(PARAMS), 'metrics': ','.join(METRICS)})
        with urllib.request.urlopen(f'{server}/api/runs?{query}', timeout=60) as r:
            page = json.load(r)
        runs.extend(page['runs'])
        total = page['total']
        if len(page['runs']) < 1000:
            break
    if len(runs) != n_runs:
        raise RuntimeError(f'/api/runs gave {len(runs)} runs, not {n_runs}')
    return json.dumps({'runs': runs, 'total': total})


# Installed in the aimkit page before its scripts: when #page is marked ready, the next
# animation frame (after params.js' own, which draws the lines) reads one pixel back and
# records the time since navigation start, and the end of the last /api/runs response.
AIMKIT_INIT = r"""
window.__pc = { drawn: null, apiEnd: null };
new MutationObserver((_, obs) => {
  const p = document.getElementById('page');
  if (!p || p.dataset.ready !== '1' || window.__pc.drawn !== null) return;
  obs.disconnect();
  requestAnimationFrame(() => {
    const c = document.getElementById('parallel');
    c.getContext('2d').getImageData(0, 0, 1, 1);
    window.__pc.drawn = performance.now();
    const ends = performance.getEntriesByType('resource')
      .filter((e) => e.name.includes('/api/runs')).map((e) => e.responseEnd);
    window.__pc.apiEnd = ends.length ? Math.max(...ends) : null;
  });
}).observe(document, { subtree: true, childList: true, attributes: true,
  attributeFilter: ['data-ready'] });
"""

# aimkit, once drawn: a brush dragged on the lr axis (axis 0), then a hover.
AIMKIT_INTERACT = r"""
async ({ moves }) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const canvas = document.getElementById('parallel');
  const overlay = document.getElementById('params-overlay');
  const flush = () => { canvas.getContext('2d').getImageData(0, 0, 1, 1);
    overlay.getContext('2d').getImageData(0, 0, 1, 1); };
  const lay = JSON.parse(canvas.dataset.layout);
  const box = overlay.getBoundingClientRect();
  const strip = document.querySelector('.params-axis-strip[data-index="0"]');
  const ev = (type, target, x, y) => target.dispatchEvent(new PointerEvent(type, {
    bubbles: true, cancelable: true, composed: true, pointerId: 1, isPrimary: true,
    pointerType: 'mouse', button: 0, buttons: type === 'pointerup' ? 0 : 1,
    clientX: box.left + x, clientY: box.top + y }));
  const x = lay.x[0]; const top = lay.top; const bottom = lay.bottom;
  const y0 = top + 0.2 * (bottom - top);
  ev('pointerdown', strip, x, y0);
  ev('pointermove', overlay, x, y0 + 20);   // starts the brush (and grey copy of all lines)
  await frame(); flush();
  const brush = [];
  for (let i = 0; i < moves; i++) {
    const y = y0 + 40 + (i % 2 ? 60 : 100) + i;
    const t0 = performance.now();
    ev('pointermove', overlay, x, y);
    await frame(); flush();
    brush.push(performance.now() - t0);
  }
  ev('pointerup', overlay, x, y0 + 120);
  await frame();
  const selected = Number(document.getElementById('params-count').dataset.selected);
  // hover: between axes 1 and 2, over the lines' middle band; a few spots, first hit kept
  const hover = [];
  let shown = false;
  for (const f of [0.5, 0.4, 0.6, 0.3, 0.7]) {
    const hx = (lay.x[1] + lay.x[2]) / 2; const hy = top + f * (bottom - top);
    const t0 = performance.now();
    overlay.dispatchEvent(new PointerEvent('pointermove', { bubbles: true, pointerId: 1,
      isPrimary: true, pointerType: 'mouse', clientX: box.left + hx, clientY: box.top + hy }));
    await frame(); flush();
    const dt = performance.now() - t0;
    if (!document.getElementById('params-tooltip').hidden) { hover.push(dt); shown = true; break; }
  }
  return { brush, hover: hover.length ? hover[0] : null, selected, shown };
}
"""

PLOTLY_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<style>body { margin: 0; font: 12px system-ui, sans-serif; } .box { width: 1200px; }</style>
</head><body></body></html>"""

# plotly: the same /api/runs text into a parcoords trace, drawn; then a constraintrange.
PLOTLY_RUN = r"""
async ({ text, params, metrics, color, moves }) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const glFlush = (gd) => {
    const c = gd.querySelector('canvas.gl-canvas-focus');
    const gl = c && (c.getContext('webgl') || c.getContext('experimental-webgl'));
    if (gl) gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
    return gl;
  };
  // time spent in readPixels: plotly reads a pixel after drawing its lines, which waits for
  // the GL rasteriser (here SwiftShader, on the CPU), as does the bench's own pixel read
  if (!window.__glWait) {
    window.__glWait = { ms: 0 };
    for (const proto of [WebGLRenderingContext.prototype, WebGL2RenderingContext.prototype]) {
      const read = proto.readPixels;
      proto.readPixels = function (...a) {
        const t = performance.now();
        try { return read.apply(this, a); } finally { window.__glWait.ms += performance.now() - t; }
      };
    }
  }
  const waited = () => window.__glWait.ms;
  const t0 = performance.now(); const w0 = waited();
  const { runs } = JSON.parse(text);
  const lastOf = (run, name) => { const m = (run.metrics || []).find((x) => x.name === name
    && !Object.keys(x.context).length) || (run.metrics || []).find((x) => x.name === name);
    return m ? m.last : null; };
  const cols = [...params.map((p) => ({ label: p, get: (r) => (r.params || {})[p] })),
    ...metrics.map((m) => ({ label: m, get: (r) => lastOf(r, m) }))];
  const dims = cols.map((c) => {
    const raw = runs.map(c.get);
    const nums = raw.filter((v) => typeof v === 'number' && Number.isFinite(v));
    if (nums.length === raw.filter((v) => v !== null && v !== undefined).length && nums.length) {
      let lo = Infinity; let hi = -Infinity;
      for (const v of nums) { if (v < lo) lo = v; if (v > hi) hi = v; }
      if (lo > 0 && hi / lo > 100) {   // what params.js draws as a log axis
        const e0 = Math.ceil(Math.log10(lo)); const e1 = Math.floor(Math.log10(hi));
        const tickvals = []; const ticktext = [];
        for (let e = e0; e <= e1; e++) { tickvals.push(e); ticktext.push(`1e${e}`); }
        return { label: `${c.label} (log)`, log: true,
          values: raw.map((v) => (typeof v === 'number' && v > 0 ? Math.log10(v) : NaN)),
          tickvals, ticktext };
      }
      return { label: c.label, values: raw.map((v) => (typeof v === 'number' ? v : NaN)) };
    }
    const cats = [...new Set(raw.filter((v) => v !== null && v !== undefined).map(String))].sort();
    const index = new Map(cats.map((v, i) => [v, i]));
    return { label: c.label, values: raw.map((v) => (v === null || v === undefined ? NaN
      : index.get(String(v)))), tickvals: cats.map((_, i) => i), ticktext: cats };
  });
  const colourCol = cols.find((c) => c.label === color);
  const trace = { type: 'parcoords',
    line: { color: runs.map(colourCol.get), colorscale: 'Viridis', showscale: true },
    dimensions: dims.map(({ log, ...d }) => d) };
  const box = document.createElement('div'); box.className = 'box';
  document.body.appendChild(box);
  await window.Plotly.newPlot(box, [trace], { width: 1200, height: 460,
    margin: { l: 60, r: 90, t: 60, b: 30 } }, { displayModeBar: false });
  const plotted = performance.now() - t0;   // newPlot's promise: its script work
  await frame();
  const gl = glFlush(box);
  const first = performance.now() - t0; const firstGl = waited() - w0;
  let lit = 0;
  if (gl) {   // lines really drawn (preserveDrawingBuffer is on in plotly's regl)
    const w = gl.drawingBufferWidth; const h = gl.drawingBufferHeight;
    const px = new Uint8Array(4 * w * h);
    gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
    for (let i = 3; i < px.length; i += 4) if (px[i]) lit++;
  }
  // a brush dragged on lr's axis (d3's drag on the axis' brush area: mouse events), per
  // move until drawn: plotly's interactive path, which filters and redraws the lines only
  const drag = []; const dragJs = []; const dragGl = [];
  const bg = box.querySelectorAll('.axis-brush rect.background')[0];
  let dragged = null;
  if (bg) {
    const r = bg.getBoundingClientRect(); const cx = r.left + r.width / 2;
    const y0 = r.top + 0.2 * r.height;
    const mouse = (type, target, y) => target.dispatchEvent(new MouseEvent(type, {
      bubbles: true, cancelable: true, view: window, button: 0, buttons: type === 'mouseup' ? 0 : 1,
      clientX: cx, clientY: y }));
    mouse('mousedown', bg, y0);
    mouse('mousemove', window, y0 + 20);
    await frame(); glFlush(box);
    for (let i = 0; i < moves; i++) {
      const y = y0 + 40 + (i % 2 ? 60 : 100) + i;
      const t1 = performance.now(); const w1 = waited();
      mouse('mousemove', window, y);
      dragJs.push(performance.now() - t1);   // plotly's handler, before the frame
      await frame(); glFlush(box);
      drag.push(performance.now() - t1); dragGl.push(waited() - w1);
    }
    mouse('mouseup', window, y0 + 120);
    await frame();
    dragged = box.data[0].dimensions[0].constraintrange || null;
  }
  // a brush on lr set by Plotly.restyle (a full replot of the trace), each until drawn
  const lr = dims[0];
  const lo = Math.min(...lr.values.filter((v) => v === v));
  const hi = Math.max(...lr.values.filter((v) => v === v));
  const brush = [];
  for (let i = 0; i < Math.min(moves, 3); i++) {   // a restyle takes seconds here
    const a = lo + (0.15 + 0.05 * (i % 2)) * (hi - lo);
    const b = lo + (0.55 + 0.01 * i) * (hi - lo);
    const t1 = performance.now();
    await window.Plotly.restyle(box, { 'dimensions[0].constraintrange': [[a, b]] }, [0]);
    await frame(); glFlush(box);
    brush.push(performance.now() - t1);
  }
  const message = box.textContent.includes('WebGL is not supported') ? 'no WebGL' : '';
  window.Plotly.purge(box); box.remove();
  await frame();
  return { first, firstGl, plotted, brush, drag, dragJs, dragGl, dragged, lit,
    gl: Boolean(gl), message, runs: runs.length };
}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='100 runs, 1 round')
    parser.add_argument('--runs', type=int, default=2000)
    parser.add_argument('--rounds', type=int, default=7)
    parser.add_argument('--data-dir', default=os.path.join(tempfile.gettempdir(),
                                                           'aimkit-bench-parcoords'))
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args()
    n_runs = 100 if args.quick else args.runs
    rounds, warmup = (1, 0) if args.quick else (args.rounds, 1)
    moves = 2 if args.quick else 5   # brush positions per round and side

    sys.path.insert(0, os.path.join(ROOT, 'tests', 'web'))
    from live_server import CHROMIUM_ARGS, aim_up, browser_bench_missing
    missing = browser_bench_missing(PLOTLY_JS, 'plotly.js', ROOT)
    if missing:
        skip(missing)
    from playwright.sync_api import sync_playwright

    with open(PLOTLY_JS, encoding='utf-8', errors='replace') as f:
        head = f.read(200)
    version = head.split('plotly.js v', 1)[1].split()[0] if 'plotly.js v' in head else '?'
    repo_path = os.path.join(args.data_dir, f'runs-{n_runs}')
    built = make_repo(repo_path, n_runs)
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    print(f'Parallel coordinates, {n_runs:,} runs x {len(PARAMS) + len(METRICS)} axes: aimkit '
          f'/params vs plotly.js {version} parcoords; headless Chromium '
          f'({" ".join(CHROMIUM_ARGS[:3])} ...), '
          f'median of {rounds} round(s); load average {load:.1f}; repository '
          + (f'written in {built:.1f} s' if built else 'reused')
          + (' (quick mode)' if args.quick else ''))
    started = time.monotonic()
    times = {'aimkit': {'nav': [], 'render': [], 'brush': [], 'hover': []},
             'plotly': {'first': [], 'plotted': [], 'first_gl': [], 'drag': [], 'drag_js': [],
                        'drag_gl': [], 'brush': [], 'first_nogl': [], 'drag_nogl': []}}
    notes = []
    with aim_up(repo_path) as server:
        text = api_runs_text(server, n_runs)
        url = (f'{server}/params?' + urllib.parse.urlencode(
            {'params': ','.join(PARAMS), 'metrics': ','.join(METRICS), 'color': COLOR}))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                errors = []
                ctx_a = browser.new_context(viewport={'width': 1400, 'height': 900})
                ctx_a.add_init_script(AIMKIT_INIT)
                page_a = ctx_a.new_page()
                page_p = browser.new_context(viewport={'width': 1400, 'height': 900}).new_page()
                for p in (page_a, page_p):
                    p.on('pageerror', lambda e: errors.append(str(e)))
                    p.on('console', lambda m: m.type == 'error'
                         and not m.text.startswith('Failed to load resource')
                         and errors.append(m.text))
                page_p.set_content(PLOTLY_PAGE)
                t = time.monotonic()
                page_p.add_script_tag(path=PLOTLY_JS)
                page_p.wait_for_function('typeof window.Plotly === "object"', timeout=30000)
                plotly_load = (time.monotonic() - t) * 1000
                webgl = page_p.evaluate("""() => { const c = document.createElement('canvas');
                  const gl = c.getContext('webgl');
                  if (!gl) return null;
                  const d = gl.getExtension('WEBGL_debug_renderer_info');
                  return gl.getParameter(d ? d.UNMASKED_RENDERER_WEBGL : gl.RENDERER); }""")
                print(f'WebGL in this Chromium: {webgl or "none (getContext(webgl) is null)"}')
                if not webgl:
                    print('plotly parcoords cannot draw here (it needs WebGL); aimkit only')
                ok = True

                def aimkit(record: bool) -> None:
                    nonlocal ok
                    page_a.goto(url)
                    page_a.wait_for_function('() => window.__pc && window.__pc.drawn !== null',
                                             timeout=120000)
                    pc = page_a.evaluate('() => window.__pc')
                    out = page_a.evaluate(AIMKIT_INTERACT, {'moves': moves})
                    axes = json.loads(page_a.locator('#parallel').get_attribute('data-axes'))
                    if len(axes) != len(PARAMS) + len(METRICS) or not out['shown'] \
                            or not 0 < out['selected'] < n_runs:
                        ok = False
                        notes.append(f'aimkit: {len(axes)} axes, tooltip shown {out["shown"]}, '
                                     f'{out["selected"]} runs selected')
                    if record:
                        times['aimkit']['nav'].append(pc['drawn'])
                        times['aimkit']['render'].append(pc['drawn'] - pc['apiEnd'])
                        times['aimkit']['brush'].append(statistics.median(out['brush']))
                        times['aimkit']['hover'].append(out['hover'])

                def plotly(record: bool) -> None:
                    nonlocal ok
                    out = page_p.evaluate(PLOTLY_RUN, {'text': text, 'params': PARAMS,
                                                       'metrics': METRICS, 'color': COLOR,
                                                       'moves': moves})
                    if out['runs'] != n_runs or not out['lit'] or not out['dragged']:
                        ok = False
                        notes.append(f'plotly: {out["runs"]} runs, WebGL context {out["gl"]}, '
                                     f'{out["lit"]} lit pixels {out["message"]}, '
                                     f'brush after the drag {out["dragged"]}')
                    if record:
                        times['plotly']['first'].append(out['first'])
                        times['plotly']['brush'].append(statistics.median(out['brush']))
                        times['plotly']['drag'].append(statistics.median(out['drag']))
                        times['plotly']['plotted'].append(out['plotted'])
                        times['plotly']['drag_js'].append(statistics.median(out['dragJs']))
                        times['plotly']['first_gl'].append(out['firstGl'])
                        times['plotly']['drag_gl'].append(statistics.median(out['dragGl']))
                        times['plotly']['first_nogl'].append(out['first'] - out['firstGl'])
                        times['plotly']['drag_nogl'].append(statistics.median(
                            [d - g for d, g in zip(out['drag'], out['dragGl'])]))

                for r in range(warmup + rounds):
                    order = [aimkit, plotly] if r % 2 == 0 else [plotly, aimkit]
                    for fn in order:
                        if fn is plotly and not webgl:
                            continue
                        fn(r >= warmup)
            finally:
                browser.close()
    if errors:
        print('error: the pages reported errors:\n  ' + '\n  '.join(errors[:10]))
        return 1
    if not ok:
        print('error: a chart did not draw what it was given: ' + '; '.join(notes[:4]))
        return 1

    med = {side: {k: statistics.median(v) for k, v in t.items() if v}
           for side, t in times.items()}
    a, p = med['aimkit'], med.get('plotly', {})

    def ratio(x, y):
        return f'{x / y:.2f}x' if x and y else 'n/a'

    print()
    print('| measure | aimkit ms | plotly parcoords ms | plotly / aimkit |')
    print('| --- | --- | --- | --- |')
    print(f"| navigation to /params until drawn (fetch + render) | {a['nav']:.0f} | n/a | |")
    if p:
        print(f"| render from the /api/runs answer (parse + build + draw) | {a['render']:.1f} | "
              f"{p['first']:.1f} | {ratio(p['first'], a['render'])} |")
        print(f"| brush dragged on lr: one move until drawn | "
              f"{a['brush']:.1f} | {p['drag']:.1f} | {ratio(p['drag'], a['brush'])} |")
        print(f"| brush on lr set by Plotly.restyle (constraintrange) until drawn | "
              f"| {p['brush']:.1f} | {ratio(p['brush'], a['brush'])} |")
    else:
        print(f"| render from the /api/runs answer | {a['render']:.1f} | no WebGL | |")
        print(f"| brush on lr: one move until drawn | {a['brush']:.1f} | no WebGL | |")
    if p:
        print("| plotly: of its render, until Plotly.newPlot's promise resolves (script, SVG, "
              f"WebGL set-up) | | {p['plotted']:.1f} | |")
        print(f"| plotly: of a drag move, its mousemove handler | | {p['drag_js']:.1f} | |")
        print(f"| plotly: of its render, waiting in readPixels (GL rasteriser) | | "
              f"{p['first_gl']:.1f} | |")
        print(f"| plotly: of a drag move, waiting in readPixels | | {p['drag_gl']:.1f} | |")
        print(f"| plotly render less its GL waits (near what a fast GPU would leave) | "
              f"{a['render']:.1f} | {p['first_nogl']:.1f} | "
              f"{ratio(p['first_nogl'], a['render'])} |")
        print(f"| plotly drag move less its GL waits | {a['brush']:.1f} | "
              f"{p['drag_nogl']:.1f} | {ratio(p['drag_nogl'], a['brush'])} |")
    print(f"| hover: nearest line + tooltip until drawn | {a['hover']:.1f} | "
          'none (parcoords has no hover) | |')
    print()
    print(f'plotly.min.js: {os.path.getsize(PLOTLY_JS) / 1024:.0f} KiB, loaded and evaluated '
          f'once in {plotly_load:.0f} ms (not in the figures above)')
    print(f'total {time.monotonic() - started:.1f} s')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'plotly': version, 'runs': n_runs, 'load': load, 'rounds': rounds,
                       'webgl': webgl, 'median_ms': med, 'times_ms': times}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
