"""Benchmarks of the web UI (`aim up`): runs table API, downsampled series API, time from
navigation to a drawn chart in headless Chromium, and that a one-step spike survives.

    .venv/bin/python bench/bench_web.py            # 1,000 and 10,000 runs x 4 series x 10,000 steps
    .venv/bin/python bench/bench_web.py --quick    # tiny repositories: checks that it all works

Repositories are generated once into --data-dir (default /tmp/aimkit-bench-web) and reused.
Every HTTP figure is measured against a real `aim up` subprocess over loopback.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from web_repo_gen import generate

BUDGET_RUNS_MS = 100
BUDGET_SERIES_MS = 300
BUDGET_DRAW_MS = 1500


class Answer:
    def __init__(self, content: bytes, headers=None):
        self.content = content
        self.headers = headers or {}

    def server_timing(self) -> dict:
        """{'fetch': ms, 'header': ms, 'encode': ms} from the Server-Timing header."""
        out = {}
        for part in self.headers.get('server-timing', '').split(','):
            name, _, dur = part.strip().partition(';dur=')
            if dur:
                out[name] = float(dur)
        return out

    def json(self):
        return json.loads(self.content)


class LoopbackClient:
    """GET over a fresh loopback connection per request (what curl does). A keep-alive
    httpx client adds ~40 ms of delayed-ACK wait per request on this kernel, which would
    be measured as server time."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def get(self, path: str, params: dict | None = None) -> Answer:
        from urllib.parse import urlencode
        from urllib.request import urlopen
        url = self.base_url + path + ('?' + urlencode(params) if params else '')
        with urlopen(url, timeout=300) as response:
            return Answer(response.read(), {k.lower(): v for k, v in response.headers.items()})


def timed_get(client, path, params, repeat):
    times = []
    response = None
    for _ in range(repeat):
        t = time.perf_counter()
        response = client.get(path, params=params)
        times.append((time.perf_counter() - t) * 1000)
    return times, response


def decode_frame(content: bytes) -> dict:
    from aim.web.series_payload import decode_binary
    return decode_binary(content)


def drop_page_cache() -> bool:
    """Empty the OS page cache (Linux, root only), so that the first answer of the next
    server reads the repository from the disk."""
    try:
        os.sync()
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('1\n')
        return True
    except OSError:
        return False


def bench_repo(path: str, manifest: dict, browser: bool, max_series: int,
               drop_caches: bool = False) -> dict:
    from tests.web.live_server import CHROMIUM, aim_up, chromium_page
    out: dict = {'runs': manifest['runs'], 'steps': manifest['steps']}
    if drop_caches:
        out['page_cache_dropped'] = drop_page_cache()
    with aim_up(path, timeout=120) as url:
        client = LoopbackClient(url)
        params = client.get('/api/params').json()
        columns = ','.join(p for p in params if not p.startswith('__'))[:2000]
        runs_params = {'limit': 50, 'params': columns, 'metrics': 'loss,acc,grad_norm'}
        first, _ = timed_get(client, '/api/runs', runs_params, 1)
        times, _ = timed_get(client, '/api/runs', runs_params, 20)
        out['runs_page_first_ms'] = round(first[0], 1)
        out['runs_page_median_ms'] = round(statistics.median(times), 1)
        sorted_params = dict(runs_params, sort='-params.hparams.lr')
        times, _ = timed_get(client, '/api/runs', sorted_params, 10)
        out['runs_page_sorted_by_param_median_ms'] = round(statistics.median(times), 1)

        series_params = {'names': 'loss', 'max_series': max_series, 'width': 1000,
                         'format': 'binary'}
        f32_params = dict(series_params, precision='f32')
        # cold: the first series answer of this server (float32, what the UI asks for)
        cold32, answer32 = timed_get(client, '/api/series', f32_params, 1)
        warm32, _ = timed_get(client, '/api/series', f32_params, 5)
        out['series_f32_bytes'] = len(answer32.content)
        out['series_f32_cold_ms'] = round(cold32[0], 1)
        out['series_f32_warm_median_ms'] = round(statistics.median(warm32), 1)
        # uncached: a view this server has not seen (another width), nothing reused
        fresh, server = [], []
        for k in range(5):
            times, answer = timed_get(client, '/api/series', dict(f32_params, width=999 - k), 1)
            fresh.append(times[0])
            server.append(answer.server_timing())
        out['series_f32_uncached_median_ms'] = round(statistics.median(fresh), 1)
        out['series_f32_uncached_server_ms'] = {
            k: round(statistics.median(t[k] for t in server), 1) for k in server[0]}
        fresh64 = [timed_get(client, '/api/series', dict(series_params, width=989 - k), 1)[0][0]
                   for k in range(5)]
        out['series_uncached_median_ms'] = round(statistics.median(fresh64), 1)
        # smoothed (EMA 0.9), a view not seen before: every point of every series is read
        # and smoothed (the stored overviews cannot serve it), then reduced
        smoothed = [timed_get(client, '/api/series', dict(f32_params, width=979 - k,
                                                          smoothing=0.9), 1)[0][0]
                    for k in range(5)]
        out['series_f32_smoothed_uncached_median_ms'] = round(statistics.median(smoothed), 1)
        # the centred moving average (a cumulative sum per series: the costlier kind)
        centred = [timed_get(client, '/api/series', dict(f32_params, width=969 - k,
                                                         smoothing_kind='cma', window=25),
                             1)[0][0] for k in range(5)]
        out['series_f32_cma_uncached_median_ms'] = round(statistics.median(centred), 1)
        warm, response = timed_get(client, '/api/series', series_params, 6)
        head = decode_frame(response.content)
        out['series_count'] = len(head['series'])
        out['series_points'] = int(sum(s['n'] for s in head['series']))
        out['series_bytes'] = len(response.content)
        out['series_warm_median_ms'] = round(statistics.median(warm[1:]), 1)

        spike_run = manifest['spike_run']
        spike = [s for s in head['series'] if s['run'] == spike_run and not s['context']]
        out['spike_in_1000_series_response'] = bool(
            spike and float(spike[0]['y'].max()) == manifest['spike_value']
            and manifest['spike_step'] in spike[0]['x'].tolist())
        alone = decode_frame(client.get('/api/series', params={
            'runs': spike_run, 'names': 'loss', 'width': 1000, 'format': 'binary'}).content)
        s = next(s for s in alone['series'] if not s['context'])
        out['spike_alone_points'] = int(s['n'])
        out['spike_visible'] = bool(float(s['y'].max()) == manifest['spike_value'])

        if browser and os.path.exists(CHROMIUM):
            with chromium_page(1400, 900) as page:
                draws = []
                for _ in range(3):
                    page.goto(url + '/metrics', wait_until='commit')
                    page.wait_for_selector('#page[data-ready="1"]', timeout=120_000)
                    stats = page.evaluate('window.__aimMetrics')
                    draws.append(stats)
                out['chart_series'] = draws[0]['series']
                out['chart_points'] = draws[0]['points']
                out['nav_to_chart_cold_ms'] = round(draws[0]['readyAt'], 1)
                out['nav_to_chart_warm_ms'] = round(min(d['readyAt'] for d in draws[1:]), 1)
                out['chart_draw_ms'] = round(min(d['drawMs'] for d in draws), 1)
                out['chart_fetch_warm_ms'] = round(min(d['fetchMs'] for d in draws[1:]), 1)
                out['chart_fetch_cold_ms'] = round(draws[0]['fetchMs'], 1)
                shots = os.path.join(ROOT, 'test-output', 'screenshots')
                os.makedirs(shots, exist_ok=True)
                page.screenshot(path=os.path.join(shots, f'bench-{manifest["runs"]}-runs.png'))
    return out


