"""A small repository with three runs (the data set of the Aim 3 behaviour reference)."""
from __future__ import annotations

import time

import pytest


@pytest.fixture
def three_runs(repo, make_run):
    """run-0: lr .001 adam bs 32 cifar10 [baseline] exp1 (only_first=True)
    run-1: lr .01 sgd bs 64 mnist [tuned] exp1
    run-2: lr .1 adam bs 128 cifar10 [tuned] exp2
    metrics: loss{subset: train} steps 0..9, acc{subset: val} steps 0..4, int_metric{}.
    Returns (repo, [hash0, hash1, hash2]); query results are newest first (2, 1, 0)."""
    specs = [(0.001, 'adam', 32, 'cifar10', 'baseline', 'exp1'),
             (0.01, 'sgd', 64, 'mnist', 'tuned', 'exp1'),
             (0.1, 'adam', 128, 'cifar10', 'tuned', 'exp2')]
    hashes = []
    for i, (lr, opt, bs, dataset, tag, exp) in enumerate(specs):
        run = make_run(experiment=exp)
        run['hparams'] = {'lr': lr, 'optimizer': opt, 'batch_size': bs}
        run['dataset'] = dataset
        run['run_index'] = i
        if i == 0:
            run['only_first'] = True
        run.add_tag(tag)
        for step in range(10):
            run.track(1.0 / (step + 1) + i, name='loss', step=step, context={'subset': 'train'})
        for step in range(5):
            run.track(step * 0.1, name='acc', step=step, context={'subset': 'val'})
        run.track(3, name='int_metric')
        run.close()
        hashes.append(run.hash)
        time.sleep(0.002)   # distinct creation times: a stable newest-first order
    return repo, hashes


@pytest.fixture
def run_query(three_runs):
    repo, hashes = three_runs

    def query(q, **kwargs):
        return [hashes.index(item.run.hash) for item in repo.query_runs(q, **kwargs)]
    return query


@pytest.fixture
def trace_query(three_runs):
    repo, hashes = three_runs

    def query(q, **kwargs):
        return [(hashes.index(m.run.hash), m.name) for m in repo.query_metrics(q, **kwargs)]
    return query
