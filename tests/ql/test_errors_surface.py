"""An error from reading the data (a run removed meanwhile, a damaged series) is never
turned into *undefined* (no match) by the query's own rules for value errors: it reaches
the caller, naming the run."""
from __future__ import annotations

import json

import numpy as np
import pytest

from aim.errors import AimError, MissingRunError, RunError
from aim.ql import Query
from aim.ql.views import MetricView, RunView

ROW = ('abc123', 'Run: abc123', 'exp1', None, '[]', 0, 1.0, 2.0, 2.0, json.dumps({'lr': 0.1}))
SERIES = ('loss', '{}', 3, 0, 2, 0.5, 0.5, 2.0, 2.0)


class Source:
    """Index rows in memory; the points come from `load`."""

    def __init__(self, load):
        self.load = load

    def is_active(self, row):
        return False

    def run_series(self, run_hash):
        return [SERIES]

    def load_series(self, run_hash, name, context):
        return self.load()


def gone():
    raise MissingRunError('run abc123 was removed while the query read it', 'abc123')


def damaged():
    raise ValueError('buffer size must be a multiple of element size')


def fine():
    return np.arange(3), np.array([2.0, 1.0, 0.5])


def matches(text, load):
    run = RunView(ROW, Source(load))
    q = Query(text, 'trace')
    assert q.evaluator is not None
    return q.evaluator.matches({'run': run, 'metric': MetricView(SERIES, run)})


QUERIES = ['metric.values_between(0, 2).mean() > 0', 'metric.last_n(2).max() > 0',
           'metric.values.mean() > 0', 'min(metric.values) > 0', 'metric.first > 0',
           "run.metrics['loss'].last_n(1).max() > 0",
           'any(m.last_n(1).max() > 0 for m in run.metrics)',
           '[m.values_between(0, 9).min() for m in run.metrics][0] > 0']


@pytest.mark.parametrize('text', QUERIES)
def test_the_queries_match_readable_data(text):
    assert matches(text, fine) is True


@pytest.mark.parametrize('text', QUERIES)
def test_a_removed_run_is_an_error_not_a_non_match(text):
    with pytest.raises(MissingRunError):
        matches(text, gone)


@pytest.mark.parametrize('text', QUERIES)
def test_unreadable_points_are_an_error_naming_the_series(text):
    with pytest.raises(RunError) as info:
        matches(text, damaged)
    assert isinstance(info.value, AimError)
    message = str(info.value)
    assert 'abc123' in message and "'loss'" in message and 'buffer size' in message
