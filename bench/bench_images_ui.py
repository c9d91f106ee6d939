"""The images explorer's first screen: 100 runs × 100 steps of images in a real Chromium.

Writes a repository through the SDK (each run tracks one 256×256 image a step under
``samples``, context ``{'subset': 'val'}``; every image distinct), starts ``aim up`` and
opens ``/images`` in headless Chromium (1400×900). Timed: from navigation to the last
thumbnail on screen drawn (the page's series and points requests, then the thumbnails the
IntersectionObserver asks for). Counted: thumbnails fetched against the cards on the page.
Times are the page's own (performance.now(), from navigation start). Twice per layout: with the server's thumbnail cache cold, then warm (a fresh browser each
time, so the browser's cache never answers).

    python bench/bench_images_ui.py            # 100 runs × 100 steps (goal: first screen <= 1 s)
    python bench/bench_images_ui.py --quick    # 10 runs × 10 steps: proves it works

Prints the figures; exits 1 if the page fetched no thumbnail or one far off screen, or logged an error.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

VISIBLE_DONE = """() => {
  if (!document.querySelector('#page[data-ready]')) return false;
  const shown = [...document.querySelectorAll('img.thumb')].filter((i) => {
    const r = i.getBoundingClientRect();
    return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth;
  });
  return shown.length > 0 && shown.every((i) => i.getAttribute('src') && i.complete && i.naturalWidth > 0)
    && performance.now();
}"""
# when each API answer and the last thumbnail arrived, in ms since navigation started
TIMINGS = """() => {
  const out = { series: null, points: null, thumbs: 0 };
  for (const e of performance.getEntriesByType('resource')) {
    if (e.name.includes('/api/objects/')) out[e.name.includes('/points') ? 'points' : 'series'] = e.responseEnd;
    if (e.name.includes('/api/blobs/')) out.thumbs = Math.max(out.thumbs, e.responseEnd);
  }
  return out;
}"""


def write_repo(path: str, runs: int, steps: int) -> float:
    import numpy as np

    from aim import Image, Repo, Run
    repo = Repo(path, init=True)
    yy, xx = np.mgrid[0:256, 0:256]
    started = time.perf_counter()
    for r in range(runs):
        run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
        run.name = f'run-{r}'
        run['hparams'] = {'lr': 10 ** -(r % 4 + 1), 'seed': r}
        for s in range(steps):
            img = np.stack([(xx + s * 3) % 256, (yy + r * 7) % 256,
                            (xx + yy + r + s) % 256], axis=-1).astype(np.uint8)
            run.track(Image(img, caption=f'run {r} step {s}'), name='samples', step=s,
                      context={'subset': 'val'})
        run.close()
    return time.perf_counter() - started


def first_screen(url: str, query: str) -> dict:
    from tests.web.live_server import chromium_page
    with chromium_page(width=1400, height=900) as page:
        thumbs: list[str] = []
        page.on('request', lambda r: '/api/blobs/' in r.url and thumbs.append(r.url))
        page.goto(f'{url}/images{query}')
        done_ms = page.wait_for_function(VISIBLE_DONE, timeout=60_000, polling='raf').json_value()
        api = page.evaluate(TIMINGS)
        cards = page.locator('img.thumb').count()
        page.wait_for_timeout(300)   # anything fetched late still counts
        visible = page.evaluate("""() => [...document.querySelectorAll('img.thumb')].filter((i) => {
            const r = i.getBoundingClientRect();
            return r.bottom > -150 && r.top < innerHeight + 150; }).length""")
        errors = list(page.console_errors)
    return {'seconds': done_ms / 1000, 'cards': cards, 'fetched': len(thumbs), 'near_screen': visible,
            'series_ms': api.get('series'), 'points_ms': api.get('points'), 'errors': errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--repo', help='reuse (or create) the repository here')
    args = parser.parse_args()
    runs, steps = (10, 10) if args.quick else (100, 100)
    from tests.web.live_server import aim_up
    path = args.repo or tempfile.mkdtemp(prefix='bench-images-')
    if not os.path.exists(os.path.join(path, '.aim')):
        wrote = write_repo(path, runs, steps)
        print(f'wrote {runs} runs x {steps} steps of 256x256 images in {wrote:.1f} s')
    ok = True
    with aim_up(path) as url:
        for label, query in (('rows by run (default)', ''), ('one grid (rows: none)', '?rows=none')):
            for state in ('cold', 'warm'):
                m = first_screen(url, query)
                print(f'{label:24} {state}: first screen {m["seconds"] * 1000:6.0f} ms; '
                      f'thumbnails fetched {m["fetched"]} of {m["cards"]} cards '
                      f'({m["near_screen"]} on or near screen); series answered at '
                      f'{m["series_ms"]:.0f} ms, points at {m["points_ms"]:.0f} ms')
                if m['errors']:
                    print('  console errors:', m['errors'])
                ok = ok and m['fetched'] > 0 and m['fetched'] <= m['near_screen'] \
                    and not m['errors']
    print(f'goal: first screen <= 1000 ms for 100 runs x 100 steps{" (quick mode)" if args.quick else ""}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
