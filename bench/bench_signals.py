"""Signal loop: SIGTERM and SIGINT at random moments while a script tracks.

Each trial starts a child that tracks in a tight loop (plain; calling run.flush() every
200 steps; setting a param every 200 steps; or swallowing every exception around
track()), and records each step after its track() returns. After a random delay the
child gets SIGTERM or SIGINT (or runs under `timeout -s TERM`, as a SLURM time limit
does). Then a fresh reader checks: the process exited as by the signal, soon; the run is
closed (not active, an end time, no journal left); every acknowledged step is stored.

    python bench/bench_signals.py            # 100 signals and 10 timeouts
    python bench/bench_signals.py --quick    # 6 trials: proves the script works

tests/sdk/test_signals.py runs 20 trials of this loop in the test suite.

Prints the counts (trials, hangs, wrong exit statuses, runs left open, lost acknowledged
points) and the time from the signal to the exit (median, 95th percentile, maximum).
Exits 1 if any trial failed.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CHILD = textwrap.dedent('''
    import os, signal, sys
    from aim import Run
    repo, ack_path, style = sys.argv[1], sys.argv[2], sys.argv[3]
    run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    fd = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    print(run.hash, flush=True)
    step = 0
    while True:
        if style == 'swallow':
            try:
                run.track(float(step), name='loss', step=step, context={'subset': 'train'})
            except BaseException:
                continue
        else:
            run.track(float(step), name='loss', step=step, context={'subset': 'train'})
            run.track(step, name='count', step=step, epoch=step // 100)
        os.pwrite(fd, b'%20d' % step, 0)
        if style == 'flush' and step % 200 == 0:
            run.flush()
        if style == 'params' and step % 200 == 0:
            run['last'] = step
        step += 1
''')
# a child started from a background shell job inherits SIGINT ignored: give it the default
DEFAULT_SIGINT_THEN_EXEC = ('import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL)'
                            '; os.execv(sys.executable, [sys.executable] + sys.argv[1:])')


def check(repo_dir: str, run_hash: str, ack_path: str) -> tuple[bool, int]:
    """(closed, lost acknowledged points)."""
    from aim import Repo
    with open(ack_path, 'rb') as f:
        acked = int(f.read() or b'-1')
    repo = Repo(repo_dir)
    run = repo.get_run(run_hash)
    closed = (run.active is False and run.end_time is not None and
              not os.path.exists(os.path.join(repo_dir, '.aim', 'journal', run_hash)))
    metric = run.get_metric('loss', {'subset': 'train'})
    steps = set() if metric is None else {int(s) for s in metric.values.sparse_numpy()[0]}
    lost = sum(1 for s in range(acked + 1) if s not in steps)
    repo.close()
    return closed, lost


def trial(script: str, how: str, style: str, delay: float, timeout_s: float) -> dict:
    from aim import Repo
    repo_dir = tempfile.mkdtemp(prefix='aimsig-')
    Repo(repo_dir, init=True).close()
    ack_path = os.path.join(repo_dir, 'ack')
    argv = [sys.executable, script, repo_dir, ack_path, style]
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        argv = [sys.executable, '-c', DEFAULT_SIGINT_THEN_EXEC] + argv[1:]
    env = dict(os.environ, PYTHONPATH=ROOT)
    if how == 'timeout':
        argv = ['timeout', '--preserve-status', '-s', 'TERM', str(delay)] + argv
    launched = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    run_hash = proc.stdout.readline().strip()
    out = {'how': how, 'style': style, 'hang': False, 'status_ok': False, 'closed': False,
           'lost': 0, 'exit_s': None}
    if how != 'timeout':
        while not (os.path.exists(ack_path) and os.path.getsize(ack_path) == 20):
            if proc.poll() is not None:
                break
            time.sleep(0.005)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGTERM if how == 'sigterm' else signal.SIGINT)
        t_signal = time.perf_counter()
    try:
        proc.wait(timeout=timeout_s + (delay if how == 'timeout' else 0))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        out['hang'] = True
        shutil.rmtree(repo_dir, ignore_errors=True)
        return out
    ended = time.perf_counter()
    if how == 'timeout':
        # the time `timeout N` took beyond its N seconds (Python's start is in the N)
        out['over_s'] = ended - launched - delay
        out['status_ok'] = proc.returncode == 128 + signal.SIGTERM
    else:
        out['exit_s'] = ended - t_signal
        want = -signal.SIGTERM if how == 'sigterm' else -signal.SIGINT
        out['status_ok'] = proc.returncode == want
    if not out['status_ok']:
        out['stderr'] = proc.stderr.read()[-500:]
    if run_hash:
        out['closed'], out['lost'] = check(repo_dir, run_hash, ack_path)
    shutil.rmtree(repo_dir, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='6 trials, to prove the script works')
    ap.add_argument('--signals', type=int, default=100, help='signal trials (half each)')
    ap.add_argument('--timeouts', type=int, default=10, help='`timeout -s TERM` trials')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    n_signals, n_timeouts = (4, 2) if args.quick else (args.signals, args.timeouts)
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix='aimsig-script-')
    script = os.path.join(work, 'child.py')
    with open(script, 'w') as f:
        f.write(CHILD)
    styles = ['plain', 'flush', 'params', 'swallow']
    results = []
    for k in range(n_signals):
        how = 'sigterm' if k % 2 == 0 else 'sigint'
        style = styles[(k // 2) % len(styles)]
        if how == 'sigint' and style == 'swallow':
            style = 'plain'  # a script that swallows KeyboardInterrupt is asking to go on
        results.append(trial(script, how, style, rng.uniform(0.0, 1.0), 10))
    for _ in range(n_timeouts):
        results.append(trial(script, 'timeout', 'plain', rng.choice([1, 2]), 10))
    shutil.rmtree(work, ignore_errors=True)

    failed = [r for r in results if r['hang'] or not r['status_ok'] or not r['closed']
              or r['lost']]
    times = sorted(r['exit_s'] for r in results if r['exit_s'] is not None)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else float('nan')
    print(f'trials: {len(results)} ({n_signals} SIGTERM/SIGINT, {n_timeouts} timeout -s TERM)')
    print(f'hangs: {sum(r["hang"] for r in results)}; wrong exit status: '
          f'{sum(not r["status_ok"] and not r["hang"] for r in results)}; runs left open: '
          f'{sum(not r["closed"] and not r["hang"] for r in results)}; lost acknowledged '
          f'points: {sum(r["lost"] for r in results)}')
    if times:
        print(f'signal to exit: median {statistics.median(times) * 1e3:.0f} ms, '
              f'p95 {p95 * 1e3:.0f} ms, max {times[-1] * 1e3:.0f} ms')
    over = [r['over_s'] for r in results if 'over_s' in r]
    if over:
        print(f'timeout -s TERM N: exited {statistics.median(over) * 1e3:.0f} ms (median), '
              f'{max(over) * 1e3:.0f} ms (max) after the N seconds')
    for r in failed[:5]:
        print('FAILED', r)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
