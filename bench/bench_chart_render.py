"""Render times of aimkit's canvas chart (aim/web/static/js/chart.js, LineChart) against
uPlot, on the same data, in headless Chromium (docs/ui.md, "Chart library: measured choice").

    .venv/bin/python bench/bench_chart_render.py            # all cases, 7 rounds each
    .venv/bin/python bench/bench_chart_render.py --quick    # 100 series (1 px), 1 round: it works

uPlot comes from the npm registry into the git-ignored bench/.vendor/uplot/ (run
scripts/setup_web.sh); nothing is fetched at run time: the page, aimkit's modules and uPlot
are served to Chromium from this checkout through Playwright's request routing. Without
Chromium, Playwright or uPlot the bench says so and exits 0.

Cases: 1, 100 and 1,000 series x 1,000 points sharing one x array (what M4 sends for a
1,000-px chart when every series has the same steps: the best case for uPlot, which wants
one x array for all series), 1,000 series of M4 output with each series' own x (4 points
per bucket at the steps of its own extremes; uPlot needs them joined into one x array,
uPlot.join, which is timed with its first render), and 10 series x 100,000 points (a
full-resolution zoom, the worst case). Per case and library, median over rounds of:

- first render: construct + set data + draw, until the next animation frame, then one
  pixel read so that Chromium has rasterised the canvas;
- resize: the box goes from 1,000 to 800 px wide and the chart redraws (LineChart.draw,
  what its ResizeObserver calls; uPlot.setSize), until the pixels are on the canvas;
- log y: the y axis turns logarithmic (LineChart: setOptions({logY}) + draw; uPlot cannot
  change a scale's distribution after construction, so destroy + construct with distr 3,
  as its author advises, leeoniya/uPlot#669).

Settings mirror the metrics page: 380 px high, lines 1.5 px wide (1 px above 100 series;
one case draws 100 series at 1 px to show what the width costs),
no legend or cursor points in uPlot (the page draws its own legend; uPlot's would add a
DOM row per series). The libraries alternate which goes first in each round; a warm-up
round is discarded.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATIC = os.path.join(ROOT, 'aim', 'web', 'static')
UPLOT_DIR = os.path.join(ROOT, 'bench', '.vendor', 'uplot')
UPLOT_JS = os.path.join(UPLOT_DIR, 'uPlot.iife.min.js')
CHROMIUM = '/usr/bin/chromium'
ORIGIN = 'http://aimkit-bench.invalid'

# (label, series, points per series, x layout, line width: None is the metrics page's)
CASES = [
    ('1 x 1,000', 1, 1000, 'shared', None),
    ('100 x 1,000', 100, 1000, 'shared', None),
    ('100 x 1,000, 1 px lines', 100, 1000, 'shared', 1),
    ('1,000 x 1,000', 1000, 1000, 'shared', None),
    ('1,000 x ~1,000, own x (M4)', 1000, 1000, 'm4', None),
    ('10 x 100,000', 10, 100000, 'shared', None),
]
QUICK_CASES = [('100 x 1,000, 1 px lines', 100, 1000, 'shared', 1)]
MEASURES = [('first', 'first render'), ('resize', 'resize redraw'), ('log', 'log y redraw')]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<link rel="stylesheet" href="/uplot/uPlot.min.css">
<script src="/uplot/uPlot.iife.min.js"></script>
<script type="module">
import { LineChart } from '/static/js/chart.js';
window.LineChart = LineChart;
window.benchReady = true;
</script>
<style>body { margin: 0; font: 12px system-ui, sans-serif; } .box { width: 1000px; }</style>
</head><body></body></html>
"""

