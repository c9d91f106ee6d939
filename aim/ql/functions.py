"""Functions and methods a query may call, and the size limits that keep them cheap.

Every callable here returns plain data (never a function, module, frame or match object),
so nothing reachable from a query leads back into Python's internals. Functions given an
undefined argument return undefined, except `bool` (False).
"""
from __future__ import annotations

import datetime as _dt
import functools
import math
import re

from aim.ql.errors import QueryLimitError, UnsafeQueryError, query_error
from aim.ql.undefined import UNDEFINED, Undefined

MAX_ITEMS = 1_000_000          # elements of one list/str/range built by a query
MAX_INT_BITS = 100_000         # bits of one integer built by a query
MAX_REGEX_LENGTH = 1_000
MAX_REGEX_SUBJECT = 4_096


def limit_error(message: str, hint: str = 'Make the query cheaper.') -> QueryLimitError:
    return query_error(QueryLimitError, message, None, None, hint)


def check_size(n: int, what: str) -> None:
    if n > MAX_ITEMS:
        raise limit_error(f'the query builds {what} of {n} elements; the limit is {MAX_ITEMS}',
                          'Queries compare values; they are not meant to build big data.')


def volume(x, cap: int = MAX_ITEMS + 1) -> int:
    """Elements in x counted through nested containers, stopping once past `cap`."""
    if isinstance(x, (str, range)):
        return len(x)
    if isinstance(x, dict):
        x = list(x.items())
    if not isinstance(x, (list, tuple, set, frozenset)):
        return 1
    total = len(x)
    for item in x:
        if total > cap:
            break
        if isinstance(item, (list, tuple, set, frozenset, dict, str, range)):
            total += volume(item, cap - total)
    return total


def check_volume(x, what: str = 'a value') -> None:
    check_size(volume(x), what)


def _len_or_zero(x) -> int:
    try:
        return len(x)
    except TypeError:
        return 0


def _bounded_iterable(x):
    if isinstance(x, Undefined):
        return ()
    check_size(_len_or_zero(x), 'a sequence')
    return x


# ---------------------------------------------------------------- functions
def _range(*args):
    r = range(*args)
    check_size(len(r), 'a range')
    return r


def _seq(kind):
    def make(x=()):
        return kind(_bounded_iterable(x))
    make.__name__ = kind.__name__
    return make


def _sorted(x, reverse=False):
    return sorted(_bounded_iterable(x), reverse=bool(reverse))


def _agg(fn):
    def agg(*args, **kwargs):
        if len(args) == 1:
            return fn(_bounded_iterable(args[0]), **kwargs)
        return fn(*args, **kwargs)
    agg.__name__ = fn.__name__
    return agg


def _str(x=''):
    check_volume(x)
    return str(x)


def _sum(items, start=0):
    # Numbers only: sum() over lists is quadratic and cannot be interrupted.
    if isinstance(start, bool) or not isinstance(start, (int, float)):
        raise TypeError('sum() adds numbers only')
    total = start
    for item in _bounded_iterable(items):
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise TypeError('sum() adds numbers only')
        total = total + item
    return total


def _int(x=0, base=None):
    if base is None:
        return int(x)
    return int(x, base)


MAX_UNBOUNDED_QUANTIFIERS = 1
MAX_BOUNDED_QUANTIFIERS = 3


