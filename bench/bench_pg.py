"""Scale-out: the PostgreSQL backend side by side with SQLite, measured in one run.

Starts its own PostgreSQL cluster (tests/pg/cluster.py: Debian's binaries, a temporary
folder, a free loopback port) and real `aim server` processes, and measures:

1. end to end: 4 client processes x N points through one `aim server` into SQLite, into
   PostgreSQL, and through two servers (two clients each) into one PostgreSQL database,
   from the moment they start tracking until every point is acknowledged; then every run
   is read back (points lost or duplicated are counted);
2. many runs at once: P processes x R runs, each tracking 100 points/s, through one server
   into PostgreSQL: the server's and PostgreSQL's CPU load (cores) while they track, the
   slowest close, every point counted (the basis of docs/scale-out.md's estimate);
3. `query_runs` over R runs (median of 5), `run.hparams.lr > 0.05` and an empty query;
4. the series API (`/api/series`) for S series, downsampled to 400 px (median of 5), as
   the binary frame the UI fetches and as JSON;
5. the runs table's first page (`/api/runs`) at T runs (median of 5).

The index rows of (3) and (5) are inserted with SQL (their creation is not what is
measured); the series of (4) are tracked through the SDK into SQLite and copied into
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
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'bench'))

from bench_remote import aim_cmd, bench_clients, check_runs, start_server  # noqa: E402


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and all their children."""
    import psutil
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc] + proc.children(recursive=True):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def postmaster_pid(cluster) -> int:
    with open(os.path.join(cluster.data, 'postmaster.pid')) as f:
        return int(f.readline())


