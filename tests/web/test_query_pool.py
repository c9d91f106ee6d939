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
