"""Regular expressions in queries: Python's pattern syntax and match/search/fullmatch
anchoring, on a linear-time engine (RE2); what it cannot do is refused by name."""
from __future__ import annotations

import re
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aim.ql import UnsafeQueryError
from aim.ql.functions import MAX_REGEX_SUBJECT, SAFE_FUNCTIONS

pytestmark = pytest.mark.backends

re_match = SAFE_FUNCTIONS['re_match']
re_search = SAFE_FUNCTIONS['re_search']
re_fullmatch = SAFE_FUNCTIONS['re_fullmatch']

# (pattern, text): the three functions agree with Python's re on each.
AGREED = [
    ('abc', 'abc'), ('abc', 'xabcx'), ('b', 'abc'), ('^b', 'abc'), ('c$', 'abc'),
    ('a.c', 'a\nc'), ('(?s)a.c', 'a\nc'), ('^b', 'a\nb'), ('(?m)^b$', 'a\nb\nc'),
    ('(?i)ADAM', 'adam'), ('(?i:ADAM)-sgd', 'adam-sgd'), ('(?i:ADAM)-sgd', 'adam-SGD'),
    ('run-[0-9]+', 'run-17'), ('run-\\d{2,3}$', 'run-1234'), ('lr_\\d*\\.\\d+', 'lr_0.01'),
    ('a{,3}b', 'aab'), ('a{,3}b', 'a{,3}b'), ('a{2}', 'aa'), ('a{x}', 'a{x}'),
    ('(?P<opt>adam|sgd)_v\\d', 'sgd_v2'), ('(?:ab)+$', 'ababab'), ('a+?b', 'aaab'),
    ('\\Aab', 'ab'), ('ab\\Z', 'ab'), ('ab\\Z', 'abc'), ('\\s+', 'a \t b'), ('\\s', '\x0b'),
    ('[\\s]x', '\x0bx'), ('\\S+', '  x '), ('[^\\s]', '   '), ('\\bcifar\\b', 'a cifar10'),
    ('\\bcifar\\b', 'a cifar-10'), ('[]a]', ']'), ('[^]a]', 'b'), ('[x[]', '['),
    ('caf\u00e9', 'caf\u00e9'), ('(?i)CAF\u00c9', 'caf\u00e9'), ('\\u00e9', '\u00e9'),
    ('\\N{EM DASH}', 'a\u2014b'), ('[\u00e0-\u00ff]+$', 'd\u00e9j\u00e0'), ('.', '\U0001F600'),
    ('^.$', '\U0001F600'), ('\u65e5\u672c', '\u65e5\u672c\u8a9e'), ('(?#a comment)x', 'x'),
    ('(?a)\\w+', 'abc'), ('(?u)x', 'x'), ('', ''), ('', 'abc'), ('x*', ''), ('a|b|', 'c'),
]


@pytest.mark.parametrize('pattern, text', AGREED)
def test_functions_agree_with_python_re(pattern, text):
    assert re_match(pattern, text) == (re.match(pattern, text) is not None)
    assert re_search(pattern, text) == (re.search(pattern, text) is not None)
    assert re_fullmatch(pattern, text) == (re.fullmatch(pattern, text) is not None)


def test_patterns_that_make_python_backtrack_answer_at_once():
    # Python's re takes minutes on these; the answers are what it would give.
    assert re_match('(a{,20}){,20}$', 'a' * 40 + 'b') is False
    assert re_search('(a{,20}){,20}$', 'a' * 40 + 'b') is True      # empty match at the end
    assert re_match('(a+)+$', 'a' * 30 + 'b') is False
    assert re_fullmatch('(a|aa)*c', 'a' * 4000) is False


def test_functions_return_plain_bools():
    assert re_search('a', 'cat') is True
    assert re_search('z', 'cat') is False
    assert re_match('a', 5) is False            # a non-string text matches nothing


@pytest.mark.parametrize('query, expected', [
    ("re_match('Run: ', run.name)", [2, 1, 0]),
    ("re_search('(?i)CIFAR', run.dataset)", [2, 0]),
    ("re_fullmatch('mnist', run.dataset)", [1]),
    ("re_fullmatch('mni', run.dataset)", []),
    ("re_search('^(adam|sgd)$', run.hparams.optimizer) and run.hparams.batch_size > 32",
     [2, 1]),
    ("re_search(run.hparams.optimizer, 'sgd or adam')", [2, 1, 0]),
    ("any(re_search('^tun', t) for t in run.tags)", [2, 1]),
])
def test_in_run_queries(run_query, query, expected):
    assert run_query(query) == expected


def test_in_trace_queries(trace_query):
    assert trace_query("re_fullmatch('lo.s', metric.name) and re_search('tra', "
                       "metric.context.subset)") == [(2, 'loss'), (1, 'loss'), (0, 'loss')]


