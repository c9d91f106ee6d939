"""The None rule: a param a run does not have is undefined, and to `==`, `!=`, `is` and
`is not` undefined is None. So `x == None` and `x is None` both mean "missing or null",
and `x != None` / `x is not None` are exactly their negation (issue 16, bug 3: on a
300-run repository `!= None` matched 283 runs, `== None` 0 and `is None` 282).

Every query is answered through the SDK on SQLite and on PostgreSQL, and checked to be
decided by the SQL alone (no Python per run), so push-down and evaluator must agree.
"""
from __future__ import annotations

import time

import pytest

from aim.ql import Query

pytestmark = pytest.mark.backends

# name -> params; 'missing' has hparams without comment, 'no_hparams' has no hparams at all
RUNS = {
    'value': {'hparams': {'lr': 0.1, 'comment': 'tuned by hand'}},
    'explicit_none': {'hparams': {'lr': 0.01, 'comment': None}},
    'missing': {'hparams': {'lr': 0.001}},
    'empty': {'hparams': {'lr': 0.2, 'comment': ''}},
    'no_hparams': {'other': 1},
}
NULL_OR_MISSING = {'explicit_none', 'missing', 'no_hparams'}
SET = {'value', 'empty'}


@pytest.fixture
def none_repo(repo, make_run):
    names = {}
    for name, params in RUNS.items():
        run = make_run()
        for key, value in params.items():
            run[key] = value
        run.track(1.0, name='loss', context={'subset': 'train'} if name == 'value' else {})
        run.close()
        names[run.hash] = name
        time.sleep(0.002)
    return repo, names


def runs(none_repo, text):
    repo, names = none_repo
    return {names[item.run.hash] for item in repo.query_runs(text)}


@pytest.mark.parametrize('text, expected', [
    ('run.hparams.comment == None', NULL_OR_MISSING),
    ('run.hparams.comment is None', NULL_OR_MISSING),
    ('None == run.hparams.comment', NULL_OR_MISSING),
    ("run['hparams', 'comment'] == None", NULL_OR_MISSING),
    ("run['hparams']['comment'] is None", NULL_OR_MISSING),
    ('run.hparams.comment != None', SET),
    ('run.hparams.comment is not None', SET),
    ('None != run.hparams.comment', SET),
    ('not run.hparams.comment == None', SET),
    ('not run.hparams.comment is None', SET),
    ('not run.hparams.comment', NULL_OR_MISSING | {'empty'}),
    ('run.hparams.comment', {'value'}),
    ("run.hparams.comment == 'tuned by hand'", {'value'}),
    ("run.hparams.comment != 'tuned by hand'", set(RUNS) - {'value'}),
    ("run.hparams.comment in [None, 'tuned by hand']", NULL_OR_MISSING | {'value'}),
    ('run.hparams.comment not in [None]', SET),
    ("run.hparams.comment in ['tuned by hand']", {'value'}),
    # a missing top-level param, and a whole missing branch
    ('run.comment == None', set(RUNS)),
    ('run.comment is not None', set()),
    ('run.hparams == None', {'no_hparams'}),
    ('run.hparams != None', set(RUNS) - {'no_hparams'}),
    # orderings with a missing or null value stay false
    ("run.hparams.comment > ''", {'value'}),
    ("run.hparams.comment <= 'z'", {'value', 'empty'}),
])
def test_none_forms(none_repo, text, expected):
    assert runs(none_repo, text) == expected, text
    # decided by the SQL alone: the SQL and the evaluator agree on these forms
    assert not Query(text, 'run').needs_residual, text


def test_each_form_and_its_negation_split_the_runs(none_repo):
    for form, negation in (('== None', '!= None'), ('is None', 'is not None')):
        got = runs(none_repo, f'run.hparams.comment {form}')
        assert got | runs(none_repo, f'run.hparams.comment {negation}') == set(RUNS)
        assert not got & runs(none_repo, f'run.hparams.comment {negation}')
    assert runs(none_repo, 'run.hparams.comment == None') == \
        runs(none_repo, 'run.hparams.comment is None')


def test_evaluator_alone_agrees(none_repo):
    """The same forms decided in Python for each run (not pushed down: a call keeps the
    comparison out of SQL)."""
    for text, expected in (('str(run.hash) != "" and run.hparams.comment == None',
                            NULL_OR_MISSING),
                           ('len(run.hash) > 0 and run.hparams.comment is not None', SET),
                           ('bool(run.hash) and not run.hparams.comment',
                            NULL_OR_MISSING | {'empty'})):
        assert Query(text, 'run').needs_residual
        assert runs(none_repo, text) == expected, text


def test_context_keys_follow_the_same_rule(none_repo):
    repo, names = none_repo

    def traces(text):
        return {names[m.run.hash] for m in repo.query_metrics(text)}

    assert traces("metric.name == 'loss' and metric.context.subset == None") == \
        set(RUNS) - {'value'}
    assert traces("metric.name == 'loss' and metric.context.subset is not None") == {'value'}
    assert traces("metric.name == 'loss' and run.hparams.comment is None") == NULL_OR_MISSING
    assert traces("metric.name == 'loss' and run.hparams.comment != None") == SET
