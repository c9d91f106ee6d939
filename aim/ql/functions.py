"""Functions and methods a query may call, and the size limits that keep them cheap.

Every callable here returns plain data (never a function, module, frame or match object),
so nothing reachable from a query leads back into Python's internals. Functions given an
undefined argument return undefined, except `bool` (False).
"""
from __future__ import annotations

import datetime as _dt
import functools
import math

from aim.ql.errors import QueryLimitError, UnsafeQueryError, query_error
from aim.ql.undefined import UNDEFINED, Undefined

MAX_ITEMS = 1_000_000          # elements of one list/str/range built by a query
MAX_INT_BITS = 100_000         # bits of one integer built by a query


def limit_error(message: str, hint: str = 'Make the query cheaper.') -> QueryLimitError:
    return query_error(QueryLimitError, message, None, None, hint)


def check_size(n: int, what: str) -> None:
    if n > MAX_ITEMS:
        unit = 'characters' if what == 'a string' else 'elements'
        raise limit_error(f'the query builds {what} of {n} {unit}; the limit is {MAX_ITEMS}',
                          'Queries compare values; they are not meant to build big data.')


_INT_BITS_PER_ELEMENT = 64


def volume(x, cap: int = MAX_ITEMS + 1) -> int:
    """Elements in x counted through nested containers, stopping once past `cap`.

    A big integer counts one element per 64 bits: hashing, comparing or adding a million
    100,000-bit integers is one C call of many seconds, which the budget cannot stop."""
    if isinstance(x, (str, range)):
        return len(x)
    if isinstance(x, int):
        return 1 + x.bit_length() // _INT_BITS_PER_ELEMENT
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
        elif isinstance(item, int) and item.bit_length() >= _INT_BITS_PER_ELEMENT:
            total += item.bit_length() // _INT_BITS_PER_ELEMENT
    return total


def check_volume(x, what: str = 'a value') -> None:
    check_size(volume(x), what)


def _len_or_zero(x) -> int:
    try:
        return len(x)
    except TypeError:
        return 0


def _bounded_iterable(x):
    """x, to be consumed one element at a time: a sized x within the limit, or an iterator
    (a generator expression, whose own limit is on its iterations)."""
    if isinstance(x, Undefined):
        return ()
    check_size(_len_or_zero(x), 'a sequence')
    return x


def build_list(items, what: str = 'a list') -> list:
    """The elements of an iterator as a list, refusing once their size passes the limit,
    so that a list over the limit is never held whole."""
    out = []
    total = 0
    for item in items:
        out.append(item)
        total += volume(item, MAX_ITEMS - total + 1)
        check_size(total, what)
    return out


def _built(x, what: str):
    """A container's elements: sized ones are checked by their length, iterators (a
    generator expression) by the elements as they arrive."""
    if hasattr(x, '__len__') or isinstance(x, Undefined):
        return _bounded_iterable(x)
    return build_list(x, what)


# ---------------------------------------------------------------- functions
def _range(*args):
    r = range(*args)
    check_size(len(r), 'a range')
    return r


def _seq(kind):
    def make(x=()):
        return kind(_built(x, f'a {kind.__name__}'))
    make.__name__ = kind.__name__
    return make


def _sorted(x, reverse=False):
    return sorted(_built(x, 'a list'), reverse=bool(reverse))


def _agg(fn):
    def agg(*args, **kwargs):
        if len(args) == 1:
            return fn(_bounded_iterable(args[0]), **kwargs)
        return fn(*args, **kwargs)
    agg.__name__ = fn.__name__
    return agg


def _str(x=''):
    check_volume(x)
    if isinstance(x, (list, tuple, set, frozenset, dict)):
        # Each element prints as at least one character and a ', ' separator.
        check_size(3 * len(x), 'a string')
    text = str(x)
    # Elements are bounded, but one number can print as a dozen characters.
    check_size(len(text), 'a string')
    return text


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
    if isinstance(x, str):
        # Decimal text converts in quadratic time: refuse before converting what could
        # only give an integer over the size limit.
        radix = base if isinstance(base, int) and base >= 2 else 16
        bits = len(x.strip()) * math.log2(radix)
        if bits > MAX_INT_BITS + 64:
            raise limit_error(f'int() of a {len(x)}-character string gives about '
                              f'{int(bits)} bits; the limit is {MAX_INT_BITS}')
    return int(x) if base is None else int(x, base)


