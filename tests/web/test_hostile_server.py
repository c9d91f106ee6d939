"""A real `aim up` under queries that never finish: the server keeps answering, stops the
query at its time limit (or kills the worker stuck in it), refuses a burst with 503 and
shuts down promptly on a signal."""
from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from tests.web.live_server import aim_up
from tests.web.repo_factory import build_repo

LIMIT_S = 2.0
KILL_GRACE_S = 1.0
# A regular expression that backtracks for minutes under a backtracking engine, inside one
# C call that holds the GIL (linear time once the query language runs regexes on RE2).
REGEX_QUERY = "re_match('(a{,20}){,20}$', 'a'*40+'b')"
# Slow for another reason: a loop of 10**12 steps.
LOOP_QUERY = 'any(x < 0 for x in range(10**6) for y in range(10**6))'
METRIC_LOOP_QUERY = ('metric.name == "loss" and '
                     'any(x < 0 for x in range(10**6) for y in range(10**6))')
SERVER_ENV = {'AIM_UI_QUERY_TIMEOUT_S': str(LIMIT_S), 'AIM_UI_QUERY_WORKERS': '2'}


@pytest.fixture(scope='module')
def small_repo(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('hostile'))
    build_repo(path, n_runs=3, steps=20)
    return path


@pytest.fixture(scope='module')
def server(small_repo):
    with aim_up(small_repo, env=SERVER_ENV) as url:
        yield url



# One client for every request of the tests: making a client builds an SSL context, which
# costs the test process tens of milliseconds of CPU each (a burst of 20 would delay the
# timed requests by a second).
HTTP = httpx.Client(timeout=120, limits=httpx.Limits(max_connections=100,
                                                     max_keepalive_connections=0))


def _get_in_background(url: str, path: str, params: dict, out: list) -> threading.Thread:
    def run():
        started = time.monotonic()
        try:
            response = HTTP.get(url + path, params=params)
            out.append((response, time.monotonic() - started))
        except httpx.HTTPError as e:
            out.append((e, time.monotonic() - started))
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _timed_get(url: str, path: str, **params) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = HTTP.get(url + path, params=params, timeout=30)
    return response, time.monotonic() - started


@pytest.mark.parametrize('path, query', [
    ('/api/runs', REGEX_QUERY),
    ('/api/series', REGEX_QUERY),
    ('/api/runs', LOOP_QUERY),
    ('/api/series', METRIC_LOOP_QUERY),
    ('/api/series/export', LOOP_QUERY),
])
def test_other_requests_answer_while_a_hostile_query_runs(server, path, query):
    out: list = []
    thread = _get_in_background(server, path, {'q': query}, out)
    time.sleep(0.5)  # the hostile query is running now
    for other, params in [('/api/status', {}), ('/api/runs', {}),
                          ('/static/js/app.js', {}), ('/api/runs', {'q': 'run.seed > 0'})]:
        response, took = _timed_get(server, other, **params)
        assert response.status_code == 200, (other, response.text)
        assert took < 1.0, f'{other} took {took:.2f} s while a hostile query ran'
    thread.join(LIMIT_S + 10)
    response, took = out[0]
    assert isinstance(response, httpx.Response), response
    if query == REGEX_QUERY and response.status_code == 200:
        return  # a linear-time regex engine answered it: nothing to stop
    assert response.status_code == 504, response.text
    error = response.json()['error']
    assert error['type'] == 'QueryTimeoutError'
    assert f'{LIMIT_S:g} s' in error['message'] and '--query-timeout' in error['message']
    assert error['detail']['query'] == query
    assert LIMIT_S - 0.1 <= took <= LIMIT_S + KILL_GRACE_S + 0.5, took
    # the killed worker is replaced: the next query is answered
    response, _ = _timed_get(server, '/api/runs', q='run.seed >= 0')
    assert response.status_code == 200 and response.json()['total'] == 3


