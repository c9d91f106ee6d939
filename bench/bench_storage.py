"""Storage benchmarks S1-S6 (see bench/RESULTS.md). Uses only the public API.

    python bench/bench_storage.py           # full sizes
    python bench/bench_storage.py --quick   # tiny sizes: proves the script works
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

PY = sys.executable


def fresh_repo() -> str:
    from aim import Repo
    d = tempfile.mkdtemp(prefix='aimbench-')
    Repo(d, init=True)
    return d


def du(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


# Child processes run as with an installed package: with a bytecode cache (this machine
# sets PYTHONDONTWRITEBYTECODE, which would recompile aim in every new process).
ENV = {k: v for k, v in os.environ.items() if k != 'PYTHONDONTWRITEBYTECODE'}
ENV['PYTHONPYCACHEPREFIX'] = os.path.join(tempfile.gettempdir(), 'aimbench-pycache')


def import_ms(repeats: int) -> float:
    env = ENV
    subprocess.run([PY, '-c', 'import aim, numpy'], check=True, env=env)  # fill the cache

    def cost(code):
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([PY, '-c', code], check=True, env=env)
            out.append(time.perf_counter() - t0)
        return statistics.median(out)
    return (cost('import aim') - cost('pass')) * 1e3


def s1(n: int, repeats: int) -> dict:
    from aim import Run
    vals = [random.random() for _ in range(n)]
    per_call, close_ms, bytes_pt, bare = [], [], [], []
    for _ in range(repeats):
        d = fresh_repo()
        run = Run(repo=d, system_tracking_interval=None, capture_terminal_logs=False)
        track = run.track
        t0 = time.perf_counter()
        for i in range(n):
            track(vals[i], name='loss' if i % 2 == 0 else 'acc', step=i // 2,
                  context={'subset': 'train'})
        t1 = time.perf_counter()
        run.close()
        t2 = time.perf_counter()
        per_call.append((t1 - t0) / n * 1e6)
        close_ms.append((t2 - t1) * 1e3)
        run.repo.close()  # the last connection folds the WAL into the database file
        bytes_pt.append(du(os.path.join(d, '.aim')) / n)
        shutil.rmtree(d)
        sink = []
        t0 = time.perf_counter()
        for i in range(n):
            sink.append((vals[i], 'loss' if i % 2 == 0 else 'acc', i // 2, {'subset': 'train'}))
        bare.append((time.perf_counter() - t0) / n * 1e6)
    return {'us_per_call': statistics.median(per_call), 'close_ms': statistics.median(close_ms),
            'bytes_per_point': statistics.median(bytes_pt), 'bare_loop_us': statistics.median(bare)}


def s2(steps: int, repeats: int) -> float:
    from aim import Run
    names = [f'metric_{k}' for k in range(100)]
    contexts = [{'subset': 'train'}, {'subset': 'val'}]
    out = []
    for _ in range(repeats):
        d = fresh_repo()
        run = Run(repo=d, system_tracking_interval=None, capture_terminal_logs=False)
        t0 = time.perf_counter()
        for step in range(steps):
            for name in names:
                for ctx in contexts:
                    run.track(0.5, name=name, step=step, context=ctx)
        out.append((time.perf_counter() - t0) / (steps * 200) * 1e6)
        run.close()
        shutil.rmtree(d)
    return statistics.median(out)


def build_runs(n_runs: int, steps: int) -> tuple[str, float]:
    from aim import Run
    d = fresh_repo()
    rng = random.Random(0)
    t0 = time.perf_counter()
    for r in range(n_runs):
        run = Run(repo=d, system_tracking_interval=None, capture_terminal_logs=False)
        run['hparams'] = {'lr': rng.choice([0.001, 0.003, 0.01, 0.03]),
                          'batch_size': rng.choice([32, 64, 128]),
                          'optimizer': rng.choice(['adam', 'sgd']), 'layers': rng.randint(2, 8)}
        for i in range(steps):
            for subset in ('train', 'val'):
                ctx = {'subset': subset}
                run.track(rng.random(), name='loss', step=i, context=ctx)
                run.track(rng.random(), name='acc', step=i, context=ctx)
        run.close()
    return d, time.perf_counter() - t0


S4_READ = '''
import sys, time
import numpy  # imported before timing: every reader of series pays it once, whatever the store
t0 = time.perf_counter()
from aim import Repo
repo = Repo(sys.argv[1])
runs = list(repo.iter_runs())
hp = [r['hparams'] for r in runs]
t1 = time.perf_counter()
n = 0
for r in runs:
    for m in r.metrics():
        steps, vals = m.values.sparse_numpy()
        n += 1
t2 = time.perf_counter()
q = "metric.name == 'loss' and metric.context.subset == 'val'"
last = [m.last_value for m in repo.query_metrics(q)]
t3 = time.perf_counter()
assert len(last) == len(runs)
print(f'{t1-t0:.4f} {t2-t1:.4f} {t3-t2:.4f} {n}')
'''


def s4(n_runs: int, steps: int) -> dict:
    d, build = build_runs(n_runs, steps)
    res = subprocess.run([PY, '-c', S4_READ, d], capture_output=True, text=True, check=True,
                         env=ENV)
    iter_s, read_s, last_s, n_series = res.stdout.split()
    shutil.rmtree(d)
    return {'runs': n_runs, 'build_s': build, 'iter_hparams_s': float(iter_s),
            'read_all_series_s': float(read_s), 'series': int(n_series),
            'last_val_loss_s': float(last_s)}


S5_WRITER = '''
import sys
from aim import Run
run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
for i in range(int(sys.argv[2])):
    run.track(float(i), name='loss', step=i, context={'subset': 'train'})
run.close()
'''


def s5(n_procs: int, points: int) -> dict:
    from aim import Repo
    d = fresh_repo()
    t0 = time.perf_counter()
    procs = [subprocess.Popen([PY, '-c', S5_WRITER, d, str(points)], env=ENV)
             for _ in range(n_procs)]
    for p in procs:
        p.wait()
    wall = time.perf_counter() - t0
    repo = Repo(d)
    stored = sum(m.count for r in repo.iter_runs() for m in r.metrics())
    shutil.rmtree(d)
    return {'wall_s': wall, 'lost': n_procs * points - stored}


S6_WRITER = '''
import sys
from aim import Run
run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
print(run.hash, flush=True)
i = 0
while True:
    run.track(float(i), name='loss', step=i)
    i += 1
    if i % 500 == 0:
        sys.stdout.write(f'{i}\\n'); sys.stdout.flush()
'''


def s6(seconds: float) -> dict:
    d = fresh_repo()
    proc = subprocess.Popen([PY, '-c', S6_WRITER, d], stdout=subprocess.PIPE, text=True)
    run_hash = proc.stdout.readline().strip()
    acked = 0
    t0 = time.time()
    while time.time() - t0 < seconds:
        line = proc.stdout.readline()
        if line.strip():
            acked = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    res = subprocess.run([PY, '-c', textwrap.dedent(f'''
        from aim import Repo
        run = Repo({d!r}).get_run({run_hash!r})
        print(run.get_metric('loss').count)
    ''')], capture_output=True, text=True, check=True)
    readable = int(res.stdout)
    shutil.rmtree(d)
    return {'acknowledged': acked, 'readable': readable, 'lost': max(0, acked - readable)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true', help='tiny sizes, to prove the script works')
    args = ap.parse_args()
    q = args.quick
    print(f"import aim: {import_ms(3 if q else 7):.1f} ms (median, over a bare interpreter)")
    r1 = s1(2_000 if q else 200_000, 1 if q else 3)
    print(f"S1 track(): {r1['us_per_call']:.2f} us/call (median of {1 if q else 3}); "
          f"close(): {r1['close_ms']:.1f} ms; bare Python loop appending the same: "
          f"{r1['bare_loop_us']:.2f} us/call (ratio {r1['us_per_call'] / r1['bare_loop_us']:.1f}x)")
    print(f"S3 bytes on disk per point after S1: {r1['bytes_per_point']:.2f}")
    print(f"S2 100 names x 2 contexts x steps: {s2(10 if q else 1000, 1 if q else 3):.2f} us/call")
    for n_runs in ((3,) if q else (100, 500)):
        r4 = s4(n_runs, 20 if q else 1000)
        print(f"S4 {r4['runs']} runs: build {r4['build_s']:.2f} s; fresh process: iterate runs "
              f"reading hparams {r4['iter_hparams_s'] * 1e3:.1f} ms; read {r4['series']} series "
              f"fully into numpy {r4['read_all_series_s']:.3f} s; last loss/val of every run "
              f"{r4['last_val_loss_s'] * 1e3:.1f} ms (query_metrics + last_value)")
    r5 = s5(4, 1_000 if q else 50_000)
    print(f"S5 4 processes x {1_000 if q else 50_000} points: wall {r5['wall_s']:.2f} s, "
          f"lost {r5['lost']}")
    r6 = s6(0.5 if q else 2.0)
    print(f"S6 SIGKILL after {0.5 if q else 2.0} s: acknowledged {r6['acknowledged']}, "
          f"readable at once {r6['readable']}, lost {r6['lost']}")


if __name__ == '__main__':
    main()
