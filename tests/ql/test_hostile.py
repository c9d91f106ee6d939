"""Hostile queries: each raises a clear QueryError or matches nothing, quickly, and has no
side effect (no file written, no run changed)."""
from __future__ import annotations

import os
import time

import pytest

from aim.errors import QueryError
from aim.ql import QueryLimitError, QuerySyntaxError, UnsafeQueryError

MARKER = '/tmp/aimkit-hostile-query-marker'

HOSTILE = [
    # sandbox escapes through dunders and introspection
    f"__import__('os').system('touch {MARKER}')",
    'run.__class__',
    'run.__class__.__mro__[1].__subclasses__()',
    '().__class__.__bases__[0].__subclasses__()',
    '[c for c in ().__class__.__base__.__subclasses__()]',
    '__builtins__',
    "__builtins__['eval']('1')",
    'globals()',
    'locals()',
    'vars(run)',
    "getattr(run, '__class__')",
    "eval('1 + 1')",
    "exec('import os')",
    "open('/etc/passwd').read()",
    "compile('1', 'x', 'eval')",
    'import os',
    'lambda: 1',
    '(lambda x: x)(1)',
    'type(run)',
    "run.hparams.lr.__class__",
    "run['__class__']",
    "run.hparams.get('__class__')",
    'datetime.now().__class__',
    'math.__loader__',
    'math.sys',
    'datetime.now.__self__',
    'max([run], key=id)',
    'sorted([run], key=len)',
    'str(run).__len__()',
    'run.hparams.keys().__class__',
    '1 if True else __import__("os")',
    '[a := 1]',
    '[*run]',
    'run.hparams.lr @ 2',
    '~run.hparams.lr',
    'math.factorial(10 ** 6)',
    "'abc'.encode()",
    "'a'.ljust(10 ** 9)",
    # format strings
    "'{0.__class__}'.format(run)",
    "'{.__init__.__globals__}'.format_map(run)",
    "f'{run.__class__}'",
    "'%s' % run",
    "'%999999999d' % 1",
    # generators and frames
    '(x for x in []).gi_frame',
    '(x for x in []).gi_frame.f_globals',
    "[x for x in run.metrics].gi_code",
    # huge values and long loops
    "'a' * 10 ** 10",
    '10 ** 10 ** 10',
    '2 ** 10 ** 8',
    'range(10 ** 12)',
    'sum(range(10 ** 12))',
    'len(list(range(10 ** 9)))',
    '[1] * 10 ** 9',
    "'x'.join(['a'] * 10 ** 7)",
    "('a' * 10 ** 5).replace('a', 'a' * 10 ** 5)",
    "[list(range(10 ** 6))] * 10 ** 6",
    "str([list(range(10 ** 6))] * 1000)",
    "sum([[1] * 1000] * 1000, [])",
    '[x for x in range(10 ** 6) for y in range(10 ** 6)]',
    'any(x == -1 for x in range(10 ** 6) for y in range(10 ** 6))',
    "re_match('(a+)+$', 'a' * 30 + 'b')",
    "re_search('.*.*.*x', 'a' * 4000)",
    "re_search('(a|a)*b', 'a' * 40)",
    r"re_search(r'(\w+)\1', run.name)",
    # deep recursion and long texts
    '(' * 300 + '1' + ')' * 300,
    '-' * 5000 + '1',
    'not ' * 3000 + 'run.x',
    '1 + ' * 5000 + '1',
    "'" + 'a' * 200_000 + "'",
    'run.x == 1 and ' * 30_000 + 'True',
    '[' * 100 + ']' * 100,
    # not Python, NUL bytes, statements
    'run.hparams.lr > 0.01\nimport os',
    'run.x == 1; import os',
    'run.x\x00 == 1',
    'del run',
    'run.x = 1 = 2',
    'yield 1',
    'await run',
]


@pytest.fixture(autouse=True)
def _no_marker():
    if os.path.exists(MARKER):
        os.remove(MARKER)
    yield
    assert not os.path.exists(MARKER), 'a query ran a shell command'


def test_there_are_at_least_forty():
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize('query', HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_query_is_refused_or_matches_nothing(three_runs, query):
    repo, hashes = three_runs
    params_before = [repo.get_run(h)['hparams'] for h in hashes]
    started = time.process_time()
    for method in (repo.query_runs, repo.query_metrics):
        if method is repo.query_metrics and 'run.' not in query and 'run]' not in query:
            pass
        try:
            result = list(method(query, cpu_budget_s=1.0))
        except QueryError as e:
            assert str(e).strip()
            assert e.hint or e.reason
        else:
            assert result == [], f'{query!r} matched {result}'
    assert time.process_time() - started < 6, f'{query!r} ran too long'
    assert [repo.get_run(h)['hparams'] for h in hashes] == params_before


@pytest.mark.parametrize('query, error', [
    ("__import__('os')", UnsafeQueryError),
    ('run.__class__', UnsafeQueryError),
    ("eval('1')", UnsafeQueryError),
    ('lambda: 1', UnsafeQueryError),
    ("f'{run}'", UnsafeQueryError),
    ("'a' * 10 ** 10", QueryLimitError),
    ('10 ** 10 ** 10', QueryLimitError),
    ('range(10 ** 12)', QueryLimitError),
    ("re_match('(a+)+$', run.name)", UnsafeQueryError),
    ('import os', QuerySyntaxError),
    ('a && b', QuerySyntaxError),
    ('x' * 200_000, UnsafeQueryError),
])
def test_error_kinds(three_runs, query, error):
    repo, _ = three_runs
    with pytest.raises(error) as info:
        list(repo.query_runs(query))
    assert isinstance(info.value, QueryError)


def test_cpu_budget_stops_a_long_query(three_runs):
    repo, _ = three_runs
    q = 'any(x == -1 for x in range(10 ** 6) for y in range(10 ** 6))'
    started = time.process_time()
    with pytest.raises(QueryLimitError) as info:
        list(repo.query_runs(q, cpu_budget_s=0.3))
    assert time.process_time() - started < 3
    assert 'CPU budget' in str(info.value)
    assert 'cpu_budget_s' in info.value.hint


def test_budget_from_environment(three_runs, monkeypatch):
    repo, _ = three_runs
    monkeypatch.setenv('AIM_QUERY_CPU_BUDGET_S', '0.2')
    with pytest.raises(QueryLimitError):
        list(repo.query_runs('any(x == -1 for x in range(10 ** 6) for y in range(10 ** 6))'))


def test_no_warning_flood_for_missing_keys(three_runs, recwarn, caplog):
    repo, _ = three_runs
    assert list(repo.query_runs('run.nope.deeper.still > 1 or run.hparams.lr * "x" > 1')) == []
    assert list(repo.query_metrics("metric.context.nope == 1")) == []
    assert len(recwarn) == 0
    assert not [r for r in caplog.records if r.levelname in ('WARNING', 'ERROR')]