def _round(number, ndigits=None):
    # Rounding an int to -n digits computes 10 ** n first: round(5, -10**9) would build a
    # billion-digit number. Any n past the number's own digits rounds it to 0.
    if isinstance(number, int) and isinstance(ndigits, int) and ndigits < 0 \
            and -ndigits > number.bit_length() * 0.302 + 2:
        return 0
    return round(number, ndigits)


# ---------------------------------------------------------- regular expressions
# Patterns run on RE2, whose matching time is linear in the text: Python's `re`
# backtracks, and `(a{,20}){,20}$` took minutes inside one C call that no budget can
# interrupt. The pattern is Python syntax; the few Python forms RE2 spells differently are
# rewritten, and the backtracking-only features are refused by name (see
# docs/query-language.md).
MAX_REGEX_LENGTH = 1_000          # characters of one pattern
MAX_REGEX_PROGRAM = 2_000         # instructions of one compiled pattern
MAX_REGEX_SUBJECT = 4_096         # characters of a string a pattern looks at
_REGEX_MEMORY = 1 << 20           # bytes RE2 may use per pattern (program and DFA cache)
_REGEX_CACHE = 128                # compiled patterns kept

_REGEX_FLAGS = {'i': 'i', 'm': 'm', 's': 's', 'a': '', 'u': ''}   # Python flag -> RE2
_REGEX_HINT = ('Patterns run on RE2, a linear-time engine: back-references, lookahead, '
               'lookbehind, atomic groups and possessive quantifiers are not available. '
               'Combine simpler tests with and/or instead, e.g. '
               "re_search('^run', s) and not re_search('tmp$', s).")

_REGEX_SIZE_HINT = 'Use smaller repeat counts, or split the test into several patterns.'


class RegexProblem(Exception):
    """Why a pattern cannot run, and where in the pattern."""

    def __init__(self, why: str, offset: int | None, hint: str = _REGEX_HINT):
        super().__init__(why)
        self.why = why
        self.offset = offset
        self.hint = hint


def _regex_error(pattern: str, problem: RegexProblem):
    where = f' at offset {problem.offset} of the pattern' if problem.offset is not None \
        else ''
    return query_error(UnsafeQueryError, f'the regular expression {pattern!r} cannot be '
                       f'used{where}: {problem.why}', None, None, problem.hint)


def _repeat_end(pattern: str, i: int) -> tuple[int, str] | None:
    """For `{m}`, `{m,}`, `{,n}`, `{m,n}` at i: (end, RE2 spelling); None for a literal `{`."""
    j = pattern.find('}', i)
    if j < 0:
        return None
    body = pattern[i + 1:j]
    low, comma, high = body.partition(',')
    if not (low.isdigit() or (comma and not low)) or (high and not high.isdigit()) \
            or not (low or high):
        return None
    if not (low.isascii() and high.isascii()):
        return None
    return j + 1, '{' + (low or '0') + comma + high + '}'