def regex_complexity_problem(pattern: str) -> str | None:
    """Why `pattern` could backtrack for a very long time, or None.

    Python's `re` backtracks: `.*.*x` takes minutes on a 10,000-character string. Queries
    may use at most one unbounded quantifier (*, +, {m,}), a few bounded ones, no
    quantified group that contains a quantifier or `|`, and no back-references.
    """
    unbounded = bounded = 0
    groups: list[bool] = []      # per open group: does it contain a quantifier or `|`?
    i, n = 0, len(pattern)
    prev_quantifiable = False
    last_group_risky = False
    while i < n:
        ch = pattern[i]
        if ch == '\\':
            if i + 1 < n and (pattern[i + 1].isdigit() and pattern[i + 1] != '0'):
                return 'it uses a back-reference'
            i += 2
            prev_quantifiable, last_group_risky = True, False
            continue
        if ch == '[':
            j = i + 1
            if j < n and pattern[j] == '^':
                j += 1
            if j < n and pattern[j] == ']':
                j += 1
            while j < n and pattern[j] != ']':
                j += 2 if pattern[j] == '\\' else 1
            i = j + 1
            prev_quantifiable, last_group_risky = True, False
            continue
        if ch == '(':
            if pattern.startswith('(?P=', i):
                return 'it uses a back-reference'
            groups.append(False)
            i += 1
            if i < n and pattern[i] == '?':      # (?:...), (?=...), (?P<name>...)
                i += 1
            prev_quantifiable = False
            continue
        if ch == ')':
            last_group_risky = groups.pop() if groups else False
            if groups and last_group_risky:
                groups[-1] = True
            i += 1
            prev_quantifiable = True
            continue
        if ch == '|':
            if groups:
                groups[-1] = True
            i += 1
            prev_quantifiable, last_group_risky = False, False
            continue
        quantifier = None
        if ch in '*+':
            quantifier, i = 'unbounded', i + 1
        elif ch == '?':
            quantifier, i = 'bounded', i + 1
        elif ch == '{':
            j = pattern.find('}', i)
            body = pattern[i + 1:j] if j > 0 else ''
            parts = body.split(',')
            if j > 0 and 1 <= len(parts) <= 2 and all(p.strip().isdigit() or p.strip() == ''
                                                    for p in parts) and parts[0].strip():
                upper = parts[-1].strip()
                quantifier = 'bounded' if (len(parts) == 1 or (upper and int(upper) <= 20)) \
                    else 'unbounded'
                i = j + 1
            else:
                i += 1
                prev_quantifiable, last_group_risky = True, False
                continue
        else:
            i += 1
            prev_quantifiable, last_group_risky = True, False
            continue
        if not prev_quantifiable:
            continue                                 # lazy/possessive suffix like *? or +?
        if last_group_risky:
            return 'a repeated group contains a quantifier or |'
        if groups:
            groups[-1] = True
        if quantifier == 'unbounded':
            unbounded += 1
        else:
            bounded += 1
        prev_quantifiable, last_group_risky = False, False
    if unbounded > MAX_UNBOUNDED_QUANTIFIERS:
        return f'it has {unbounded} unbounded quantifiers (*, +, {{m,}}); the limit is ' \
               f'{MAX_UNBOUNDED_QUANTIFIERS}'
    if bounded > MAX_BOUNDED_QUANTIFIERS:
        return f'it has {bounded} optional/bounded quantifiers; the limit is ' \
               f'{MAX_BOUNDED_QUANTIFIERS}'
    return None


@functools.lru_cache(maxsize=256)
def _compile_regex(pattern: str):
    if len(pattern) > MAX_REGEX_LENGTH:
        raise query_error(UnsafeQueryError, f'the regular expression is {len(pattern)} '
                          f'characters long; the limit is {MAX_REGEX_LENGTH}', None, None,
                          'Use a shorter pattern.')
    problem = regex_complexity_problem(pattern)
    if problem:
        raise query_error(UnsafeQueryError, f'the regular expression {pattern!r} could take '
                          f'a very long time: {problem}', None, None,
                          'Simplify it, or combine simpler tests with and/or, e.g. '
                          "re_search('^run', s) and 'cifar' in s.")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise query_error(UnsafeQueryError, f'invalid regular expression {pattern!r}: {e}',
                          None, None, 'Fix the pattern (Python `re` syntax).') from None


def _regex(method: str):
    def match(pattern, string) -> bool:
        if not isinstance(pattern, str):
            raise TypeError('the pattern must be a string')
        if not isinstance(string, str):
            return False
        if len(string) > MAX_REGEX_SUBJECT:
            # Long texts are searched in their first MAX_REGEX_SUBJECT characters only.
            string = string[:MAX_REGEX_SUBJECT]
        return getattr(_compile_regex(pattern), method)(string) is not None
    match.__name__ = 're_' + method
    return match


def _timedelta(*args, **kwargs):
    return _dt.timedelta(*args, **kwargs)


SAFE_FUNCTIONS = {
    'len': len, 'abs': abs, 'min': _agg(min), 'max': _agg(max), 'sum': _sum,
    'any': _agg(any), 'all': _agg(all), 'round': round, 'int': _int, 'float': float,
    'str': _str, 'bool': bool, 'sorted': _sorted, 'range': _range, 'list': _seq(list),
    'tuple': _seq(tuple), 'set': _seq(set),
    're_match': _regex('match'), 're_search': _regex('search'),
    're_fullmatch': _regex('fullmatch'),
    'datetime': _dt.datetime, 'timedelta': _timedelta,
}

_MATH_FUNCTIONS = [
    'ceil', 'floor', 'trunc', 'fabs', 'sqrt', 'exp', 'log', 'log2', 'log10', 'log1p', 'expm1',
    'pow', 'isnan', 'isinf', 'isfinite', 'isclose', 'copysign', 'sin', 'cos', 'tan', 'asin', 'acos',
    'atan', 'atan2', 'sinh', 'cosh', 'tanh', 'hypot', 'degrees', 'radians',
]
_MATH_CONSTANTS = ('pi', 'e', 'tau', 'inf', 'nan')


