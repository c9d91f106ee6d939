"""The SQL push-down never disagrees with the Python evaluator.

Runs with params of every JSON type (and missing keys, NaN, inf, nested dicts, lists)
are written into a real index database with the storage schema; each query is answered
twice, once through the planner (SQL + residual) and once by the evaluator alone.
"""
from __future__ import annotations

import json
import math
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aim.errors import QueryError
from aim.ql import IndexSource, Query
from aim.ql.pushdown import Sql
from aim.storage.encoding import dumps_params
from aim.storage.index import SCHEMA

VALUES = [0, 1, -3, 0.5, 0.005, 1e300, math.nan, math.inf, -math.inf, True, False, '', 'adam',
          'Adam', 'sgd', '1', 'é', None, [], [1, 2], ['adam', 'x'], {}, {'lr': 0.1},
          {'$float': 'x'}, 2 ** 62]


def _runs():
    runs = []
    for i, value in enumerate(VALUES):
        runs.append({'hparams': {'lr': value, 'optimizer': VALUES[(i * 7) % len(VALUES)]},
                     'flag': VALUES[(i * 3) % len(VALUES)], 'tags_param': value})
    runs.append({})                                  # every key missing
    runs.append({'hparams': 'not a dict'})
    runs.append({'hparams': {'lr': {'deeper': 1}}})
    return runs


def _fill(execute):
    for i, params in enumerate(_runs()):
        h = f'run{i:03d}'
        execute('INSERT INTO runs(hash, name, experiment, description, tags, archived, '
                'creation_time, end_time, updated_at, params) VALUES (?,?,?,?,?,?,?,?,?,?)',
                (h, None if i % 5 == 0 else f'run {i}', ['exp1', 'exp2', None][i % 3],
                 None, json.dumps(['a', 'b'][: i % 3]), i % 4 == 0, 1000.0 + i,
                 None if i % 2 else 2000.0 + i, 3000.0, dumps_params(params)))
        for name, ctx, last in (('loss', {'subset': 'train'}, 0.1 * i),
                                ('loss', {'subset': 'val', 'k': i % 2 == 0}, None),
                                ('acc', {}, float(i))):
            execute('INSERT INTO series(run_hash, name, context, count, first_step, '
                    'last_step, last, min, max) VALUES (?,?,?,?,?,?,?,?,?)',
                    (h, name, json.dumps(ctx, sort_keys=True, separators=(',', ':')),
                     i, 0, i, last, last, last))


@pytest.fixture(scope='module', params=['sqlite', 'postgresql'])
def index(request, tmp_path_factory):
    """The same index rows in SQLite and in PostgreSQL (each with its own push-down)."""
    if request.param == 'postgresql':
        from aim.storage import postgres
        cluster = request.getfixturevalue('pg_cluster')
        from tests.pg.cluster import create_database_from_template
        url = create_database_from_template(cluster, 'aim_pushdown')
        db = postgres.PgDatabase(url)
        with db.write() as conn:
            _fill(conn.execute)
        db.close()
        ro = postgres.connect(url, readonly=True)
        yield IndexSource(ro)
        ro.close()
        return
    path = str(tmp_path_factory.mktemp('idx') / 'repo.db')
    conn = sqlite3.connect(path, isolation_level=None)
    for stmt in SCHEMA:
        conn.execute(stmt)
    _fill(conn.execute)
    conn.close()
    ro = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
    yield IndexSource(ro)
    ro.close()


def _planned(text, kind, source):
    q = Query(text, kind)
    rows = q.iter_runs(source) if kind == 'run' else q.iter_traces(source)
    return [_key(v) for v in rows], q


def _python_only(text, kind, source):
    q = Query(text, kind)
    q.pushed = Sql('1', [], False)
    q._pushed_in = {'sqlite': q.pushed, 'postgresql': Sql('TRUE', [], False)}
    q.needs_residual = True
    rows = q.iter_runs(source) if kind == 'run' else q.iter_traces(source)
    return [_key(v) for v in rows]


def _key(view):
    if hasattr(view, 'params'):
        return view.hash
    return (view.run.hash, view.name, view.row[1])