def test_a_burst_of_hostile_queries_is_refused_beyond_the_workers(server):
    out: list = []
    threads = [_get_in_background(server, '/api/runs', {'q': LOOP_QUERY}, out)
               for _ in range(20)]
    time.sleep(0.5)
    for path in ('/api/status', '/api/runs', '/static/js/app.js'):
        response, took = _timed_get(server, path)
        assert response.status_code == 200 and took < 1.0, (path, took)
    for thread in threads:
        thread.join(LIMIT_S + 10)
    statuses = sorted(r.status_code for r, _ in out)
    # Two run at once; the rest wait up to a second for a worker, then get 503 (on a loaded
    # machine a late request may catch a worker freed by the first two and run: 504).
    assert set(statuses) == {503, 504} and statuses.count(504) >= 2, statuses
    assert statuses.count(503) >= 12, statuses
    for response, took in out:
        if response.status_code == 503:
            error = response.json()['error']
            assert error['type'] == 'ServerBusy' and 'Try again' in error['message']
            assert took < 1.0 + 1.5  # refused after a short wait, never queued for long
        else:
            assert took < 1.0 + LIMIT_S + KILL_GRACE_S + 0.5
    response, _ = _timed_get(server, '/api/runs', q='run.seed >= 0')
    assert response.status_code == 200


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


@pytest.mark.skipif(not os.path.isdir('/proc'), reason='reads child processes from /proc')
@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_with_a_query_in_flight(small_repo, sig):
    procs: list = []
    with aim_up(small_repo, env=SERVER_ENV, process=procs) as url:
        proc = procs[0]
        out: list = []
        thread = _get_in_background(url, '/api/runs', {'q': LOOP_QUERY}, out)
        time.sleep(0.7)
        workers = _children(proc.pid)
        started = time.monotonic()
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except Exception:
            pass
        took = time.monotonic() - started
        assert took < 3.0, f'the server took {took:.1f} s to exit'
        assert workers, 'the query runs in a worker process'
        thread.join(5)
        response = out[0][0]
        if isinstance(response, httpx.Response):  # answered before the socket closed
            assert response.status_code == 503
            assert response.json()['error']['type'] == 'ServerShuttingDown'
        time.sleep(0.2)
        for pid in workers:
            assert not os.path.exists(f'/proc/{pid}') or \
                open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0] == 'Z'


@pytest.mark.skipif(not os.path.isdir('/proc'), reason='reads child processes from /proc')
def test_a_worker_that_never_answers_is_killed_at_the_limit(small_repo):
    """A worker stuck in one long C call sees no cancel; SIGSTOP makes one stuck for sure.
    The server kills it shortly after the limit, answers 504 and starts a fresh one."""
    procs: list = []
    env = dict(SERVER_ENV, AIM_UI_QUERY_WORKERS='1')
    with aim_up(small_repo, env=env, process=procs) as url:
        out: list = []
        thread = _get_in_background(url, '/api/runs', {'q': LOOP_QUERY}, out)
        time.sleep(0.5)
        workers = _children(procs[0].pid)
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGSTOP)
        response, took = _timed_get(url, '/api/status')
        assert response.status_code == 200 and took < 1.0
        thread.join(LIMIT_S + 10)
        response, took = out[0]
        assert response.status_code == 504, response.text
        assert response.json()['error']['type'] == 'QueryTimeoutError'
        assert LIMIT_S + KILL_GRACE_S - 0.1 <= took <= LIMIT_S + KILL_GRACE_S + 1.0, took
        time.sleep(0.2)
        assert not os.path.exists(f'/proc/{workers[0]}') or \
            open(f'/proc/{workers[0]}/stat').read().rsplit(')', 1)[1].split()[0] == 'Z'
        deadline = time.monotonic() + 10  # its replacement starts before the next query
        while [w for w in _children(procs[0].pid) if w != workers[0]] == [] and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert [w for w in _children(procs[0].pid) if w != workers[0]]
        response, _ = _timed_get(url, '/api/runs', q='run.seed >= 0')
        assert response.status_code == 200 and response.json()['total'] == 3
