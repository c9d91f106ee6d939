"""Rich objects: what ``track()`` costs the caller, how fast the flusher encodes, and what
the objects cost on disk.

Caller-side figures are per call, object construction included, each kind in a run of
its own (so that no other kind's encoding competes for the interpreter), the median of
several rounds; a ``track(float)`` loop is measured beside them as the machine's yardstick.

    python bench/bench_objects.py            # full figures
    python bench/bench_objects.py --quick    # small counts: proves it works

Goals (issue 13; Aim 3.29.1 measured 7.1 ms, 0.34 ms and 0.08 ms on this machine size):
``track(Image(256x256x3 uint8))`` <= 1 ms, ``track(Distribution(10,000 samples))``
<= 0.1 ms, ``track(Text)`` <= 0.01 ms in the caller; disk <= encoded size + 5 %.
Exits 1 if an object tracked is not read back.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def per_call(fn, n: int, rounds: int) -> float:
    times = []
    step = 0
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn(step)
            step += 1
        times.append((time.perf_counter() - t) / n)
    return statistics.median(times)


def caller_costs(repo: str, n: dict, rounds: int) -> dict:
    import numpy as np

    from aim import Distribution, Image, Run, Text
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    samples = rng.normal(size=10_000)
    out = {}
    cases = {
        'float': lambda run: lambda i: run.track(0.5, name='loss', step=i),
        'image': lambda run: lambda i: run.track(Image(pixels), name='img', step=i),
        'distribution': lambda run: lambda i: run.track(Distribution(samples), name='d',
                                                        step=i),
        'text': lambda run: lambda i: run.track(Text('a generated sentence of text'),
                                                name='t', step=i),
    }
    for kind, make in cases.items():
        run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
        out[kind] = per_call(make(run), n[kind], rounds)
        t = time.perf_counter()
        run.close()      # the flusher encodes and stores what is left
        out[kind + '_close'] = time.perf_counter() - t
        out[kind + '_count'] = n[kind] * rounds
        out[kind + '_hash'] = run.hash
    return out


def encode_throughput(repo: str, images: int) -> float:
    """Seconds per 256x256x3 image from track() to committed (distinct random images)."""
    import numpy as np

    from aim import Image, Run
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(images)]
    run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    t = time.perf_counter()
    for i, f in enumerate(frames):
        run.track(Image(f), name='frames', step=i)
    run.close()
    return (time.perf_counter() - t) / images


def disk_cost(images: int) -> tuple[int, int]:
    """(encoded bytes of the blobs, bytes the repository grew by) for distinct images."""
    import numpy as np

    from aim import Image, Repo, Run
    from aim.storage.maintenance import directory_size
    tmp = tempfile.mkdtemp(prefix='bench_objects_disk_')
    try:
        Repo(tmp, init=True)
        run = Run(repo=tmp, system_tracking_interval=None, capture_terminal_logs=False)
        run.track(0.0, name='warm', step=0)
        run.close()
        store = Repo(tmp)._store
        store.reclaim_space()
        before = directory_size(os.path.join(tmp, '.aim'))
        rng = np.random.default_rng(2)
        # smooth images, as a model produces: they compress, unlike noise
        y, x = np.mgrid[0:256, 0:256]
        run = Run(repo=tmp, system_tracking_interval=None, capture_terminal_logs=False)
        for i in range(images):
            img = np.stack([(x * (i + 1) + y) % 256, (y * 2 + i) % 256,
                            rng.integers(0, 256, (256, 256))], axis=-1).astype(np.uint8)
            run.track(Image(img), name='samples', step=i)
        run.close()
        store.reclaim_space()
        after = directory_size(os.path.join(tmp, '.aim'))
        encoded = int(store.db.query('SELECT COALESCE(SUM(size), 0) FROM blobs')[0][0])
        return encoded, after - before
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args()
    quick = args.quick
    n = {'float': 2000 if quick else 50_000, 'image': 5 if quick else 100,
         'distribution': 20 if quick else 1000, 'text': 200 if quick else 10_000}
    rounds = 2 if quick else 5
    from aim import Repo
    tmp = tempfile.mkdtemp(prefix='bench_objects_')
    failed = False
    try:
        Repo(tmp, init=True)
        costs = caller_costs(tmp, n, rounds)
        repo = Repo(tmp)
        for kind, getter in (('image', 'get_image_sequence'), ('text', 'get_text_sequence'),
                             ('distribution', 'get_distribution_sequence')):
            name = {'image': 'img', 'text': 't', 'distribution': 'd'}[kind]
            seq = getattr(repo.get_run(costs[kind + '_hash']), getter)(name)
            if seq is None or seq.count != costs[kind + '_count']:
                print(f'FAILED: {kind}: {seq and seq.count} objects read back, '
                      f'{costs[kind + "_count"]} tracked')
                failed = True
        per_image = encode_throughput(tmp, 4 if quick else 40)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    encoded, grown = disk_cost(5 if quick else 50)
    print(f'caller, per call (median of {rounds} rounds):')
    print(f'  track(float)                             {costs["float"] * 1e6:9.2f} us')
    print(f'  track(Image(256x256x3 uint8))            {costs["image"] * 1e3:9.3f} ms'
          f'   goal <= 1 ms    [Aim 3.29.1: 7.1 ms]')
    print(f'  track(Distribution(10,000 samples))      {costs["distribution"] * 1e3:9.3f} ms'
          f'   goal <= 0.1 ms  [Aim 3.29.1: 0.34 ms]')
    print(f'  track(Text)                              {costs["text"] * 1e6:9.2f} us'
          f'   goal <= 10 us   [Aim 3.29.1: 80 us]')
    print(f'  ratio track(Text) / track(float)         {costs["text"] / costs["float"]:9.1f}x')
    print('close() after the loop (the flusher encodes what is left):')
    for kind in ('image', 'distribution', 'text'):
        print(f'  {kind:<13} {costs[kind + "_count"]:>7,} objects  '
              f'{costs[kind + "_close"]:7.2f} s')
    print(f'background: track() to committed, per distinct 256x256x3 random image '
          f'{per_image * 1e3:8.1f} ms')
    print(f'disk: {encoded:,} bytes of encoded images, the repository grew by {grown:,} '
          f'({grown / encoded:.3f}x; goal <= 1.05x)')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