class ModuleTable:
    """What a query sees of a module: a fixed table of members."""
    def __init__(self, name: str, members: dict):
        self.name = name
        self.members = members

    def __contains__(self, item):
        return item in self.members

    def __iter__(self):
        return iter(self.members)

    def __repr__(self):
        return f'<{self.name}>'


def _now_factory():
    # Replaced per query by the evaluator so that one query sees one "now".
    return _dt.datetime.now()


SAFE_MODULES = {
    'math': ModuleTable('math', {**{f: getattr(math, f) for f in _MATH_FUNCTIONS},
                                 **{c: getattr(math, c) for c in _MATH_CONSTANTS}}),
    'datetime': ModuleTable('datetime', {
        'now': None, 'utcnow': None, 'today': None,   # bound per query (frozen clock)
        'fromisoformat': _dt.datetime.fromisoformat,
        'fromtimestamp': _dt.datetime.fromtimestamp,
        'min': _dt.datetime.min, 'max': _dt.datetime.max,
    }),
}

# ---------------------------------------------------------------- methods
STR_METHODS = frozenset(
    [
        'startswith', 'endswith', 'lower', 'upper', 'strip', 'lstrip', 'rstrip', 'split', 'rsplit',
        'find', 'rfind', 'index', 'rindex', 'count', 'isdigit', 'isalpha', 'isalnum', 'isnumeric',
        'isdecimal', 'isspace', 'islower', 'isupper', 'istitle', 'title', 'capitalize', 'casefold',
        'replace', 'join', 'partition', 'rpartition', 'removeprefix', 'removesuffix', 'splitlines',
    ])
SEQUENCE_METHODS = frozenset({'count', 'index'})
DICT_METHODS = frozenset({'get', 'keys', 'values', 'items'})
DATETIME_METHODS = frozenset({'timestamp', 'isoformat', 'weekday', 'isoweekday', 'date',
                              'replace', 'strftime'})
TIMEDELTA_METHODS = frozenset({'total_seconds'})
DATETIME_ATTRIBUTES = frozenset({'year', 'month', 'day', 'hour', 'minute', 'second',
                                 'microsecond'})
TIMEDELTA_ATTRIBUTES = frozenset({'days', 'seconds', 'microseconds'})
# Methods of the query's own views (series aggregates); see aim.ql.views.
SERIES_METHODS = frozenset({'values_between', 'last_n', 'mean', 'median', 'std', 'min',
                            'max', 'sum', 'count', 'first', 'last'})

ALLOWED_METHOD_NAMES = (STR_METHODS | SEQUENCE_METHODS | DICT_METHODS | DATETIME_METHODS
                        | TIMEDELTA_METHODS | SERIES_METHODS)


def precheck_str_method(s: str, name: str, args: tuple) -> None:
    """Refuse string methods whose result would be huge before running them."""
    if name == 'replace' and len(args) >= 2 and isinstance(args[0], str) \
            and isinstance(args[1], str):
        growth = max(len(args[1]) - len(args[0]), 0)
        occurrences = len(s) + 1 if args[0] == '' else s.count(args[0])
        check_size(len(s) + growth * occurrences, 'a string')
    elif name == 'join' and args:
        items = args[0]
        if isinstance(items, Undefined):
            return
        check_size(_len_or_zero(items), 'a sequence')
        total = sum(len(x) for x in items if isinstance(x, str))
        check_size(total + len(s) * max(_len_or_zero(items) - 1, 0), 'a string')
    elif name == 'strftime' and args and isinstance(args[0], str):
        check_size(len(args[0]) * 16, 'a string')


def bounded_power(base, exponent):
    if isinstance(base, int) and isinstance(exponent, int) and not isinstance(base, bool):
        if exponent > 0 and abs(base) > 1:
            bits = exponent * math.log2(abs(base))
            if bits > MAX_INT_BITS:
                raise limit_error(f'{base} ** {exponent} has about {int(bits)} bits; the '
                                  f'limit is {MAX_INT_BITS}')
    return base ** exponent


def bounded_multiply(a, b):
    if isinstance(a, (str, list, tuple)) and isinstance(b, int):
        check_size(volume(a) * max(b, 0), 'a sequence')
    elif isinstance(b, (str, list, tuple)) and isinstance(a, int):
        check_size(volume(b) * max(a, 0), 'a sequence')
    elif isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise limit_error(f'the product has more than {MAX_INT_BITS} bits')
    return a * b


def bounded_add(a, b):
    if isinstance(a, (str, list, tuple)) and isinstance(b, type(a)):
        check_size(volume(a) + volume(b), 'a sequence')
    return a + b


__all__ = ['ALLOWED_METHOD_NAMES', 'SAFE_FUNCTIONS', 'SAFE_MODULES', 'UNDEFINED']