def assert_same(text, kind, source, expect_exact=None):
    planned, q = _planned(text, kind, source)
    assert planned == _python_only(text, kind, source), text
    if expect_exact is not None:
        assert (not q.needs_residual) == expect_exact, (text, q.pushed)
    return planned


RUN_QUERIES = [
    'run.hparams.lr > 0.005', 'run.hparams.lr >= 0', 'run.hparams.lr < 1', 'run.hparams.lr == 1',
    'run.hparams.lr == True', 'run.hparams.lr != 0', 'run.hparams.lr == None',
    'run.hparams.lr != None', 'run.hparams.lr is None', 'run.hparams.lr is not None',
    'run.hparams.lr is True', 'run.hparams.lr == "adam"', 'run.hparams.lr > "a"',
    'run.hparams.lr <= "Adam"', "run.hparams.lr == float('nan')", "run.hparams.lr < math.inf",
    "run.hparams.lr == math.inf", "run.hparams.lr > -math.inf", 'run.hparams.lr',
    'not run.hparams.lr', "run.hparams.lr in [0, 'adam', None, True]",
    "run.hparams.lr not in [0, 'adam', None]", "'adam' in run.hparams.lr",
    "'adam' not in run.hparams.lr", "'lr' in run.hparams.lr", "'' in run.hparams.lr",
    "'$float' in run.hparams.lr", 'run.hparams.lr == 2**62', 'run.hparams.lr > 2**62 - 1',
    "run['hparams', 'optimizer'] == 'adam'", "run['hparams']['optimizer'] != 'adam'",
    "run.hparams.optimizer > 'B' and run.hparams.lr > 0", "run.flag or run.hparams.lr",
    "not (run.flag and run.hparams.lr == 0)", "run.tags_param.lr == 0.1",
    "run.hparams.lr.deeper == 1", "run.missing == 0", "run.missing != 0", "not run.missing",
    "run.name == 'run 3'", "run.name != 'run 3'", "run.name > 'run 2'", "run.name == None",
    "run.name is None", "'un 1' in run.name", "'un 1' not in run.name", "run.name == 3",
    "run.experiment in ['exp1', None]", "not run.experiment", "run.description == None",
    "run.archived", "run.archived == False", "run.archived == 0", "run.archived != 1",
    "run.creation_time > 1010", "run.end_time > 2005", "run.end_time == None",
    "run.end_time is None", "not run.end_time", "run.end_time > 'x'",
    "'a' in run.tags", "'b' not in run.tags", "run.tags", "not run.tags", "run.tags == []",
    "run.metrics['acc'].last > 5", "run.metrics['acc'].last == None",
    "run.metrics['loss', {'subset': 'train'}].last < 0.3",
    "run.metrics['loss', {'subset': 'val', 'k': True}].last > 0",
    "run.metrics['loss', {'subset': 'val', 'k': True}].count >= 4",
    "run.metrics['loss', {'subset': 'val', 'k': 1}].count >= 0",
    "run.metrics['nope'].last != 1", "run.metrics['acc'].count == 'x'",
    "run.created_at > datetime.fromtimestamp(1010)",
    "run.created_at <= datetime.fromtimestamp(1010)",
    "run.created_at == datetime.fromtimestamp(1010)",
    "run.finalized_at < datetime.fromtimestamp(2010)",
    "run.created_at > 5", "run.created_at != 5",
    "0 < run.hparams.lr < 1", "run.hparams.lr < 1 < run.hparams.lr",
    "run.hparams.lr > 0.005 or run.name == 'run 2'",
    "run.hparams.lr > 0.005 and (run.name == 'run 2' or len(str(run.hparams.optimizer)) > 2)",
    "not (run.hparams.lr > 0.005 or str(run.flag) == 'True')",
    "run.hparams.lr * 2 > 0.01", "True", "False", "1 == 1 and run.hparams.lr == 0",
    "run.hparams == {'lr': 0.1}", "run.hparams.lr == [1, 2]", "run.hparams.lr in 'adam'",
    "None == run.hparams.lr", "None != run.hparams.lr", "run.missing.deeper is not None",
    "run.hparams.lr.deeper == None", "run.missing in [None]", "run.missing not in [None, 1]",
    "run.missing not in 'abc'", "run.description != None", "run.finalized_at == None",
]