@pytest.mark.parametrize('pattern, what, offset', [
    ('(a)\\1', 'back-references', 3),
    ('(?P<x>a)(?P=x)', 'back-references', 8),
    ('run(?=-1)', 'lookahead', 3),
    ('run(?!-1)', 'negative lookahead', 3),
    ('(?<=a)b', 'lookbehind', 0),
    ('(?<!a)b', 'negative lookbehind', 0),
    ('(?>a+)b', 'atomic groups', 0),
    ('a++b', 'possessive quantifiers', 2),
    ('a{1,2}+b', 'possessive quantifiers', 6),
    ('(a)?(?(1)b|c)', 'conditional groups', 4),
    ('(?x) a b', 'verbose', 2),
    ('(?L)a', "unknown flag 'L'", 2),
])
def test_backtracking_features_are_refused_by_name(three_runs, pattern, what, offset):
    repo, _ = three_runs
    query = f'run.name != "" and re_search({pattern!r}, run.name)'
    with pytest.raises(UnsafeQueryError) as info:
        repo.query_runs(query)
    message = str(info.value)
    assert repr(pattern) in message and what in message
    assert f'at offset {offset} of the pattern' in message
    assert info.value.position == query.index(repr(pattern))      # the caret is on it
    assert 'linear-time' in info.value.hint


@pytest.mark.parametrize('pattern, words', [
    ('a(b', 'missing )'),
    ('a{2,1}', 'invalid repetition size'),
    ('*a', 'repetition'),
    ('x' * 1001, 'limit is 1000'),
    ('(?:.{0,20}){0,50}', 'instructions; the limit is 2000'),
    ('a{1001}', 'repetition size'),
])
def test_bad_or_huge_patterns_are_refused(three_runs, pattern, words):
    repo, _ = three_runs
    with pytest.raises(UnsafeQueryError) as info:
        repo.query_runs(f're_search({pattern!r}, run.name)')
    assert words in str(info.value)
    assert info.value.hint


def test_a_pattern_built_by_the_query_is_checked_when_it_runs(three_runs):
    repo, _ = three_runs
    query = "re_search(run.dataset + '(?=x)', run.name)"
    collection = repo.query_runs(query)          # not a constant: compiled per run
    with pytest.raises(UnsafeQueryError) as info:
        list(collection)
    assert 'lookahead' in str(info.value)


def test_long_texts_are_searched_in_their_first_characters():
    text = 'a' * MAX_REGEX_SUBJECT + 'needle'
    assert not re_search('needle', text)
    assert re_search('needle', 'needle' + text)
    assert re_fullmatch('a+', text)


def test_no_log_lines_on_stderr(python, child_env):
    """RE2 logs refused patterns to stderr by default; a query must not print."""
    code = ('from aim.ql.functions import compile_regex\n'
            'for p in ["a(b", "(?P<a>x", "a{2,1}"]:\n'
            '    try: compile_regex(p)\n'
            '    except Exception: pass\n')
    done = subprocess.run([python, '-c', code], env=child_env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ''


def test_import_aim_does_not_import_the_regex_engine(python, child_env):
    code = 'import sys, aim; print("re2" in sys.modules)'
    done = subprocess.run([python, '-c', code], env=child_env, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == 'False', done.stderr


# ----------------------------------------------------- agreement on random patterns
_atoms = st.sampled_from(['a', 'b', 'c', '.', '[ab]', '[^a]', '\\w', '\\d', '\\s', '\\b',
                          '^', '$', '\\A', '\\Z', '1', ' '])
_quantifiers = st.sampled_from(['', '', '*', '+', '?', '*?', '+?', '??', '{2}', '{,2}',
                                '{1,3}', '{2,}'])


@st.composite
def _patterns(draw, depth=0):
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if depth < 2 and draw(st.booleans()) and draw(st.booleans()):
            inner = draw(_patterns(depth + 1))
            if draw(st.booleans()):
                inner += '|' + draw(_patterns(depth + 1))
            atom = draw(st.sampled_from(['(', '(?:', '(?i:'])) + inner + ')'
        else:
            atom = draw(_atoms)
        quantifier = draw(_quantifiers) if atom not in ('^', '$', '\\A', '\\Z', '\\b') \
            else ''
        parts.append(atom + quantifier)
    return ''.join(parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=_patterns(), text=st.text(alphabet='abcAB1 _', max_size=12))
def test_random_patterns_agree_with_python_re(pattern, text):
    try:
        re.compile(pattern)
    except re.error:
        return
    assert re_match(pattern, text) == (re.match(pattern, text) is not None)
    assert re_search(pattern, text) == (re.search(pattern, text) is not None)
    assert re_fullmatch(pattern, text) == (re.fullmatch(pattern, text) is not None)
