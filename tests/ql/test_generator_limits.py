"""Generator expressions build nothing: their limit counts iterations and says so, while
list, set and dict comprehensions are limited by the elements they build."""
from __future__ import annotations

import pytest

from aim.ql import Query, QueryLimitError, QueryTypeError, functions
from aim.ql.functions import MAX_ITEMS


def value(text):
    q = Query(text, 'run')
    assert q.evaluator is not None
    return q.evaluator.value(q.evaluator.tree, {})


@pytest.fixture
def small_limit(monkeypatch):
    """The size limit at 1,000, so that reaching it takes milliseconds."""
    monkeypatch.setattr(functions, 'MAX_ITEMS', 1000)
    return 1000


def limit_message(text, **kwargs) -> str:
    with pytest.raises(QueryLimitError) as info:
        Query(text, 'run', **kwargs)  # constant: evaluated when the query is compiled
    return str(info.value)


def test_the_reported_generator_is_refused_for_its_iterations():
    # a generous CPU budget: on a busy machine a million steps can take the default 5 s
    message = limit_message('sum(1 for i in range(999999) for j in range(3)) > 0',
                            cpu_budget_s=120)
    assert f'iterates more than {MAX_ITEMS} times' in message
    assert 'generator expression' in message
    assert 'builds' not in message and 'comprehension of' not in message


@pytest.mark.parametrize('text', [
    'sum(1 for i in range(999) for j in range(3)) > 0',
    'any(i < 0 for i in range(999) for j in range(2))',
    'max(i for i in range(999) for j in range(2)) > 0',
    'sum(1 for i in range(600) for j in range(2) if i < 0) == 0',
])
def test_generators_count_iterations(small_limit, text):
    message = limit_message(text)
    assert f'iterates more than {small_limit} times' in message
    assert 'generator expression' in message
    assert 'builds' not in message and 'comprehension of' not in message


@pytest.mark.parametrize('text, what', [
    ('len([1 for i in range(999) for j in range(3)]) > 0', 'a list comprehension'),
    ('len({(i, j) for i in range(999) for j in range(3)}) > 0', 'a set comprehension'),
    ('len({(i, j): 1 for i in range(999) for j in range(3)}) > 0', 'a dict comprehension'),
    ("len(list('ab' for i in range(999))) > 0", 'a list'),
    ("len(sorted(str(i) for i in range(999))) > 0", 'a list'),
])
def test_comprehensions_count_elements(small_limit, text, what):
    message = limit_message(text)
    assert f'builds {what} of' in message
    assert 'elements' in message


def test_a_generator_of_big_items_builds_nothing(small_limit):
    # 900 strings of 10 characters: 9,000 elements if it were a list
    assert value("sum(len(str(i) * 5) for i in range(900)) > 0") is True
    assert value("any(x == 'ab' for x in ['a' + 'b' for i in range(3)])") is True


def test_generators_still_work_everywhere_they_did():
    assert value('sum(x for x in [1, 2, 3]) == 6') is True
    assert value('sorted(x for x in [3, 1, 2]) == [1, 2, 3]') is True
    assert value('list(x * 2 for x in range(3)) == [0, 2, 4]') is True
    assert value('set(x % 2 for x in range(5)) == {0, 1}') is True
    assert value("', '.join(str(x) for x in range(3)) == '0, 1, 2'") is True
    assert value('2 in (x for x in range(5))') is True
    assert value('[y for y in (x + 1 for x in range(3))] == [1, 2, 3]') is True
    assert value('min(x for x in range(5) if x > 2) == 3') is True
    # a generator over something that is not iterable is undefined, as a list was
    assert value('sum(x for x in 5) is None') is True


def test_a_generator_is_not_a_list():
    with pytest.raises(QueryTypeError, match='generator expression'):
        value('len(x for x in range(3)) == 3')
    with pytest.raises(QueryTypeError, match='generator expression'):
        value('(x for x in range(3))[0] == 0')