@pytest.mark.parametrize('text', RUN_QUERIES)
def test_run_pushdown_agrees_with_evaluator(index, text):
    assert_same(text, 'run', index)


TRACE_QUERIES = [
    "metric.name == 'loss'", "metric == 'acc'", "metric != 'acc'", "metric.name > 'b'",
    "metric in ['acc']", "'os' in metric.name", "'os' in metric",
    "metric.context.subset == 'val'", "context['subset'] != 'val'", "context.k == True",
    "context.k == 1", "context.k", "not context", "metric.context == {}",
    "metric.context != {}", "metric.last < 0.5", "metric.last == None", "metric.last != 0.5",
    "metric.min > 1", "metric.count >= 3", "metric.first_step == 0", "metric.last_step < 5",
    "metric.name == 'loss' and run.hparams.lr > 0.005",
    "metric.name == 'loss' or run.name == 'run 1'",
    "metric.run.hparams.optimizer == 'adam' and metric = 'loss' and context['subset'] = 'val'",
    "trace.name == 'acc' and not run.archived",
]


@pytest.mark.parametrize('text', TRACE_QUERIES)
def test_trace_pushdown_agrees_with_evaluator(index, text):
    assert_same(text, 'trace', index)


@pytest.mark.parametrize('text', [
    "run.hparams.lr > 0.005 and run.hparams.optimizer == 'adam'",
    "run.name == 'x' or not run.archived", "'a' in run.tags", "run.metrics['acc'].last > 1",
    "run.hparams.lr in [1, 2]", "not run.hparams.lr",
])
def test_simple_predicates_are_exact(index, text):
    assert_same(text, 'run', index, expect_exact=True)


@pytest.mark.parametrize('text', [
    "run.hparams.lr * 2 > 1", "run.active", "len(run.tags) > 0",
])
def test_other_predicates_are_decided_in_python(index, text):
    assert_same(text, 'run', index, expect_exact=False)


# ------------------------------------------------------------------------ Hypothesis
_refs = st.sampled_from([
    'run.hparams.lr', 'run.hparams.optimizer', "run['hparams', 'lr']", 'run.flag',
    'run.tags_param', 'run.tags_param.lr', 'run.missing', 'run.missing.deeper', 'run.name',
    'run.experiment', 'run.archived', 'run.creation_time', 'run.end_time', 'run.tags',
    "run.metrics['acc'].last", "run.metrics['loss', {'subset': 'train'}].max",
    'run.hparams', 'run.created_at'])
_consts = st.one_of(
    st.sampled_from(['0', '1', '-3', '0.5', 'True', 'False', 'None', "''", "'adam'", "'a'",
                     "'run 3'", "'exp1'", "math.nan", "math.inf", '[]', '{}', "[0, 'adam']",
                     '2**62', 'datetime.fromtimestamp(1010)']),
    st.integers(-5, 5).map(str), st.floats(allow_nan=False, width=32).map(repr),
    st.text(max_size=3).map(repr))
_ops = st.sampled_from(['==', '!=', '<', '<=', '>', '>=', 'in', 'not in', 'is', 'is not'])


@st.composite
def _comparison(draw):
    ref, op, const = draw(_refs), draw(_ops), draw(_consts)
    if op in ('is', 'is not'):
        const = draw(st.sampled_from(['None', 'True', 'False']))
    if draw(st.booleans()):
        return f'{ref} {op} {const}'
    if op in ('in', 'not in'):
        return f'{const} {op} {ref}'
    return f'{const} {op} {ref}'


_predicates = st.recursive(
    st.one_of(_comparison(), _refs),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: f'({p[0]} and {p[1]})'),
        st.tuples(inner, inner).map(lambda p: f'({p[0]} or {p[1]})'),
        inner.map(lambda p: f'not ({p})')),
    max_leaves=4)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=_predicates)
