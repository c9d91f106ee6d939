"""MLflow clients against `aim server`, side by side with MLflow's own tracking server.

Starts a real `aim server` and, when the full `mlflow` package is installed, MLflow's own
server on its SQLite store (`mlflow server --backend-store-uri sqlite:///...`), both on
loopback ports, and measures on each with MLflow's own client (`MlflowClient`):

1. `log_batch` throughput: batches of 1,000 metrics (10 keys x 100 steps) into one run,
   metrics per second (median of the rounds), through MLflow's client and over plain
   HTTP with the JSON body prepared once (the server's own throughput: the client takes
   ~30 ms to build each body, whatever the server);
   and, for scale, through MLflow's client against a server that answers every request
   at once without reading it (a subprocess with a bare HTTP handler): the most any
   server can reach through that client on this machine;
2. `log_metric` latency: one metric a call (median over the calls);
3. `search_runs` latency over R runs (each with 2 params, 2 metrics, a tag, finished):
   all runs of the experiment (pages of 1,000), and a filter with an order
   (`metrics.loss < 0.5 AND params.optimizer = 'adam'`, `metrics.acc DESC`); all runs over
   plain HTTP (the server's time plus JSON decoding, without the client's conversion to
   its objects); the median of the repeats.

    python bench/bench_mlflow.py            # R = 2,000 runs
    python bench/bench_mlflow.py --quick    # R = 10: proves the script works
    python bench/bench_mlflow.py --no-mlflow-server   # aimkit only
    python bench/bench_mlflow.py --log-batch-only     # log_batch figures alone
    python bench/bench_mlflow.py --quick --mlflow-url URL   # an MLflow server already up

Exits 1 if the two servers disagree on a search result.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    import urllib.error
    import urllib.request
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return          # it answers
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f'server did not start: {url}') from None
            time.sleep(0.2)


def start_aim(workdir: str) -> tuple[subprocess.Popen, str]:
    from aim import Repo
    repo = os.path.join(workdir, 'aim-repo')
    os.makedirs(repo)
    Repo(repo, init=True).close()
    port = free_port()
    aim = os.path.join(os.path.dirname(sys.executable), 'aim')
    proc = subprocess.Popen([aim, 'server', '--repo', repo, '--port', str(port), '--no-ui'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    wait_http(url + '/api/remote/v1/hello', proc)
    return proc, url


# appended to experiment names: an MLflow server given with --mlflow-url may hold the
# names already
EXPERIMENT_SUFFIX = ''


def start_mlflow(workdir: str) -> tuple[subprocess.Popen, str] | None:
    try:
        import mlflow.server  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError:
        return None
    port = free_port()
    where = os.path.join(workdir, 'mlflow')
    os.makedirs(where)
    proc = subprocess.Popen([sys.executable, '-m', 'mlflow', 'server', '--host', '127.0.0.1',
                             '--port', str(port), '--backend-store-uri',
                             f'sqlite:///{where}/mlflow.db', '--artifacts-destination',
                             os.path.join(where, 'artifacts'), '--workers', '1'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=where,
                            start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    wait_http(url + '/health', proc)
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


NULL_SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Answer(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'{}')
    do_GET = do_POST
    def log_message(self, *args):
        pass
ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Answer).serve_forever()
"""


def start_null() -> tuple[subprocess.Popen, str]:
    """A server that answers every request at once with ``{}``, reading nothing."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, '-c', NULL_SERVER, str(port)],
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return proc, f'http://127.0.0.1:{port}'
        except OSError:
            if time.monotonic() > deadline:
                stop(proc)
                raise
            time.sleep(0.05)


def bench_log_batch(targets: dict[str, str], rounds: int) -> dict[str, float]:
    """log_batch of 1,000 metrics through MLflow's client into each target (name -> URL),
    the targets taking turns round by round so that all see the same machine load;
    metrics per second, the median of the rounds. The target 'client alone' answers
    without reading: the most any server can reach through the client."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    clients, runs = {}, {}
    for name, url in targets.items():
        client = clients[name] = MlflowClient(tracking_uri=url)
        if name == 'client alone':
            runs[name] = '0' * 32
        else:
            exp = client.create_experiment('log-batch' + EXPERIMENT_SUFFIX)
            runs[name] = client.create_run(exp).info.run_id
    now = int(time.time() * 1000)
    rates: dict[str, list[float]] = {name: [] for name in targets}
    for r in range(rounds):
        for name, client in clients.items():
            metrics = [Metric(f'm{k}', float(k + step), now + step, r * 100 + step)
                       for k in range(10) for step in range(100)]
            t = time.perf_counter()
            client.log_batch(runs[name], metrics=metrics)
            rates[name].append(len(metrics) / (time.perf_counter() - t))
    for name, client in clients.items():
        if name != 'client alone':
            client.set_terminated(runs[name])
    return {name: statistics.median(r) for name, r in rates.items()}