def translate_regex(pattern: str) -> str:
    """A Python pattern in RE2's spelling; RegexProblem for what RE2 cannot do."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    quantified = False            # the last thing written was a quantifier
    while i < n:
        ch = pattern[i]
        was_quantifier, quantified = quantified, False
        if ch == '\\':
            if i + 1 >= n:
                raise RegexProblem('the pattern ends with a lone backslash', i)
            nxt = pattern[i + 1]
            if nxt in 'uU' or nxt == 'N':
                out.append(_unicode_escape(pattern, i))
                i = _unicode_escape_end(pattern, i)
                continue
            if not in_class and nxt in '123456789':
                raise RegexProblem('back-references (\\1, \\2, ...) need a backtracking '
                                   'engine', i)
            if nxt == 'Z' and not in_class:
                out.append('\\z')
            elif nxt == 's':
                out.append('\\s\\v' if in_class else '[\\s\\v]')
            elif nxt == 'S' and not in_class:
                out.append('[^\\s\\v]')
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == ']':
                in_class = False
            elif ch == '[':
                ch = '\\['      # Python reads a nested `[` as a literal; RE2 as [:class:]
            out.append(ch)
            i += 1
            continue
        if ch == '[':
            in_class = True
            out.append('[')
            i += 1
            if i < n and pattern[i] == '^':
                out.append('^')
                i += 1
            if i < n and pattern[i] == ']':        # a leading `]` is a literal
                out.append('\\]')
                i += 1
            continue
        if ch == '(' and pattern.startswith('(?', i):
            i = _group_opening(pattern, i, out)
            continue
        if ch in '*+?' or ch == '{':
            if ch == '{':
                repeat = _repeat_end(pattern, i)
                if repeat is None:
                    out.append('\\{')
                    i += 1
                    continue
                i, spelling = repeat
                out.append(spelling)
            else:
                if ch == '+' and was_quantifier:
                    raise RegexProblem('possessive quantifiers (*+, ++, ?+, {m,n}+) need '
                                       'a backtracking engine', i)
                out.append(ch)
                i += 1
            quantified = ch != '?' or not was_quantifier
            continue
        out.append(ch)
        i += 1
    return ''.join(out)


def _group_opening(pattern: str, i: int, out: list[str]) -> int:
    """Translate the `(?...` opening at i into out; return where the group body starts."""
    rest = pattern[i + 2:i + 4]
    for prefix, why in (('=', 'lookahead (?=...)'), ('!', 'negative lookahead (?!...)'),
                        ('<=', 'lookbehind (?<=...)'), ('<!', 'negative lookbehind (?<!...)'),
                        ('P=', 'back-references (?P=name)'), ('>', 'atomic groups (?>...)'),
                        ('(', 'conditional groups (?(...)...)')):
        if rest.startswith(prefix):
            raise RegexProblem(f'{why} need a backtracking engine', i)
    if rest.startswith('#'):                       # a comment: dropped
        end = pattern.find(')', i)
        if end < 0:
            raise RegexProblem('the comment (?#... is not closed', i)
        return end + 1
    if rest.startswith(':') or rest.startswith('P<') or rest.startswith('<'):
        out.append(pattern[i:i + 2])
        return i + 2
    # Inline flags: (?aimsux) or (?flags-flags:...)
    j = i + 2
    letters: list[str] = []
    while j < len(pattern) and pattern[j] not in ':)':
        c = pattern[j]
        if c == '-':
            letters.append(c)
        elif c == 'x':
            raise RegexProblem('verbose patterns (?x) are not available; write the pattern '
                               'without spaces and comments', j)
        elif c not in _REGEX_FLAGS:
            raise RegexProblem(f'unknown flag {c!r} (the flags are i, m, s, a, u)', j)
        else:
            letters.append(_REGEX_FLAGS[c])
        j += 1
    if j >= len(pattern):
        raise RegexProblem('missing ) after the flags', i)
    flags = ''.join(letters)
    if pattern[j] == ')':
        if flags.strip('-'):
            out.append('(?' + flags.rstrip('-') + ')')
        return j + 1
    out.append('(?' + flags.rstrip('-') + ':' if flags.strip('-') else '(?:')
    return j + 1


def _unicode_escape_end(pattern: str, i: int) -> int:
    kind = pattern[i + 1]
    if kind == 'N':
        end = pattern.find('}', i)
        return end + 1 if end > 0 else len(pattern)
    return i + 2 + (4 if kind == 'u' else 8)


def _unicode_escape(pattern: str, i: int) -> str:
    """\\uXXXX, \\UXXXXXXXX and \\N{NAME} as RE2's \\x{...}."""
    kind = pattern[i + 1]
    if kind == 'N':
        import unicodedata
        end = pattern.find('}', i)
        if not pattern.startswith('{', i + 2) or end < 0:
            raise RegexProblem('\\N needs a name in braces, e.g. \\N{EM DASH}', i)
        try:
            code = ord(unicodedata.lookup(pattern[i + 3:end]))
        except KeyError:
            raise RegexProblem(f'unknown character name {pattern[i + 3:end]!r}', i) from None
    else:
        digits = pattern[i + 2:_unicode_escape_end(pattern, i)]
        width = 4 if kind == 'u' else 8
        if len(digits) != width or any(c not in '0123456789abcdefABCDEF' for c in digits):
            raise RegexProblem(f'\\{kind} needs {width} hex digits', i)
        code = int(digits, 16)
    return f'\\x{{{code:x}}}'