# Runs in the page: generates the data, renders it with both charts, returns the times.
HARNESS = r"""
async ({ nSeries, nPoints, layout, lineWidth, rounds, warmup }) => {
  const W0 = 1000, W1 = 800, H = 380;
  const COLORS = ['#3b6fd8', '#e0562b', '#2f9e5b', '#a845c2', '#d4a20b', '#1aa3b8', '#c2335f',
    '#6b7a1e', '#7a4b2a', '#5060a0'];
  const width = lineWidth || (nSeries > 100 ? 1 : 1.5);
  let seed = 12345;
  const rand = () => {  // mulberry32
    seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  // a positive, loss-like curve: decay plus noise, its own scale per series
  const value = (s, step, steps) => {
    const a = 0.5 + (s % 17) / 4; const tau = steps * (0.1 + (s % 7) / 20);
    return a * Math.exp(-step / tau) + 0.02 + 0.05 * a * rand();
  };
  const series = [];
  let shared = null;
  if (layout === 'shared') {
    shared = new Float64Array(nPoints);
    for (let i = 0; i < nPoints; i++) shared[i] = i * 10;
    for (let s = 0; s < nSeries; s++) {
      const y = new Float64Array(nPoints);
      for (let i = 0; i < nPoints; i++) y[i] = value(s, i * 10, nPoints * 10);
      series.push({ x: shared, y });
    }
  } else {
    // M4 of 10 x nPoints steps into nPoints / 4 buckets: per bucket the first and last step
    // and two more (where this series' min and max fell), so x differs between series
    const steps = nPoints * 10; const buckets = nPoints / 4; const per = steps / buckets;
    for (let s = 0; s < nSeries; s++) {
      const xs = []; const ys = [];
      for (let b = 0; b < buckets; b++) {
        const first = b * per; const last = first + per - 1;
        const p = first + 1 + Math.floor(rand() * (per - 2));
        let q = first + 1 + Math.floor(rand() * (per - 2));
        if (q === p) q = p + 1 < last ? p + 1 : p - 1;
        for (const st of [first, Math.min(p, q), Math.max(p, q), last]) {
          xs.push(st); ys.push(value(s, st, steps));
        }
      }
      series.push({ x: Float64Array.from(xs), y: Float64Array.from(ys) });
    }
  }
  const points = series.reduce((n, s) => n + s.x.length, 0);

  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const flush = (canvas) => canvas.getContext('2d').getImageData(0, 0, 1, 1);
  const box = () => {
    const d = document.createElement('div'); d.className = 'box'; d.style.width = `${W0}px`;
    document.body.appendChild(d); return d;
  };

  function uplotOpts(log) {
    return {
      width: W0, height: H, legend: { show: false },
      cursor: { points: { show: false } },
      scales: { x: { time: false }, y: { distr: log ? 3 : 1 } },
      series: [{}, ...series.map((_, i) => ({ stroke: COLORS[i % COLORS.length], width,
        points: { show: false } }))],
    };
  }

  const impls = {
    aimkit: {
      async first(ctx) {
        const t0 = performance.now();
        ctx.box = box();
        ctx.chart = new window.LineChart(ctx.box, { height: H, xAxis: 'step' });
        ctx.chart.setData({ lines: series.map((s, i) => ({ x: s.x, y: s.y,
          color: COLORS[i % COLORS.length], dash: 'solid', width })) });
        await frame(); flush(ctx.chart.base);
        return performance.now() - t0;
      },
      async resize(ctx) {
        const t0 = performance.now();
        ctx.box.style.width = `${W1}px`;
        ctx.chart.draw();  // what its ResizeObserver does when the width changed
        flush(ctx.chart.base);
        return performance.now() - t0;
      },
      async log(ctx) {
        const t0 = performance.now();
        ctx.chart.setOptions({ logY: true }); ctx.chart.draw();
        flush(ctx.chart.base);
        return performance.now() - t0;
      },
      check(ctx) { return Number(ctx.chart.root.dataset.lines) === nSeries; },
      done(ctx) { ctx.chart.destroy(); ctx.box.remove(); },
    },
    uplot: {
      async first(ctx) {
        const t0 = performance.now();
        ctx.box = box();
        // one x array for all series: M4 output with each series' own x is joined first
        // (alignment holes are undefined, drawn across; a null would be a gap)
        ctx.data = shared ? [shared, ...series.map((s) => s.y)]
          : window.uPlot.join(series.map((s) => [s.x, s.y]));
        ctx.u = new window.uPlot(uplotOpts(false), ctx.data, ctx.box);
        await frame(); flush(ctx.u.ctx.canvas);
        return performance.now() - t0;
      },
      async resize(ctx) {
        const t0 = performance.now();
        ctx.box.style.width = `${W1}px`;
        ctx.u.setSize({ width: W1, height: H });
        await null;  // uPlot commits in a microtask
        flush(ctx.u.ctx.canvas);
        return performance.now() - t0;
      },
      async log(ctx) {
        const t0 = performance.now();
        const size = { width: ctx.u.width, height: ctx.u.height };
        ctx.u.destroy();
        ctx.u = new window.uPlot({ ...uplotOpts(true), ...size }, ctx.data, ctx.box);
        await null;
        flush(ctx.u.ctx.canvas);
        return performance.now() - t0;
      },
      check(ctx) { return ctx.u.series.length === nSeries + 1 && ctx.u.scales.y.distr === 3; },
      done(ctx) { ctx.u.destroy(); ctx.box.remove(); },
    },
  };

  const times = {};
  for (const name of Object.keys(impls)) times[name] = { first: [], resize: [], log: [] };
  const ok = { aimkit: true, uplot: true };
  for (let r = 0; r < warmup + rounds; r++) {
    const order = r % 2 ? ['uplot', 'aimkit'] : ['aimkit', 'uplot'];
    for (const name of order) {
      const impl = impls[name]; const ctx = {};
      const t = { first: await impl.first(ctx) };
      await frame();
      t.resize = await impl.resize(ctx);
      await frame();
      t.log = await impl.log(ctx);
      ok[name] = ok[name] && impl.check(ctx);
      impl.done(ctx);
      await frame();
      if (r >= warmup) for (const k of Object.keys(t)) times[name][k].push(t[k]);
    }
  }
  return { times, ok, points };
}
"""


def skip(reason: str) -> None:
    print(f'bench_chart_render: skipped: {reason}')
    sys.exit(0)