def bench_log_batch_raw(client, url: str, rounds: int) -> float:
    """The server's own throughput: the same batches as JSON prepared once, posted over
    one keep-alive connection (MLflow's client spends ~30 ms building each body)."""
    import json

    import requests
    exp = client.create_experiment('log-batch-raw' + EXPERIMENT_SUFFIX)
    run = client.create_run(exp)
    now = int(time.time() * 1000)
    bodies = [json.dumps({'run_id': run.info.run_id, 'metrics': [
        {'key': f'm{k}', 'value': float(k + step), 'timestamp': now + step,
         'step': r * 100 + step} for k in range(10) for step in range(100)]})
        for r in range(rounds)]
    rates = []
    with requests.Session() as session:
        for body in bodies:
            t = time.perf_counter()
            answer = session.post(f'{url}/api/2.0/mlflow/runs/log-batch', data=body,
                                  headers={'Content-Type': 'application/json'})
            rates.append(1000 / (time.perf_counter() - t))
            answer.raise_for_status()
    client.set_terminated(run.info.run_id)
    return statistics.median(rates)


def search_raw(url: str, exp: str) -> list[str]:
    """Every run of the experiment over plain HTTP (pages of 1,000), JSON decoded."""
    import requests
    out, token = [], None
    with requests.Session() as session:
        while True:
            body = {'experiment_ids': [exp], 'max_results': 1000}
            if token:
                body['page_token'] = token
            page = session.post(f'{url}/api/2.0/mlflow/runs/search', json=body).json()
            out += [r['info']['run_name'] for r in page.get('runs', [])]
            token = page.get('next_page_token')
            if not token:
                return out


def bench_log_metric(client, calls: int) -> float:
    exp = client.create_experiment('log-metric' + EXPERIMENT_SUFFIX)
    run = client.create_run(exp)
    times = []
    for step in range(calls):
        t = time.perf_counter()
        client.log_metric(run.info.run_id, 'loss', 1.0 / (step + 1), step=step)
        times.append(time.perf_counter() - t)
    client.set_terminated(run.info.run_id)
    return statistics.median(times)


def populate(client, n_runs: int) -> str:
    from mlflow.entities import Metric, Param, RunTag
    exp = client.create_experiment('search' + EXPERIMENT_SUFFIX)
    start = 1_750_000_000_000
    optimizers = ('adam', 'sgd', 'rmsprop', 'adamw')

    def one(i: int) -> None:
        run = client.create_run(exp, run_name=f'run-{i}', start_time=start + i * 1000)
        rid = run.info.run_id
        client.log_batch(rid, metrics=[Metric('loss', 1.0 / (1 + i % 97), start + i, 0),
                                       Metric('acc', (i % 89) / 89.0, start + i, 0)],
                         params=[Param('optimizer', optimizers[i % 4]),
                                 Param('lr', str(0.1 / (1 + i % 13)))],
                         tags=[RunTag('team', f't{i % 5}')])
        client.set_terminated(rid, end_time=start + i * 1000 + 500)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(n_runs)))
    return exp


def search_all(client, exp: str) -> list[str]:
    out, token = [], None
    while True:
        page = client.search_runs([exp], max_results=1000, page_token=token)
        out += [r.info.run_name for r in page]
        token = page.token
        if not token:
            return out


FILTER = "metrics.loss < 0.5 AND params.optimizer = 'adam'"
ORDER = ['metrics.acc DESC']


def search_filtered(client, exp: str) -> list[str]:
    return [r.info.run_name for r in client.search_runs([exp], filter_string=FILTER,
                                                        order_by=ORDER, max_results=1000)]