def _re2():
    try:
        import re2
    except ImportError:
        raise query_error(UnsafeQueryError, 'regular expressions need the google-re2 '
                          'package, which is not installed', None, None,
                          'Install it: pip install google-re2') from None
    return re2


@functools.lru_cache(maxsize=_REGEX_CACHE)
def compile_regex(pattern: str):
    """The compiled RE2 pattern; UnsafeQueryError naming what is wrong with it."""
    if len(pattern) > MAX_REGEX_LENGTH:
        raise query_error(UnsafeQueryError, f'the regular expression is {len(pattern)} '
                          f'characters long; the limit is {MAX_REGEX_LENGTH}', None, None,
                          'Use a shorter pattern.')
    try:
        translated = translate_regex(pattern)
    except RegexProblem as problem:
        raise _regex_error(pattern, problem) from None
    re2 = _re2()
    options = re2.Options()
    options.log_errors = False
    options.never_capture = True        # the functions answer yes/no: no groups needed
    options.max_mem = _REGEX_MEMORY
    try:
        compiled = re2.compile(translated, options)
    except re2.error as e:
        raise _regex_error(pattern, _re2_problem(pattern, e)) from None
    if compiled.programsize > MAX_REGEX_PROGRAM:
        raise _regex_error(pattern, RegexProblem(
            f'it compiles to {compiled.programsize} instructions; the limit is '
            f'{MAX_REGEX_PROGRAM} (large repeat counts like {{0,100}} multiply quickly)', None,
            _REGEX_SIZE_HINT))
    return compiled


def _re2_problem(pattern: str, error: Exception) -> RegexProblem:
    message = error.args[0] if error.args else str(error)
    if isinstance(message, bytes):
        message = message.decode('utf-8', 'replace')
    if 'too large' in message:
        return RegexProblem('it is too large once compiled (large repeat counts like '
                            '{0,100} multiply quickly)', None, _REGEX_SIZE_HINT)
    why, _, fragment = message.partition(': ')
    offset = pattern.find(fragment) if fragment else -1
    return RegexProblem(why or message, offset if offset >= 0 else None,
                        'Fix the pattern: Python regular-expression syntax, without '
                        'back-references and lookaround.')


def _regex(method: str):
    def match(pattern, string) -> bool:
        if not isinstance(pattern, str):
            raise TypeError('the pattern must be a string')
        if not isinstance(string, str):
            return False
        if len(string) > MAX_REGEX_SUBJECT:
            # Long texts are searched in their first MAX_REGEX_SUBJECT characters only.
            string = string[:MAX_REGEX_SUBJECT]
        return getattr(compile_regex(pattern), method)(string) is not None
    match.__name__ = 're_' + method
    return match


REGEX_FUNCTIONS = frozenset({'re_match', 're_search', 're_fullmatch'})


def _timedelta(*args, **kwargs):
    return _dt.timedelta(*args, **kwargs)


SAFE_FUNCTIONS = {
    'len': len, 'abs': abs, 'min': _agg(min), 'max': _agg(max), 'sum': _sum,
    'any': _agg(any), 'all': _agg(all), 'round': _round, 'int': _int, 'float': float,
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
