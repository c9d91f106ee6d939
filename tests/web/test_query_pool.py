"""The query worker processes behind `aim up`, driven directly (real child processes)."""
from __future__ import annotations

import threading
import time

import pytest

from aim import Repo
from aim.web.api_errors import ApiError
from aim.web.query_pool import QueryWorkers
from tests.web.repo_factory import build_repo, quiet_run


@pytest.fixture
def pool(tmp_path):
    build_repo(str(tmp_path), n_runs=2, steps=5)
    workers = QueryWorkers(str(tmp_path), size=1, timeout_s=2.0)
    yield workers
    workers.close()


def test_a_worker_sees_runs_written_after_it_started(pool):
    assert len(pool.run_hashes('run.seed >= 0')) == 2
    assert len(pool.metric_keys('metric.name == "loss"', [], 100)) == 2
    run = quiet_run(Repo(pool.repo_root))
    run['seed'] = 7
    run.track(1.0, name='loss', step=0)
    run.close()
    assert len(pool.run_hashes('run.seed >= 0')) == 3
    keys = pool.metric_keys('metric.name == "loss"', [], 100)
    assert len(keys) == 3 and (run.hash, 'loss', {}) in keys
    assert len(pool.metric_keys('metric.name != ""', ['acc'], 100)) == 4  # train, val
    assert len(pool.metric_keys('metric.name != ""', [], 4)) == 4


def test_query_errors_keep_their_position(pool):
    with pytest.raises(ApiError) as e:
        pool.run_hashes('run.seed >= ')
    assert e.value.status == 400 and e.value.type == 'QuerySyntaxError'
    assert e.value.detail['position'] is not None and e.value.detail['query'] == 'run.seed >= '
    assert pool.run_hashes('run.seed == 1')  # the worker lives on


def test_close_ends_a_running_query_at_once(pool):
    errors: list = []

    def slow():
        try:
            pool.run_hashes('any(x < 0 for x in range(10**6) for y in range(10**6))')
        except ApiError as e:
            errors.append((e, time.monotonic()))
    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)
    closed_at = time.monotonic()
    pool.close()
    thread.join(5)
    error, at = errors[0]
    assert error.status == 503 and error.type == 'ServerShuttingDown'
    assert at - closed_at < 0.5
    with pytest.raises(ApiError) as e:
        pool.run_hashes('run.seed >= 0')
    assert e.value.status == 503


def test_a_worker_outlives_the_thread_that_started_it(pool):
    """The server's request threads come and go; the workers must not go with them."""
    thread = threading.Thread(target=pool.run_hashes, args=('run.seed >= 0',))
    thread.start()
    thread.join()
    time.sleep(0.3)
    [worker] = pool._idle
    assert worker.alive()
    assert len(pool.run_hashes('run.seed >= 0')) == 2
    assert pool._idle == [worker]  # the same process answered


def test_a_worker_ends_when_the_server_dies(tmp_path):
    """Killed with SIGKILL in the middle of a query, the server leaves no worker behind."""
    import os
    import signal
    import subprocess
    import sys
    build_repo(str(tmp_path), n_runs=1, steps=3)
    code = ('import sys, threading, time; from aim.web.query_pool import QueryWorkers; '
            f'p = QueryWorkers({str(tmp_path)!r}, size=1, timeout_s=60); '
            'p.run_hashes("run.seed >= 0"); pid = p._idle[0].process.pid; '
            'threading.Thread(target=p.run_hashes, daemon=True, args=("any(x < 0 for x in '
            'range(10**6) for y in range(10**6))",)).start(); time.sleep(0.5); '
            'print(pid, flush=True); sys.stdin.read()')
    server = subprocess.Popen([sys.executable, '-c', code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    worker_pid = int(server.stdout.readline())
    os.kill(server.pid, signal.SIGKILL)
    server.wait(5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(worker_pid, signal.SIGKILL)
        pytest.fail('the worker outlived the server')


def test_a_worker_answers_when_the_server_has_many_open_files(pool, tmp_path):
    """A server that has opened many files gets pipe descriptors numbered past 1024, which
    select() refuses; the pool must still talk to its workers."""
    import os
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1300:
        pytest.skip(f'the open-file limit ({hard}) is too low to open 1,100 files')
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1300), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        fresh = QueryWorkers(pool.repo_root, size=1, timeout_s=5.0)
        try:
            assert len(fresh.run_hashes('run.seed >= 0')) == 2
        finally:
            fresh.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