def children_cpu() -> float:
    """CPU seconds of this process' children that have ended (the client processes)."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def throughput(repos: list[str], n: int, clients: int, work: str, db_pids: list[int]
               ) -> tuple[float, int, int, float, float, float]:
    """Points/s of ``clients`` processes split over one server per repository in ``repos``;
    lost and duplicated points; CPU seconds per million points of the servers, of the
    database processes (``db_pids``) and of the clients."""
    servers = [start_server(r) for r in repos]
    try:
        import threading
        results: list = [None] * len(servers)

        def one(i: int, url: str) -> None:
            results[i] = bench_clients(url, n, clients // len(servers), work)

        server_cpu = cpu_seconds([p.pid for p, _ in servers])
        db_cpu = cpu_seconds(db_pids)
        client_cpu = children_cpu()
        threads = [threading.Thread(target=one, args=(i, url))
                   for i, (_, url) in enumerate(servers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        server_cpu = cpu_seconds([p.pid for p, _ in servers]) - server_cpu
        db_cpu = cpu_seconds(db_pids) - db_cpu
        client_cpu = children_cpu() - client_cpu
        elapsed = max(r[0] for r in results)
        lost = dup = 0
        for (_, url), r in zip(servers, results):
            a, b = check_runs(url, r[1], n)
            lost, dup = lost + a, dup + b
    finally:
        for proc, _ in servers:
            stop(proc)
    millions = clients * n / 1e6
    return (clients * n / elapsed, lost, dup, server_cpu / millions, db_cpu / millions,
            client_cpu / millions)


# A client process of the many-runs load: R runs, each tracking ``rate`` points/s (paced
# in 0.1 s ticks) for ``seconds``; prints the time its runs were all closed.
MANY = textwrap.dedent('''
    import sys, time
    from aim import Run
    url, runs, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    live = [Run(repo=url, system_tracking_interval=None, capture_terminal_logs=False)
            for _ in range(runs)]
    for r in live:
        r['hparams'] = {'lr': 0.01}
    per_tick = max(1, rate // 10)
    start = time.monotonic()
    step = 0
    while time.monotonic() - start < seconds:
        for r in live:
            for k in range(per_tick):
                r.track(float(step + k), name='loss', step=step + k, context={'subset': 'train'})
        step += per_tick
        time.sleep(max(0.0, start + step / rate - time.monotonic()))
    t = time.monotonic()
    for r in live:
        r.close()
    print(step, '%.3f' % (time.monotonic() - t), flush=True)
''')


def many_runs(repo: str, processes: int, runs: int, rate: int, seconds: float,
              db_pids: list[int]) -> tuple[float, float, float, int, float]:
    """``processes`` x ``runs`` concurrent runs at ``rate`` points/s each through one server:
    server and database CPU seconds per second of tracking, the slowest close, points
    checked, database bytes per point (tables and indexes)."""
    proc, url = start_server(repo)
    try:
        server_cpu, db_cpu = cpu_seconds([proc.pid]), cpu_seconds(db_pids)
        t = time.monotonic()
        clients = [subprocess.Popen([sys.executable, '-c', MANY, url, str(runs), str(rate),
                                     str(seconds)], stdout=subprocess.PIPE, text=True)
                   for _ in range(processes)]
        outs = [c.communicate(timeout=600)[0].split() for c in clients]
        wall = time.monotonic() - t
        server_cpu = cpu_seconds([proc.pid]) - server_cpu
        db_cpu = cpu_seconds(db_pids) - db_cpu
        from aim import Repo
        points = sum(m.values.sparse_numpy()[0].size
                     for m in Repo(url).query_metrics("metric.name == 'loss'"))
        from aim.storage.migrate import _tables_size
        size = _tables_size(Repo(repo)._store.db)
        expected = sum(int(o[0]) for o in outs) * runs
        if points != expected:
            raise SystemExit(f'many runs: {points} points stored, {expected} tracked')
        return (server_cpu / wall, db_cpu / wall, max(float(o[1]) for o in outs), points,
                size / points)
    finally:
        stop(proc)


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


def bench_series(repo_path: str, hashes: list[str], n_series: int, fmt: str) -> float:
    from fastapi.testclient import TestClient

    from aim import Repo
    from aim.web.app import create_app
    with TestClient(create_app(Repo(repo_path))) as client:
        def series():
            r = client.get('/api/series', params={'runs': ','.join(hashes), 'names': 'loss',
                                                  'width': 400, 'max_series': n_series,
                                                  'format': fmt})
            assert r.status_code == 200, r.text[:300]
            if fmt == 'json':
                assert len(r.json()['series']) == n_series
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
        db = [postmaster_pid(cluster)]
        for label, kind, n_servers in (('SQLite, one server', 'sqlite', 1),
                                       ('PostgreSQL, one server', 'postgresql', 1),
                                       ('PostgreSQL, two servers', 'postgresql', 2)):
            repo = fresh(kind, f'tp_{kind}_{n_servers}')
            rate, lost, dup, server_cpu, db_cpu, client_cpu = throughput(
                [repo] * n_servers, n, 4, work, db if kind == 'postgresql' else [])
            failed |= bool(lost or dup)
            print(f'end to end, {label}: {rate:,.0f} points/s (lost {lost}, duplicated {dup}); '
                  f'CPU per million points: servers {server_cpu:.2f} s, PostgreSQL '
                  f'{db_cpu:.2f} s, clients {client_cpu:.2f} s (their interpreter start '
                  f'included)')
        processes, runs, seconds = (2, 5, 3) if args.quick else (4, 25, 20)
        server_load, db_load, close_s, points, per_point = many_runs(
            fresh('postgresql', 'many'), processes, runs, 100, seconds, db)
        print(f'{processes * runs} concurrent runs x 100 points/s for {seconds} s through one '
              f'server into PostgreSQL: server {server_load:.2f} cores, PostgreSQL '
              f'{db_load:.2f} cores; slowest close {close_s:.2f} s; {points:,} points, none '
              f'lost; {per_point:.1f} database bytes per point')
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
            binary = bench_series(path, hashes, n_series, 'binary')
            as_json = bench_series(path, hashes, n_series, 'json')
            print(f'series API, {n_series:,} series x 300 points at 400 px, {kind}: '
                  f'{binary:.1f} ms (binary frame, as the UI fetches it), {as_json:.1f} ms (JSON)')
        for kind in ('sqlite', 'postgresql'):
            ms = bench_runs_page(fresh(kind, f'table_{kind}'), n_table)
            print(f'runs table first page at {n_table:,} runs, {kind}: {ms:.1f} ms')
    finally:
        cluster.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    raise SystemExit(main())
