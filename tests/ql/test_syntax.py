"""Parsing: the forgiving parts (`=`, SELECT ... IF, capitals) and errors with positions."""
from __future__ import annotations

import ast

import pytest

from aim.ql import Query, QuerySyntaxError, UnsafeQueryError
from aim.ql.syntax import parse_query


def python(text):
    tree = parse_query(text).tree
    return None if tree is None else ast.unparse(tree)


@pytest.mark.parametrize('text, expected', [
    ("metric = 'ordinals' and context['odds'] = True",
     "metric == 'ordinals' and context['odds'] == True"),
    ("\nmetric.run.params.foo == 'bar' and metric = 'ordinals'\n",
     "metric.run.params.foo == 'bar' and metric == 'ordinals'"),
    ("run.a <= 1 and run.b >= 2 and run.c != 3 and run.d == 4",
     'run.a <= 1 and run.b >= 2 and run.c != 3 and run.d == 4'),
    ("run.name = 'a=b' and run.x = '=='", "run.name == 'a=b' and run.x == '=='"),
    ('round(run.x, ndigits=2) = 1', 'round(run.x, ndigits=2) == 1'),
    ('sorted(run.tags, reverse=True) = []', 'sorted(run.tags, reverse=True) == []'),
    ('(run.x = 1)', 'run.x == 1'),
    ('[run.x = 1]', '[run.x == 1]'),
    ('run.x AND run.y OR NOT run.z', 'run.x and run.y or not run.z'),
    ("run.hparams.AND == 1", 'run.hparams.AND == 1'),
    ("'a' IN run.tags", "'a' in run.tags"),
    ('SELECT loss IF run.hparams.lr > 0.05', 'run.hparams.lr > 0.05'),
    ('select loss, acc if run.lr = 1', 'run.lr == 1'),
    ("SELECT diff IF run.x == 'if'", "run.x == 'if'"),
    ('SELECT loss', None),
    ('selection == 1', 'selection == 1'),
    ('', None),
    ('  \n ', None),
    ('run.x == 1  # a comment', 'run.x == 1'),
    ('run.x ==\n 1', 'run.x == 1'),
])
def test_normalisation(text, expected):
    tree = parse_query(text).tree
    if expected is None:
        assert tree is None
    else:
        assert ast.dump(tree) == ast.dump(ast.parse(expected, mode='eval'))


@pytest.mark.parametrize('text, position, hint_word', [
    ('run.a == 1 && run.b == 2', 11, 'and'),
    ('run.a == 1 || run.b == 2', 11, 'or'),
    ('!run.a', 0, 'not'),
    ('run.a <> 1', 6, '!='),
    ('run.a = 1 and run.b = = 2', 22, None),
    ("run.name == 'abc", 12, 'quote'),
    ('run.a == $1', 9, None),
    ('run.a ==', 8, None),
    ('SELECT x IF run.a && run.b', 18, 'and'),
    ('run.a === 1', None, None),
])
def test_syntax_errors_name_the_position(text, position, hint_word):
    with pytest.raises(QuerySyntaxError) as info:
        Query(text)
    err = info.value
    if position is not None:
        assert err.position == position, str(err)
        assert '^' in str(err)
    if hint_word:
        assert hint_word in err.hint
    assert err.query == text


def test_unbalanced_bracket():
    with pytest.raises(QuerySyntaxError) as info:
        Query('(run.a == 1')
    assert 'bracket' in str(info.value)


@pytest.mark.parametrize('text, word', [
    ('run.x == true', 'True'), ('run.x == null', 'None'), ('lr > 1', 'run.hparams.lr'),
    ('metric.name == 1', 'query_metrics'),
])
def test_unknown_names_get_hints(text, word):
    with pytest.raises(QuerySyntaxError) as info:
        Query(text, 'run')
    assert word in info.value.hint


def test_unsafe_errors_name_the_position():
    with pytest.raises(UnsafeQueryError) as info:
        Query('run.hparams.lr > 1 and run.__class__')
    assert info.value.position == 23
    with pytest.raises(UnsafeQueryError) as info:
        Query("run.x == 1 and open('f')")
    assert info.value.position == 15
    assert 'Allowed functions' in info.value.hint


def test_positions_map_through_rewrites():
    # the `=` -> `==` rewrite before the error must not shift the reported position
    with pytest.raises(UnsafeQueryError) as info:
        Query('run.a = 1 and run.b = 2 and run._c')
    assert info.value.position == 28


def test_non_string_query():
    with pytest.raises(QuerySyntaxError):
        Query(42)


def test_none_query_matches_everything():
    assert Query(None).tree is None
