"""Scale-out: the PostgreSQL backend side by side with SQLite, measured in one run.

Starts its own PostgreSQL cluster (tests/pg/cluster.py: Debian's binaries, a temporary
folder, a free loopback port) and real `aim server` processes, and measures:

1. end to end: 4 client processes x N points through one `aim server` into SQLite, into
   PostgreSQL, and through two servers (two clients each) into one PostgreSQL database,
   from the moment they start tracking until every point is acknowledged; then every run
   is read back (points lost or duplicated are counted);
2. `query_runs` over R runs (median of 5), `run.hparams.lr > 0.05` and an empty query;
3. the series API (`/api/series`) for S series, downsampled to 400 px (median of 5);
4. the runs table's first page (`/api/runs`) at T runs (median of 5).

The index rows of (2) and (4) are inserted with SQL (their creation is not what is
measured); the series of (3) are tracked through the SDK into SQLite and copied into
PostgreSQL with `aim storage migrate`.

    python bench/bench_pg.py            # N = 1,000,000, R = 10,000, S = 1,000, T = 100,000
    python bench/bench_pg.py --quick    # small sizes: proves the script works

Exits 1 if a point was lost or duplicated.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'bench'))

from bench_remote import aim_cmd, bench_clients, check_runs, free_port  # noqa: E402


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


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def throughput(repos: list[str], n: int, clients: int, work: str) -> tuple[float, int, int]:
    """Points/s of ``clients`` processes split over one server per repository in ``repos``."""
    servers = [start_server(r) for r in repos]
    try:
        import threading
        results: list = [None] * len(servers)

        def one(i: int, url: str) -> None:
            results[i] = bench_clients(url, n, clients // len(servers), work)

        threads = [threading.Thread(target=one, args=(i, url))
                   for i, (_, url) in enumerate(servers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = max(r[0] for r in results)
        lost = dup = 0
        for (_, url), r in zip(servers, results):
            a, b = check_runs(url, r[1], n)
            lost, dup = lost + a, dup + b
    finally:
        for proc, _ in servers:
            stop(proc)
    return clients * n / elapsed, lost, dup


def fill_runs(store, n_runs: int) -> None:
    """``n_runs`` index rows (props and params) inserted with SQL in one transaction."""
    from aim.storage.index import RepoIndex
    from aim.storage.repository import index_row
    rng = random.Random(0)
    now = time.time()
    with store.db.write() as conn:
        rows = []
        for i in range(n_runs):
            params = json.dumps({'hparams': {'lr': rng.choice([0.001, 0.01, 0.1]),
                                             'batch': rng.choice([32, 64, 128]),
                                             'optimizer': rng.choice(['adam', 'sgd'])},
                                 'seed': i})
            props = {'name': f'run {i}', 'experiment': f'exp{i % 10}', 'tags': ['t'],
                     'archived': False, 'creation_time': now - i, 'end_time': now - i + 1}
            rows.append((f'bench{i:07d}', props, params))
        conn.executemany('INSERT INTO run_props VALUES(?, ?, ?)',
                         [(h, k, json.dumps(v)) for h, props, _ in rows
                          for k, v in props.items()] +
                         [(h, 'params', p) for h, _, p in rows])
        for h, props, params in rows:
            RepoIndex.upsert_run(conn, index_row(h, props, params))


def median_ms(fn, rounds: int = 5) -> float:
    fn()      # warm: caches, prepared plans
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def bench_queries(repo_path: str, n_runs: int) -> tuple[float, float, int]:
    from aim import Repo
    repo = Repo(repo_path)
    fill_runs(repo._store, n_runs)
    matched = len(list(repo.query_runs('run.hparams.lr > 0.05').iter_runs()))
    q = median_ms(lambda: list(repo.query_runs('run.hparams.lr > 0.05').iter_runs()))
    every = median_ms(lambda: list(repo.query_runs('').iter_runs()))
    return q, every, matched


def bench_runs_page(repo_path: str, n_runs: int) -> float:
    from fastapi.testclient import TestClient

    from aim import Repo
    from aim.web.app import create_app
    repo = Repo(repo_path)
    fill_runs(repo._store, n_runs)
    with TestClient(create_app(repo)) as client:
        def page():
            r = client.get('/api/runs', params={'limit': 50})
            assert r.status_code == 200 and len(r.json()['runs']) == 50, r.text[:300]
        return median_ms(page)


def build_series(path: str, n_series: int, points: int) -> list[str]:
    from aim import Repo, Run
    repo = Repo(path, init=True)
    hashes = []
    per_run = 100
    for r in range((n_series + per_run - 1) // per_run):
        run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
        for k in range(min(per_run, n_series - r * per_run)):
            for s in range(points):
                run.track(s * 0.01 + k, name='loss', step=s, context={'layer': k})
        run.close()
        hashes.append(run.hash)
    return hashes


def bench_series(repo_path: str, hashes: list[str], n_series: int) -> float:
    from fastapi.testclient import TestClient

    from aim import Repo
    from aim.web.app import create_app
    with TestClient(create_app(Repo(repo_path))) as client:
        def series():
            r = client.get('/api/series', params={'runs': ','.join(hashes), 'names': 'loss',
                                                  'width': 400, 'max_series': n_series})
            assert r.status_code == 200 and len(r.json()['series']) == n_series, r.text[:300]
        return median_ms(series)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true')
    args = ap.parse_args()
    n, n_query, n_series, n_table = (20_000, 500, 50, 2_000) if args.quick else \
        (1_000_000, 10_000, 1_000, 100_000)
    from tests.pg.cluster import PgCluster
    work = tempfile.mkdtemp(prefix='aim-bench-pg-')
    cluster = PgCluster().start()
    failed = False
    try:
        def fresh(kind: str, name: str) -> str:
            path = cluster.create_database(name) if kind == 'postgresql' else \
                os.path.join(work, name)
            subprocess.run(aim_cmd() + ['init', '--repo', path], check=True,
                           capture_output=True)
            return path

        print(f'# PostgreSQL {cluster.bindir.split("/")[-2]}, SQLite; 4 clients x {n:,} points')
        for label, kind, n_servers in (('SQLite, one server', 'sqlite', 1),
                                       ('PostgreSQL, one server', 'postgresql', 1),
                                       ('PostgreSQL, two servers', 'postgresql', 2)):
            repo = fresh(kind, f'tp_{kind}_{n_servers}')
            rate, lost, dup = throughput([repo] * n_servers, n, 4, work)
            failed |= bool(lost or dup)
            print(f'end to end, {label}: {rate:,.0f} points/s (lost {lost}, duplicated {dup})')
        for kind in ('sqlite', 'postgresql'):
            q, every, matched = bench_queries(fresh(kind, f'q_{kind}'), n_query)
            print(f'query_runs over {n_query:,} runs, {kind}: run.hparams.lr > 0.05 '
                  f'{q:.1f} ms ({matched:,} runs); empty query {every:.1f} ms')
        src = os.path.join(work, 'series_sqlite')
        hashes = build_series(src, n_series, 300)
        dst = cluster.create_database('series_pg')
        subprocess.run(aim_cmd() + ['storage', 'migrate', src, dst], check=True,
                       capture_output=True)
        for kind, path in (('sqlite', src), ('postgresql', dst)):
            ms = bench_series(path, hashes, n_series)
            print(f'series API, {n_series:,} series x 300 points at 400 px, {kind}: {ms:.1f} ms')
        for kind in ('sqlite', 'postgresql'):
            ms = bench_runs_page(fresh(kind, f'table_{kind}'), n_table)
            print(f'runs table first page at {n_table:,} runs, {kind}: {ms:.1f} ms')
    finally:
        cluster.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    raise SystemExit(main())