def timed(repeats: int, fn, *args) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--no-mlflow-server', action='store_true')
    parser.add_argument('--mlflow-url', default=None,
                        help="an MLflow server already running (the test suite's) instead "
                             'of starting one: its start-up takes most of a quick run')
    parser.add_argument('--runs', type=int, default=None)
    parser.add_argument('--log-batch-only', action='store_true',
                        help='measure log_batch only (a minute; no search, no populate)')
    args = parser.parse_args()
    os.environ.setdefault('MLFLOW_HTTP_REQUEST_MAX_RETRIES', '0')
    os.environ.setdefault('GIT_PYTHON_REFRESH', 'quiet')
    try:
        from mlflow import MlflowClient
    except ImportError:
        print('mlflow is not installed (bash scripts/install_mlflow.sh): nothing to measure')
        return 0
    n_runs = args.runs or (10 if args.quick else 2000)
    rounds, calls, repeats = (3, 20, 2) if args.quick else (30, 500, 15)
    workdir = tempfile.mkdtemp(prefix='bench-mlflow-')
    servers = []
    try:
        servers.append(('aimkit', *start_aim(workdir)))
        if args.mlflow_url:
            global EXPERIMENT_SUFFIX
            EXPERIMENT_SUFFIX = f'-{os.getpid()}-{int(time.time())}'
            servers.append(('mlflow', None, args.mlflow_url.rstrip('/')))
        elif not args.no_mlflow_server:
            own = start_mlflow(workdir)
            if own is None:
                print("MLflow's own server is not installed: aimkit only")
            else:
                servers.append(('mlflow', *own))
        null_proc, null_url = start_null()
        servers.append(('client alone', null_proc, null_url))
        batch = bench_log_batch({name: url for name, _, url in servers}, rounds)
        ceiling = batch.pop('client alone')
        results: dict[str, dict] = {}
        for name, _, url in servers[:-1]:
            client = MlflowClient(tracking_uri=url)
            res = results[name] = {}
            res['log_batch'] = batch[name]
            res['log_batch_raw'] = bench_log_batch_raw(client, url, rounds)
            if args.log_batch_only:
                continue
            res['log_metric'] = bench_log_metric(client, calls)
            t = time.perf_counter()
            exp = populate(client, n_runs)
            res['populate'] = time.perf_counter() - t
            search_all(client, exp)    # warm
            res['search_all'], res['all_names'] = timed(repeats, search_all, client, exp)
            res['search_filtered'], res['filtered_names'] = timed(repeats, search_filtered,
                                                                  client, exp)
            res['search_raw'], _ = timed(repeats, search_raw, url, exp)
    finally:
        for _, proc, _ in servers:
            if proc is not None:  # None: a server given with --mlflow-url stays up
                stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f'MLflow client against aimkit and MLflow servers; '
          f'{"" if args.log_batch_only else f"{n_runs:,} runs for search, "}medians')
    header = f'{"":34}' + ''.join(f'{name:>14}' for name in results)
    if len(results) == 2:
        header += f'{"aimkit / mlflow":>18}'
    print(header)
    rows = [('log_batch, client (metrics/s)', 'log_batch', lambda v: f'{v:,.0f}', False),
            ('log_batch, HTTP (metrics/s)', 'log_batch_raw', lambda v: f'{v:,.0f}', False),
            ('log_metric (ms a call)', 'log_metric', lambda v: f'{v * 1000:.2f}', True),
            (f'populate {n_runs:,} runs (s)', 'populate', lambda v: f'{v:.1f}', True),
            (f'search_runs all {n_runs:,} (ms)', 'search_all', lambda v: f'{v * 1000:.1f}',
             True),
            ('search_runs filter+order (ms)', 'search_filtered',
             lambda v: f'{v * 1000:.1f}', True),
            (f'search all {n_runs:,}, HTTP (ms)', 'search_raw', lambda v: f'{v * 1000:.1f}',
             True)]
    if args.log_batch_only:
        rows = rows[:2]
    for label, key, fmt, lower_better in rows:
        line = f'{label:34}' + ''.join(f'{fmt(r[key]):>14}' for r in results.values())
        if len(results) == 2:
            a, m = results['aimkit'][key], results['mlflow'][key]
            ratio = m / a if lower_better else a / m
            line += f'{ratio:>16.1f}x'
        print(line)
    line = f'{"log_batch, client alone (metrics/s)":34}{ceiling:>14,.0f}'
    if 'mlflow' in results:
        line += (f'   (no server can do better through the client: at most '
                 f'{ceiling / results["mlflow"]["log_batch"]:.1f}x MLflow\'s)')
    print(line)
    if len(results) == 2:
        print('(the last column: how many times faster aimkit is)')
    if len(results) == 2 and not args.log_batch_only:
        for key in ('all_names', 'filtered_names'):
            ours, theirs = results['aimkit'][key], results['mlflow'][key]
            if ours != theirs:
                print(f'search results differ ({key}): aimkit {ours[:5]}..., '
                      f'mlflow {theirs[:5]}...')
                return 1
        print(f'search results identical on both servers ({len(results["aimkit"]["all_names"])}'
              f' and {len(results["aimkit"]["filtered_names"])} runs)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