def test_random_predicates_agree(index, text):
    try:
        assert_same(text, 'run', index)
    except QueryError:
        pass


# The None rule (docs/query-language.md, "Missing keys"): `== None`, `is None` are true for a
# missing and a null value alike, `!=` / `is not` their negation; checked on both dialects.
_none_refs = st.sampled_from([
    'run.hparams.lr', 'run.hparams.optimizer', 'run.flag', 'run.tags_param.lr', 'run.missing',
    'run.missing.deeper', "run['hparams', 'lr', 'deeper']", 'run.hparams', 'run.name',
    'run.experiment', 'run.description', 'run.end_time', 'run.finalized_at',
    "run.metrics['acc'].last", "run.metrics['nope'].last",
    "run.metrics['loss', {'subset': 'val', 'k': True}].last"])
_none_forms = st.sampled_from([
    '{} == None', '{} != None', '{} is None', '{} is not None', 'None == {}', 'None != {}',
    'not {}', '{}', '{} in [None, 0]', '{} not in [None]', "{} in ['adam', None, True]",
    'not ({} is None)', 'not ({} == None)'])
_none_predicates = st.recursive(
    st.tuples(_none_forms, _none_refs).map(lambda t: t[0].replace('{}', t[1])),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: f'({p[0]} and {p[1]})'),
        st.tuples(inner, inner).map(lambda p: f'({p[0]} or {p[1]})'),
        inner.map(lambda p: f'not ({p})')),
    max_leaves=3)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=_none_predicates)
def test_none_rule_agrees(index, text):
    planned = assert_same(text, 'run', index)
    negated = assert_same(f'not ({text})', 'run', index)
    # the form and its negation split the runs the query can see (archived ones are hidden)
    assert sorted(planned + negated) == sorted(assert_same('True', 'run', index)), text


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(form=_none_forms, ref=st.sampled_from([
    'metric.context.subset', 'context.k', "context['missing']", 'metric.context.k.deeper',
    'metric.last', 'run.hparams.lr', 'run.missing']))
def test_none_rule_agrees_in_trace_queries(index, form, ref):
    assert_same(form.replace('{}', ref), 'trace', index)


@pytest.mark.parametrize('text, expect', [
    ('run.missing == None', 'all'), ('run.missing is None', 'all'),
    ('run.missing != None', 'none'), ('run.missing is not None', 'none'),
])
def test_missing_is_none(index, text, expect):
    visible = assert_same('True', 'run', index)
    assert assert_same(text, 'run', index, expect_exact=True) == \
        (visible if expect == 'all' else [])


def test_long_in_list_agrees(index):
    members = ', '.join(str(i / 10) for i in range(3000))
    assert_same(f"run.hparams.lr in [{members}, 'adam', None]", 'run', index,
                expect_exact=True)
    assert_same(f"run.hparams.lr not in [{members}, True]", 'run', index, expect_exact=True)
    assert_same(f"run.name in ['run 3', 'run 4', {members}]", 'run', index, expect_exact=True)


def test_sql_runs_inside_the_cpu_budget(tmp_path):
    from aim.ql import QueryLimitError
    path = str(tmp_path / 'repo.db')
    conn = sqlite3.connect(path, isolation_level=None)
    for stmt in SCHEMA:
        conn.execute(stmt)
    conn.execute('BEGIN')
    conn.executemany('INSERT INTO runs(hash, creation_time, params) VALUES (?, ?, ?)',
                     [(f'r{i}', float(i), json.dumps({f'k{j}': j for j in range(20)}))
                      for i in range(3000)])
    conn.execute('COMMIT')
    heavy = ' or '.join(f'run.k{j} == {j + 1}' for j in range(300))
    source = IndexSource(conn)
    with pytest.raises(QueryLimitError) as info:
        list(Query(heavy, 'run', cpu_budget_s=0.01).iter_runs(source))
    assert 'CPU budget' in str(info.value)
    assert list(Query('run.k1 == 1 and run.k2 == 3', 'run').iter_runs(source)) == []
    conn.close()