def verdicts(r: dict) -> list[str]:
    lines = []

    def check(name, value, budget):
        if value is not None:
            lines.append(f'{name}: {value} ms (budget {budget} ms) '
                         f'{"OK" if value <= budget else "OVER"}')
    check('runs page (median)', r.get('runs_page_median_ms'), BUDGET_RUNS_MS)
    check('series, float32, cold (first answer of the server)', r.get('series_f32_cold_ms'),
          BUDGET_SERIES_MS)
    check('series, float32, uncached view (median)', r.get('series_f32_uncached_median_ms'),
          BUDGET_SERIES_MS)
    check('series, float32, repeated view (median)', r.get('series_f32_warm_median_ms'),
          BUDGET_SERIES_MS)
    check('series, float64, uncached view (median)', r.get('series_uncached_median_ms'),
          BUDGET_SERIES_MS)
    check('series, float64, repeated view (median)', r.get('series_warm_median_ms'),
          BUDGET_SERIES_MS)
    check('series, float32, smoothed (EMA 0.9), uncached view (median)',
          r.get('series_f32_smoothed_uncached_median_ms'), BUDGET_SERIES_MS)
    check('series, float32, smoothed (CMA 25), uncached view (median)',
          r.get('series_f32_cma_uncached_median_ms'), BUDGET_SERIES_MS)
    check('navigation to chart, warm', r.get('nav_to_chart_warm_ms'), BUDGET_DRAW_MS)
    check('navigation to chart, cold', r.get('nav_to_chart_cold_ms'), BUDGET_DRAW_MS)
    lines.append(f'spike visible: {r.get("spike_visible")} / in 1000-series answer: '
                 f'{r.get("spike_in_1000_series_response")}')
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='tiny repositories (a smoke check)')
    ap.add_argument('--data-dir', default='/tmp/aimkit-bench-web')
    ap.add_argument('--runs', default=None, help='comma-separated run counts')
    ap.add_argument('--steps', type=int, default=None)
    ap.add_argument('--no-browser', action='store_true')
    ap.add_argument('--json', default=None, help='write the figures to this file')
    ap.add_argument('--drop-caches', action='store_true',
                    help='empty the OS page cache before each server starts (root only): '
                         'the first answer then reads the repository from the disk')
    args = ap.parse_args(argv)
    sizes = [int(n) for n in (args.runs or ('20,100' if args.quick else '1000,10000')).split(',')]
    steps = args.steps or (500 if args.quick else 10_000)
    results = []
    for n in sizes:
        path = os.path.join(args.data_dir, f'{"quick_" if args.quick else ""}r{n}_s{steps}')
        t = time.time()
        manifest = generate(path, n, steps)
        print(f'repository {path}: {n} runs x 4 x {steps} steps '
              f'(ready in {time.time() - t:.1f} s)', flush=True)
        r = bench_repo(path, manifest, browser=not args.no_browser, max_series=1000,
                       drop_caches=args.drop_caches)
        results.append(r)
        print(json.dumps(r, indent=1), flush=True)
        for line in verdicts(r):
            print('  ' + line, flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    ok = all(r['spike_visible'] and r['spike_in_1000_series_response'] for r in results)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
