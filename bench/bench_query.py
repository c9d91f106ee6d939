"""Query benchmarks (issue 3). Repositories are written through the public SDK; every
measurement runs in a fresh process (cold: the first query of the process, after
`import aim` and numpy, with compiled bytecode cached as in an installed package), then
the same query again (warm, median of 5).

    python bench/bench_query.py           # S4 repos (100 and 500 runs x 4 series x 1000 steps)
                                          # and a 10,000-run repo (4 series x 10 steps)
    python bench/bench_query.py --quick   # tiny sizes: proves the script works

Goals (issue 3; real Aim 3.29.1 in brackets): query_runs <= 5 ms on 100 runs [27 ms],
<= 10 ms on 500 [49 ms], <= 50 ms on 10,000; query + load of 500 series <= 0.3 s [3.1 s];
last values of 500 runs <= 15 ms [51 ms].
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

PY = sys.executable
Q_RUNS = "run.hparams.lr > 0.005 and run.hparams.optimizer == 'adam'"
Q_VAL_LOSS = "metric.name == 'loss' and metric.context.subset == 'val'"
Q_VAL_LOSS_BS = Q_VAL_LOSS + ' and run.hparams.batch_size == 64'


def build_repo(n_runs: int, steps: int) -> tuple[str, float]:
    """S4-shaped runs (bench_storage.py builds them): hparams {lr, batch_size, optimizer,
    layers}; loss and acc for subset train and val at every step."""
    from bench_storage import build_runs
    return build_runs(n_runs, steps)


READ = '''
import json, statistics, sys, time
import numpy  # Aim imports numpy with `import aim`; aimkit loads it on first use: not timed
from aim import Repo
from aim.ql import IndexSource, Query
from aim.ql.pushdown import Sql
from aim.sdk.collections import _read_connection
Q_RUNS, Q_VAL_LOSS, Q_VAL_LOSS_BS = sys.argv[2:5]
repo = Repo(sys.argv[1])

def timed(fn):
    t0 = time.perf_counter(); out = fn(); return time.perf_counter() - t0, out

def runs():
    return [item.run.hash for item in repo.query_runs(Q_RUNS)]

def load(q):
    def f():
        n = 0
        for m in repo.query_metrics(q):
            steps, values = m.values.sparse_numpy()
            n += len(values)
        return n
    return f

def last_values():
    return [m.last_value for m in repo.query_metrics(Q_VAL_LOSS)]

def python_only():
    q = Query(Q_RUNS, 'run')
    q.pushed, q.needs_residual = Sql('1', [], False), True
    return [v.hash for v in q.iter_runs(IndexSource(_read_connection(repo)))]

out = {}
for name, fn in (('query_runs', runs), ('load_val_loss', load(Q_VAL_LOSS)),
                 ('load_val_loss_bs64', load(Q_VAL_LOSS_BS)), ('last_val_loss', last_values),
                 ('query_runs_python_only', python_only)):
    cold, result = timed(fn)
    warm = statistics.median(timed(fn)[0] for _ in range(5))
    size = result if isinstance(result, int) else len(result)
    out[name] = {'cold_s': cold, 'warm_s': warm, 'size': size}
print(json.dumps(out))
'''


def _env() -> dict:
    """The measuring process' environment: with a bytecode cache, as an installed package
    has (some shells set PYTHONDONTWRITEBYTECODE, and then every cold process would compile
    aimkit from source). The cache lives outside the source tree."""
    env = dict(os.environ)
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    env['PYTHONPYCACHEPREFIX'] = os.path.join(tempfile.gettempdir(), 'aimkit-bench-pycache')
    return env


def measure(d: str) -> dict:
    env = _env()
    subprocess.run([PY, '-c', 'import numpy, aim, aim.sdk.collections, aim.sdk.trace'],
                   env=env, check=True)      # fills the bytecode cache
    res = subprocess.run([PY, '-c', READ, d, Q_RUNS, Q_VAL_LOSS, Q_VAL_LOSS_BS],
                         capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout)


def report(n_runs: int, steps: int, build_s: float, r: dict) -> None:
    def ms(key, which='cold_s'):
        return r[key][which] * 1e3
    print(f'{n_runs} runs x 4 series x {steps} steps (built through the SDK in {build_s:.1f} s):')
    print(f'  query_runs("{Q_RUNS}") -> {r["query_runs"]["size"]} runs: '
          f'{ms("query_runs"):.1f} ms cold, {ms("query_runs", "warm_s"):.1f} ms warm '
          f'(evaluated in Python only, without push-down: '
          f'{ms("query_runs_python_only", "warm_s"):.1f} ms warm)')
    print(f'  query_metrics("{Q_VAL_LOSS}") + every series into numpy '
          f'({r["load_val_loss"]["size"]} points): {ms("load_val_loss"):.1f} ms cold, '
          f'{ms("load_val_loss", "warm_s"):.1f} ms warm')
    print(f'  the same "and run.hparams.batch_size == 64" ({r["load_val_loss_bs64"]["size"]} '
          f'points): {ms("load_val_loss_bs64"):.1f} ms cold, '
          f'{ms("load_val_loss_bs64", "warm_s"):.1f} ms warm')
    print(f'  last loss/val value of every run through a query '
          f'({r["last_val_loss"]["size"]} runs): {ms("last_val_loss"):.1f} ms cold, '
          f'{ms("last_val_loss", "warm_s"):.1f} ms warm')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true', help='tiny sizes, to prove the script works')
    ap.add_argument('--large', type=int, default=10_000, help='runs in the large repository')
    args = ap.parse_args()
    sizes = [(3, 20), (30, 2)] if args.quick else [(100, 1000), (500, 1000), (args.large, 10)]
    for n_runs, steps in sizes:
        d, build_s = build_repo(n_runs, steps)
        try:
            report(n_runs, steps, build_s, measure(d))
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()
