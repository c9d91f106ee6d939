"""Converting TensorBoard logs: `aim convert tensorboard` over many runs.

One run's event files are written by ``torch.utils.tensorboard.SummaryWriter`` (two tags,
``loss`` and ``acc``, each at 5,000 steps: 10,000 scalars), then copied into 100 run
folders; the conversion of the whole log directory is timed (fresh repository), then a
second conversion (nothing to do: every run is already there). Afterwards every run is
checked to hold its 10,000 points.

    python bench/bench_convert.py            # 100 runs x 10,000 scalars (goal: <= 10 s)
    python bench/bench_convert.py --quick    # 4 runs x 1,000 scalars: proves it works

Prints the figures; exits 1 if a run is missing points.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def write_logs(logdir: str, runs: int, steps: int) -> None:
    from torch.utils.tensorboard import SummaryWriter
    first = os.path.join(logdir, 'run_000')
    writer = SummaryWriter(first)
    for step in range(steps):
        writer.add_scalar('loss', 1.0 / (step + 1), step)
        writer.add_scalar('acc', step / steps, step)
    writer.close()
    for i in range(1, runs):
        shutil.copytree(first, os.path.join(logdir, f'run_{i:03d}'))


def _cpu_seconds() -> float:
    import resource
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--runs', type=int, default=None)
    parser.add_argument('--steps', type=int, default=None, help='steps per tag (2 tags)')
    args = parser.parse_args()
    runs = args.runs or (4 if args.quick else 100)
    steps = args.steps or (500 if args.quick else 5000)
    from aim import Repo
    from aim.converters.tensorboard import convert_tensorboard
    tmp = tempfile.mkdtemp(prefix='bench_convert_')
    try:
        logdir = os.path.join(tmp, 'logs')
        t0 = time.perf_counter()
        write_logs(logdir, runs, steps)
        written = time.perf_counter() - t0
        repo = Repo(os.path.join(tmp, 'repo'), init=True)
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        report = convert_tensorboard(repo, logdir)
        first = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        t0 = time.perf_counter()
        again = convert_tensorboard(repo, logdir)
        second = time.perf_counter() - t0
        bad = [r.hash for r in repo.iter_runs()
               if sum(m.count for m in r.metrics()) != 2 * steps]
        total = runs * 2 * steps
        print(f'TensorBoard logs: {runs} runs x {2 * steps:,} scalars (written in {written:.1f} s)')
        print(f'convert:          {first:.2f} s  ({total / first:,.0f} points/s, '
              f'{len(report.converted)} runs, {report.points:,} points)')
        print(f'  CPU time:       {cpu:.2f} s in all processes (the wall time above '
              f'depends on what else the machine runs; load average '
              f'{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)')
        print(f'convert again:    {second:.2f} s  ({len(again.unchanged)} runs unchanged, '
              f'{len(again.converted)} converted)')
        print(f'runs with wrong point counts: {len(bad)}')
        return 1 if bad or report.failed or again.converted else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