def bundle_sizes() -> dict:
    """Bytes (raw, gzip -9) of what each chart needs in the browser."""
    def size(paths):
        raw = b''.join(open(p, 'rb').read() for p in paths)
        return len(raw), len(gzip.compress(raw, 9))
    js = os.path.join(STATIC, 'js')
    ours = [os.path.join(js, n) for n in ('chart.js', 'dom.js', 'format.js')]
    ours.append(os.path.join(STATIC, 'css', 'charts.css'))
    theirs = [UPLOT_JS, os.path.join(UPLOT_DIR, 'uPlot.min.css')]
    return {'aimkit': size(ours), 'uplot': size(theirs)}


def serve(route):
    """Answers the page's requests from this checkout; anything else is refused."""
    url = route.request.url
    if not url.startswith(ORIGIN + '/'):
        return route.abort()
    path = url[len(ORIGIN):].split('?', 1)[0]
    if path == '/':
        return route.fulfill(status=200, body=PAGE, content_type='text/html; charset=utf-8')
    if path.startswith('/static/'):
        base, rel = STATIC, path[len('/static/'):]
    elif path.startswith('/uplot/'):
        base, rel = UPLOT_DIR, path[len('/uplot/'):]
    else:
        return route.fulfill(status=404, body='')
    full = os.path.realpath(os.path.join(base, rel))
    if not full.startswith(os.path.realpath(base) + os.sep) or not os.path.isfile(full):
        return route.fulfill(status=404, body='')
    types = {'.js': 'text/javascript', '.css': 'text/css'}
    kind = types.get(os.path.splitext(full)[1], 'application/octet-stream')
    return route.fulfill(status=200, path=full, content_type=kind)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='100 series at 1 px, 1 round')
    parser.add_argument('--rounds', type=int, default=7)
    parser.add_argument('--json', help='also write the figures to this file')
    args = parser.parse_args()
    cases = QUICK_CASES if args.quick else CASES
    rounds, warmup = (1, 0) if args.quick else (args.rounds, 1)

    sys.path.insert(0, os.path.join(ROOT, 'tests', 'web'))
    from live_server import CHROMIUM_ARGS, browser_bench_missing
    missing = browser_bench_missing(UPLOT_JS, 'uPlot', ROOT)
    if missing:
        skip(missing)
    from playwright.sync_api import sync_playwright

    version = json.load(open(os.path.join(UPLOT_DIR, 'package.json'))).get('version', '?')
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    print(f'Chart render, aimkit LineChart vs uPlot {version}; headless Chromium, '
          f'median of {rounds} round(s); load average {load:.1f}'
          + (' (quick mode: 100 series at 1 px, 1 round)' if args.quick else ''))
    results = []
    started = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': 1400, 'height': 900})
            errors = []
            page.on('pageerror', lambda e: errors.append(str(e)))
            page.on('console', lambda m: m.type == 'error' and errors.append(m.text))
            page.route('**/*', serve)
            page.goto(ORIGIN + '/')
            page.wait_for_function('window.benchReady === true'
                                   ' && typeof window.uPlot === "function"', timeout=15000)
            for label, n_series, n_points, layout, line_width in cases:
                out = page.evaluate(HARNESS, {'nSeries': n_series, 'nPoints': n_points,
                                              'layout': layout, 'lineWidth': line_width,
                                              'rounds': rounds, 'warmup': warmup})
                if not all(out['ok'].values()):
                    print(f'error: a chart did not draw what it was given: {out["ok"]}')
                    return 1
                med = {lib: {k: statistics.median(v) for k, v in t.items()}
                       for lib, t in out['times'].items()}
                results.append({'case': label, 'series': n_series, 'layout': layout,
                                'points': out['points'], 'median_ms': med,
                                'times_ms': out['times']})
            if errors:
                print('error: the page reported errors:\n  ' + '\n  '.join(errors[:10]))
                return 1
        finally:
            browser.close()

    print()
    print('| case | points | measure | aimkit ms | uPlot ms | uPlot / aimkit |')
    print('| --- | --- | --- | --- | --- | --- |')
    for r in results:
        for key, name in MEASURES:
            a = r['median_ms']['aimkit'][key]
            u = r['median_ms']['uplot'][key]
            print(f"| {r['case']} | {r['points']:,} | {name} | {a:.1f} | {u:.1f} | "
                  f"{u / a if a else float('nan'):.2f}x |")
    sizes = bundle_sizes()
    print()
    print(f"code shipped: aimkit chart.js + dom.js + format.js + charts.css (not minified) "
          f"{sizes['aimkit'][0] / 1024:.1f} KiB, {sizes['aimkit'][1] / 1024:.1f} KiB gzip; "
          f"uPlot.iife.min.js + uPlot.min.css {sizes['uplot'][0] / 1024:.1f} KiB, "
          f"{sizes['uplot'][1] / 1024:.1f} KiB gzip")
    print(f'total {time.monotonic() - started:.1f} s')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'uplot': version, 'load': load, 'rounds': rounds, 'results': results,
                       'bytes': sizes}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
