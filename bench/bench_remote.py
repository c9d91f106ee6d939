"""Remote tracking: what an `aim://` run costs the training loop, and how fast points reach
the server.

Starts a real `aim server` on a free loopback port and measures:

1. the caller's `track()` on an `aim://` run (median of 5 rounds of N calls, while the
   sender ships in the background), beside `track()` on a local run in the same process;
2. `close()` right after N points, with the server reachable (everything acknowledged);
3. end to end: 4 client processes × N points each to the one server, from the moment they
   start tracking until every point is acknowledged (committed, so queryable); then
   every run is read back: points lost and duplicated are counted;
4. latency: a point tracked every 50 ms by a live run, polled through the server until
   it is visible (median and maximum of the delays).

    python bench/bench_remote.py            # N = 1,000,000
    python bench/bench_remote.py --quick    # N = 20,000: proves the script works

Exits 1 if a point was lost or duplicated.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CLIENT = textwrap.dedent('''
    import os, sys, time
    from aim import Run
    url, n, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    run = Run(repo=url, system_tracking_interval=None, capture_terminal_logs=False)
    print(run.hash, flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    track = run.track
    for i in range(n):
        track(float(i), name='loss', step=i, context={'subset': 'train'})
    t = time.perf_counter()
    run.close()
    print('%.6f %.6f' % (time.time(), time.perf_counter() - t), flush=True)
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def aim_cmd() -> list[str]:
    return [os.path.join(os.path.dirname(sys.executable), 'aim')]


def start_server(repo: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(aim_cmd() + ['server', '--repo', repo, '--port', str(port),
                                         '--no-ui'],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    if 'listening' not in line:
        raise SystemExit(f'aim server did not start: {line!r}')
    return proc, f'aim://127.0.0.1:{port}'


def bench_track(url: str, local_repo: str, n: int) -> tuple[float, float]:
    from aim import Run
    out = []
    for repo in (url, local_repo):
        rounds = []
        run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
        track = run.track
        for r in range(5):
            base = r * n
            t = time.perf_counter()
            for i in range(base, base + n):
                track(float(i), name='loss', step=i)
            rounds.append((time.perf_counter() - t) / n * 1e6)
        run.close()
        out.append(statistics.median(rounds))
    return out[0], out[1]


def bench_close(url: str, n: int) -> float:
    from aim import Run
    run = Run(repo=url, system_tracking_interval=None, capture_terminal_logs=False)
    for i in range(n):
        run.track(float(i), name='loss', step=i)
    t = time.perf_counter()
    run.close()
    return time.perf_counter() - t


def bench_clients(url: str, n: int, clients: int, work: str) -> tuple[float, list, list]:
    go = os.path.join(work, f'go-{time.time()}')
    procs = [subprocess.Popen([sys.executable, '-c', CLIENT, url, str(n), go],
                              stdout=subprocess.PIPE, text=True, env={**os.environ})
             for _ in range(clients)]
    hashes = [p.stdout.readline().strip() for p in procs]  # type: ignore[union-attr]
    start = time.time()
    open(go, 'w').close()
    ends, closes = [], []
    for p in procs:
        end, close_s = p.stdout.readline().split()  # type: ignore[union-attr]
        ends.append(float(end))
        closes.append(float(close_s))
        p.wait()
    return max(ends) - start, hashes, closes


def check_runs(url: str, hashes: list[str], n: int) -> tuple[int, int]:
    import numpy as np

    from aim.sdk.repo import Repo
    repo = Repo(url)
    lost = dup = 0
    for h in hashes:
        steps, _ = repo.get_run(h).get_metric('loss', {'subset': 'train'}).values.sparse_numpy()
        uniq = np.unique(steps)
        dup += len(steps) - len(uniq)
        lost += n - len(np.intersect1d(uniq, np.arange(n)))
    return lost, dup


def bench_latency(url: str, samples: int) -> list[float]:
    from aim import Run
    from aim.sdk.repo import Repo
    run = Run(repo=url, system_tracking_interval=None, capture_terminal_logs=False)
    reader = Repo(url)
    delays = []
    for i in range(samples):
        t = time.time()
        run.track(float(i), name='probe', step=i)
        while True:
            row = reader._store.index.series_row(run.hash, 'probe', '{}')
            if row is not None and row['last_step'] is not None and row['last_step'] >= i:
                break
            time.sleep(0.005)
        delays.append(time.time() - t)
        time.sleep(0.05)
    run.close()
    return delays


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('-n', type=int, default=None, help='points per client')
    ap.add_argument('--clients', type=int, default=4)
    args = ap.parse_args()
    n = args.n or (20_000 if args.quick else 1_000_000)
    work = tempfile.mkdtemp(prefix='aim-bench-remote-')
    os.environ['AIM_SPOOL_DIR'] = os.path.join(work, 'spool')
    server_repo = os.path.join(work, 'server')
    local_repo = os.path.join(work, 'local')
    for d in (server_repo, local_repo):
        os.makedirs(d)
        subprocess.run(aim_cmd() + ['init', '--repo', d], check=True, capture_output=True)
    proc, url = start_server(server_repo)
    try:
        remote_us, local_us = bench_track(url, local_repo, min(n, 200_000))
        print(f'track() on an aim:// run: {remote_us:.2f} us per call (median of 5 rounds of '
              f'{min(n, 200_000):,}); on a local run: {local_us:.2f} us')
        close_s = bench_close(url, n)
        print(f'close() after {n:,} points, server reachable: {close_s:.3f} s')
        wall, hashes, closes = bench_clients(url, n, args.clients, work)
        total = n * args.clients
        lost, dup = check_runs(url, hashes, n)
        print(f'{args.clients} clients x {n:,} points: {wall:.2f} s until every point was '
              f'acknowledged = {total / wall:,.0f} points/s end to end; lost {lost}, '
              f'duplicated {dup}; close() in the clients: median {statistics.median(closes):.3f} '
              f's, max {max(closes):.3f} s')
        delays = bench_latency(url, 10 if args.quick else 40)
        print(f'track() to visible through the server: median {statistics.median(delays):.3f} '
              f's, max {max(delays):.3f} s ({len(delays)} samples)')
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if lost or dup else 0


if __name__ == '__main__':
    sys.exit(main())
