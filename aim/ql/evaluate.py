"""A tree-walking evaluator for checked query ASTs.

It never calls `eval` or `compile`: each node kind has a small rule here, so every value
a query can produce passes through code that knows the undefined rules, the size limits
and the CPU budget. A type error inside a comparison makes that comparison false; a type
error in arithmetic or a call gives undefined, which no comparison matches.

Those rules are for the data, which varies between items (a param that is a string in one
run and a number in the next). The query's own objects (`run`, `metric`, `run.metrics`, a
series' values) are the same for every item: an operation they do not support
(`metric.values > 0`, `metric.mean()`, `len(run)`) is a QueryTypeError naming it, never
an empty result.
"""
from __future__ import annotations

import ast
import datetime as _dt
import operator
from collections.abc import Callable

from aim.errors import AimError, QueryError
from aim.ql import functions as fn
from aim.ql.budget import CpuBudget
from aim.ql.errors import QueryLimitError, QueryTypeError, query_error
from aim.ql.undefined import UNDEFINED, Undefined


class Unsupported(Exception):
    """An operation a query object does not support; the evaluator reports it as a
    QueryTypeError at the position of the expression that tried it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.node: ast.AST | None = None


class QueryObject:
    """Base of the views a query sees (`run`, `metric`, ...); see aim.ql.views.

    By default a view has no attributes, items, methods or elements: asking for one is an
    error (Unsupported), since it is wrong for every item the query looks at."""

    ql_describe = 'this object'
    ql_attributes: tuple[str, ...] = ()
    ql_methods: tuple[str, ...] = ()

    def ql_getattr(self, name: str):
        raise Unsupported(f'{self.ql_describe} has no attribute {name!r}',
                          _listing('attributes', self.ql_attributes))

    def ql_getitem(self, key):
        raise Unsupported(f'{self.ql_describe} cannot be indexed ([...])')

    def ql_call(self, name: str, args: tuple, kwargs: dict):
        raise Unsupported(f'{self.ql_describe} has no method {name}()',
                          _listing('methods', self.ql_methods))

    def ql_value(self):
        """The plain value this object stands for in comparisons and arithmetic."""
        return self

    def ql_bool(self) -> bool:
        return True

    def ql_iter(self):
        raise Unsupported(f'{self.ql_describe} cannot be iterated')


class LazyGenerator(QueryObject):
    """A generator expression: its items are computed as a function consumes them, so
    `sum(1 for ...)` builds nothing. Its limit is on iterations (Evaluator._bindings);
    whatever builds a container from it counts the elements (functions.build_list)."""
    __slots__ = ('failed', 'items')
    ql_describe = 'a generator expression'

    def __init__(self):
        self.items = iter(())
        self.failed = False      # it met a value that is not iterable: the result is undefined

    def ql_iter(self):
        return self.items

    def __iter__(self):
        return self.items

    def ql_getitem(self, key):
        raise Unsupported('a generator expression cannot be indexed ([...])',
                          'Make a list instead: [x for x in ...][0].')

    def __repr__(self) -> str:
        return '<generator expression>'


# The functions that consume an iterable; any other function given a generator expression
# is a QueryTypeError (it would never be what the query meant).
_ITERABLE_FUNCTIONS = frozenset({'sum', 'any', 'all', 'min', 'max', 'sorted', 'list',
                                 'tuple', 'set', 'bool'})


def _listing(what: str, names: tuple[str, ...]) -> str | None:
    return f"Its {what}: {', '.join(names)}." if names else None


def describe(value) -> str:
    return value.ql_describe if isinstance(value, QueryObject) else type(value).__name__


_OPERATOR_SYMBOLS = {
    ast.Eq: '==', ast.NotEq: '!=', ast.Lt: '<', ast.LtE: '<=', ast.Gt: '>', ast.GtE: '>=',
    ast.In: 'in', ast.NotIn: 'not in', ast.Add: '+', ast.Sub: '-', ast.Mult: '*',
    ast.Div: '/', ast.FloorDiv: '//', ast.Mod: '%', ast.Pow: '**', ast.USub: '-',
    ast.UAdd: '+',
}


def _unsupported_operator(op, values, error: Exception) -> Unsupported:
    """The error for an operator that failed on a query object (one of `values`)."""
    operands = ' and '.join(describe(v) for v in values)
    symbol = _OPERATOR_SYMBOLS.get(op, op.__name__)
    return Unsupported(f'{symbol!r} does not work on {operands}: {error}',
                       'Apply it to a value read from it instead, e.g. metric.last > 0 or '
                       'metric.values.max() > 0.')


# Errors that mean "this value does not fit this operation": the result is undefined.
# The library's own errors (AimError: a run removed meanwhile, unreadable points) are
# some of these types too (MissingRunError is a KeyError); every catch lets them through
# first, so that a failure to read the data is never taken for a non-match.
_VALUE_ERRORS = (TypeError, ValueError, ArithmeticError, IndexError, KeyError,
                 AttributeError, UnicodeError)

_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_BINOPS = {
    ast.Add: fn.bounded_add, ast.Sub: operator.sub, ast.Mult: fn.bounded_multiply,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Pow: fn.bounded_power,
}


def plain(value):
    return value.ql_value() if isinstance(value, QueryObject) else value


def truth(value) -> bool:
    if isinstance(value, Undefined):
        return False
    if isinstance(value, QueryObject):
        return value.ql_bool()
    try:
        return bool(value)
    except AimError:
        raise
    except _VALUE_ERRORS:
        return False


_NONE_RULE_OPS = (ast.Eq, ast.NotEq, ast.Is, ast.IsNot)


def py_compare(op: type[ast.cmpop], a, b) -> bool:
    """One comparison with the query language's rules (undefined, type errors -> False;
    a type error on a query object is Unsupported)."""
    raw = (a, b)
    a = plain(a)
    b = plain(b)
    a_undef = isinstance(a, Undefined)
    b_undef = isinstance(b, Undefined)
    # The None rule: to `==`, `!=`, `is`, `is not`, and as the item of `in` / `not in`, an
    # undefined value (a missing param) is None, so `x == None` and `x is None` both mean
    # "missing or null", and `!=` / `is not` are their exact negation.
    if op in _NONE_RULE_OPS or (a_undef and not b_undef and op in (ast.In, ast.NotIn)):
        if a_undef:
            a = None
        if b_undef:
            b = None
        a_undef = b_undef = False
    if op is ast.Is:
        return a is b
    if op is ast.IsNot:
        return a is not b
    if a_undef or b_undef:
        # orderings with undefined are false; an undefined container holds nothing
        return op is ast.NotIn
    try:
        if op is ast.In:
            return _contains(b, a)
        if op is ast.NotIn:
            return not _contains(b, a)
        return bool(_COMPARE[op](a, b))
    except AimError:
        raise
    except _VALUE_ERRORS as e:
        if isinstance(e, TypeError) and any(isinstance(v, QueryObject) for v in raw):
            raise _unsupported_operator(op, raw, e) from None
        return False


def _contains(container, item) -> bool:
    if isinstance(container, QueryObject):
        value = container.ql_value()
        if value is container:
            return any(plain(x) == item for x in container.ql_iter())
        container = value
    if isinstance(container, (str, list, tuple, set, frozenset, dict, range)):
        if isinstance(container, str) and not isinstance(item, str):
            raise TypeError('a string contains only strings')
        return item in container
    raise TypeError(f'{type(container).__name__} is not a container')


def get_attribute(obj, name: str):
    if isinstance(obj, Undefined):
        return UNDEFINED
    if isinstance(obj, QueryObject):
        return obj.ql_getattr(name)
    if isinstance(obj, fn.ModuleTable):
        value = obj.members.get(name, UNDEFINED)
        return UNDEFINED if value is None else value
    if isinstance(obj, dict):
        return obj.get(name, UNDEFINED)
    if isinstance(obj, _dt.datetime) and name in fn.DATETIME_ATTRIBUTES:
        return getattr(obj, name)
    if isinstance(obj, _dt.timedelta) and name in fn.TIMEDELTA_ATTRIBUTES:
        return getattr(obj, name)
    return UNDEFINED


def get_item(obj, key):
    if isinstance(obj, Undefined) or isinstance(key, Undefined):
        return UNDEFINED
    if isinstance(obj, QueryObject):
        return obj.ql_getitem(key)
    key = plain(key)
    try:
        if isinstance(obj, dict):
            if isinstance(key, tuple) and key not in obj:
                value = obj
                for part in key:
                    value = get_item(value, part)
                return value
            return obj.get(key, UNDEFINED) if _hashable(key) else UNDEFINED
        if isinstance(obj, (list, tuple, str, range)):
            if isinstance(key, bool) or not isinstance(key, (int, slice)):
                return UNDEFINED
            return obj[key]
    except AimError:
        raise
    except _VALUE_ERRORS:
        return UNDEFINED
    return UNDEFINED


def _hashable(key) -> bool:
    try:
        hash(key)
        return True
    except TypeError:
        return False


def call_method(obj, name: str, args: tuple, kwargs: dict):
    if isinstance(obj, Undefined):
        return UNDEFINED
    if isinstance(obj, QueryObject):
        return obj.ql_call(name, args, kwargs)
    if isinstance(obj, str) and name in fn.STR_METHODS:
        fn.precheck_str_method(obj, name, args)
        return getattr(obj, name)(*args, **kwargs)
    if isinstance(obj, (list, tuple)) and name in fn.SEQUENCE_METHODS:
        return getattr(obj, name)(*args, **kwargs)
    if isinstance(obj, dict) and name in fn.DICT_METHODS:
        if name == 'get':
            if len(args) > 1:
                return obj.get(*args)
            return obj.get(args[0], UNDEFINED) if args else UNDEFINED
        return list(getattr(obj, name)())
    if isinstance(obj, _dt.datetime) and name in fn.DATETIME_METHODS:
        if name == 'strftime':
            fn.precheck_str_method('', name, args)
        return getattr(obj, name)(*args, **kwargs)
    if isinstance(obj, _dt.date) and name in fn.DATETIME_METHODS - {'timestamp', 'date'}:
        return getattr(obj, name)(*args, **kwargs)
    if isinstance(obj, _dt.timedelta) and name in fn.TIMEDELTA_METHODS:
        return getattr(obj, name)(*args, **kwargs)
    return UNDEFINED


class FrozenClock:
    """`datetime.now()` inside one query always returns the same instant."""

    def __init__(self):
        self.now = _dt.datetime.now()
        self.utcnow = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)

    def member(self, name: str):
        if name == 'now':
            return lambda tz=None: self.now if tz is None else _dt.datetime.now(tz)
        if name == 'utcnow':
            return lambda: self.utcnow
        if name == 'today':
            return lambda: self.now
        return None


class Evaluator:
    """Evaluates one checked expression against an environment of variables."""

    def __init__(self, tree: ast.AST, budget: CpuBudget | None = None,
                 clock: FrozenClock | None = None, query: str | None = None,
                 position: Callable[[ast.AST], int | None] | None = None):
        self.tree = tree.body if isinstance(tree, ast.Expression) else tree
        self.budget = budget or CpuBudget(query=query)
        self.clock = clock or FrozenClock()
        self.query = query
        # where a node starts in the query text (ParsedQuery.position), for errors
        self.position = position or (lambda node: None)

    def matches(self, env: dict) -> bool:
        """The truth of the expression for one candidate."""
        return truth(self.value(self.tree, env))

    def value(self, node: ast.AST, env: dict):
        with self.budget:
            try:
                value = self.eval(node, env)
                # Checked per candidate too: a long expression with no loop or call in
                # it still counts against the budget.
                self.budget.check()
                return value
            except QueryError:
                raise
            except Unsupported as e:
                position = self.position(e.node) if e.node is not None else None
                raise query_error(QueryTypeError, e.message, self.query, position,
                                  e.hint) from None
            except RecursionError:
                raise query_error(QueryLimitError, 'the query recursed too deeply', self.query,
                                  None, 'Simplify the query.') from None
            except MemoryError:
                raise query_error(QueryLimitError, 'the query ran out of memory', self.query,
                                  None, 'Make the query build smaller values.') from None

    # ------------------------------------------------------------------ nodes
    def eval(self, node: ast.AST, env: dict):
        method = getattr(self, 'eval_' + type(node).__name__)
        try:
            return method(node, env)
        except Unsupported as e:
            if e.node is None:
                e.node = node          # the innermost expression that tried it
            raise

    def eval_Constant(self, node, env):
        return node.value

    def eval_Name(self, node, env):
        name = node.id
        if name in env:
            return env[name]
        if name in fn.SAFE_FUNCTIONS:
            return fn.SAFE_FUNCTIONS[name]
        if name in fn.SAFE_MODULES:
            return fn.SAFE_MODULES[name]
        return UNDEFINED

    def eval_BoolOp(self, node, env):
        is_and = isinstance(node.op, ast.And)
        result = None
        for value_node in node.values:
            result = self.eval(value_node, env)
            if truth(result) != is_and:
                return result
        return result

    def eval_UnaryOp(self, node, env):
        operand = self.eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not truth(operand)
        raw, operand = operand, plain(operand)
        if isinstance(operand, Undefined):
            return UNDEFINED
        try:
            return -operand if isinstance(node.op, ast.USub) else +operand
        except AimError:
            raise
        except _VALUE_ERRORS as e:
            if isinstance(e, TypeError) and isinstance(raw, QueryObject):
                raise _unsupported_operator(type(node.op), (raw,), e) from None
            return UNDEFINED

    # Operators, comparisons, items and calls may each take milliseconds on big values:
    # they tick the budget, so thousands of them in one candidate still stop in time.
    def eval_BinOp(self, node, env):
        self.budget.tick()
        raw = (self.eval(node.left, env), self.eval(node.right, env))
        left, right = plain(raw[0]), plain(raw[1])
        if isinstance(left, Undefined) or isinstance(right, Undefined):
            return UNDEFINED
        if isinstance(node.op, ast.Mod):
            if isinstance(left, str):
                raise query_error(
                    QueryLimitError, "string formatting with '%' is not allowed in queries",
                    self.query, None, 'Build strings with + and str(), or compare directly.')
            op = operator.mod
        else:
            op = _BINOPS[type(node.op)]
        try:
            return op(left, right)
        except AimError:
            raise
        except _VALUE_ERRORS as e:
            if isinstance(e, TypeError) and any(isinstance(v, QueryObject) for v in raw):
                raise _unsupported_operator(type(node.op), raw, e) from None
            return UNDEFINED

    def eval_Compare(self, node, env):
        self.budget.tick()
        left = self.eval(node.left, env)
        for op, comparator in zip(node.ops, node.comparators):
            right = self.eval(comparator, env)
            if not py_compare(type(op), left, right):
                return False
            left = right
        return True

    def eval_IfExp(self, node, env):
        if truth(self.eval(node.test, env)):
            return self.eval(node.body, env)
        return self.eval(node.orelse, env)

    def eval_Attribute(self, node, env):
        value = node.value
        if isinstance(value, ast.Name) and value.id not in env and value.id in fn.SAFE_MODULES:
            # `datetime.max`: the module's member (the name alone is the datetime type)
            return get_attribute(fn.SAFE_MODULES[value.id], node.attr)
        return get_attribute(self.eval(value, env), node.attr)

    def eval_Subscript(self, node, env):
        self.budget.tick()
        obj = self.eval(node.value, env)
        key = self.eval(node.slice, env)
        return get_item(obj, key)

    def eval_Slice(self, node, env):
        parts = []
        for part in (node.lower, node.upper, node.step):
            v = None if part is None else plain(self.eval(part, env))
            if isinstance(v, Undefined):
                v = None
            parts.append(v)
        return slice(*parts)

    def _elements(self, nodes, env, what: str, transform=None) -> list:
        """The values of `nodes`, refusing once their total size passes the limit, so
        that a container over the limit is never held in memory whole."""
        values = []
        total = len(nodes)
        fn.check_size(total, what)
        for node in nodes:
            value = self.eval(node, env)
            if transform is not None:
                value = transform(value)
            total += fn.volume(value, fn.MAX_ITEMS - total + 1)
            fn.check_size(total, what)
            values.append(value)
        return values

    def eval_List(self, node, env):
        return self._elements(node.elts, env, 'a list')

    def eval_Tuple(self, node, env):
        return tuple(self._elements(node.elts, env, 'a tuple'))

    def eval_Set(self, node, env):
        try:
            return set(self._elements(node.elts, env, 'a set', plain))
        except TypeError:
            return UNDEFINED

    def eval_Dict(self, node, env):
        keys = self._elements(node.keys, env, 'a dict', plain)
        values = self._elements(node.values, env, 'a dict')
        fn.check_size(fn.volume(keys) + fn.volume(values), 'a dict')
        try:
            return dict(zip(keys, values))
        except TypeError:
            return UNDEFINED

    def eval_Call(self, node, env):
        func = node.func
        views: list[QueryObject] = []

        generators: list[LazyGenerator] = []

        def argument(value):
            if isinstance(value, LazyGenerator):
                generators.append(value)
            elif isinstance(value, QueryObject):
                views.append(value)
            return plain(value)

        args = tuple(self._elements(node.args, env, 'the arguments of a call', argument))
        kwargs = dict(zip([kw.arg for kw in node.keywords],
                          self._elements([kw.value for kw in node.keywords], env,
                                         'the arguments of a call', argument)))
        if isinstance(func, ast.Name) and func.id not in env:
            target = fn.SAFE_FUNCTIONS.get(func.id)
            if target is None:
                return UNDEFINED
            if generators and func.id not in _ITERABLE_FUNCTIONS:
                raise Unsupported(f'{func.id}() does not take a generator expression',
                                  'Make a list instead: [x for x in ...].')
            if target is bool:
                return truth(args[0]) if args else False
            if any(isinstance(a, Undefined) for a in args) or \
                    any(isinstance(v, Undefined) for v in kwargs.values()):
                return UNDEFINED
            result = self._call(target, args, kwargs, func.id, views)
            if any(g.failed for g in generators):
                return UNDEFINED
            return result
        if isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id not in env \
                    and func.value.id in fn.SAFE_MODULES:
                member = self.clock.member(func.attr) if func.value.id == 'datetime' else None
                if member is None:
                    member = fn.SAFE_MODULES[func.value.id].members.get(func.attr)
                if member is None or not callable(member):
                    return UNDEFINED
                if any(isinstance(a, Undefined) for a in args):
                    return UNDEFINED
                if generators:
                    raise Unsupported(f'{func.value.id}.{func.attr}() does not take a '
                                      'generator expression')
                return self._call(member, args, kwargs, f'{func.value.id}.{func.attr}', views)
            receiver = self.eval(func.value, env)
            if func.attr not in fn.ALLOWED_METHOD_NAMES:
                return UNDEFINED
            self.budget.tick()
            if generators:
                # methods take lists: build them, counting elements
                args = tuple(fn.build_list(a) if isinstance(a, LazyGenerator) else a
                             for a in args)
                if any(g.failed for g in generators):
                    return UNDEFINED
            if isinstance(receiver, QueryObject):
                views.insert(0, receiver)
                if any(isinstance(a, Undefined) for a in args) or \
                        any(isinstance(v, Undefined) for v in kwargs.values()):
                    return UNDEFINED       # e.g. values_between(run.missing, 10)
            try:
                return call_method(receiver, func.attr, args, kwargs)
            except AimError:
                raise
            except _VALUE_ERRORS as e:
                if isinstance(e, TypeError) and views:
                    raise Unsupported(f'{func.attr}() does not work here on '
                                      f'{views[0].ql_describe}: {e}') from None
                return UNDEFINED
        return UNDEFINED

    def _call(self, target, args, kwargs, name: str, views: list[QueryObject]):
        self.budget.tick()
        try:
            return target(*args, **kwargs)
        except AimError:
            raise
        except _VALUE_ERRORS as e:
            if isinstance(e, TypeError) and views:
                raise Unsupported(f'{name}() does not work on {views[0].ql_describe}: {e}',
                                  'Apply it to a value read from it, e.g. '
                                  'max(metric.values) or metric.values.max().') from None
            return UNDEFINED

    # ------------------------------------------------------------ comprehensions
    def _iterate(self, value):
        value = value if isinstance(value, QueryObject) else plain(value)
        if isinstance(value, Undefined):
            return iter(())
        if isinstance(value, QueryObject):
            return value.ql_iter()
        if isinstance(value, dict):
            return iter(list(value))
        if isinstance(value, (list, tuple, str, set, frozenset, range)):
            return iter(value)
        raise TypeError(f'{type(value).__name__} is not iterable')

    def _bindings(self, generators, env, index=0, iterations: list[int] | None = None):
        """The environments of a comprehension's items; `iterations` (a one-item list)
        counts every loop step, for generator expressions, whose limit is on those."""
        if index == len(generators):
            yield env
            return
        gen = generators[index]
        for item in self._iterate(self.eval(gen.iter, env)):
            self.budget.tick()
            if iterations is not None:
                iterations[0] += 1
                if iterations[0] > fn.MAX_ITEMS:
                    raise fn.limit_error(
                        f'a generator expression iterates more than {fn.MAX_ITEMS} times '
                        f'(the limit for one generator)',
                        'Iterate over fewer or smaller ranges.')
            local = dict(env)
            if isinstance(gen.target, ast.Name):
                local[gen.target.id] = item
            else:
                names = [e.id for e in gen.target.elts]
                try:
                    values = tuple(item)
                except TypeError:
                    continue
                if len(values) != len(names):
                    continue
                local.update(zip(names, values))
            if all(truth(self.eval(cond, local)) for cond in gen.ifs):
                yield from self._bindings(generators, local, index + 1, iterations)

    def _collect(self, node, env, make_item, what: str):
        out = []
        total = 0
        try:
            for local in self._bindings(node.generators, env):
                item = make_item(local)
                out.append(item)
                total += fn.volume(item, fn.MAX_ITEMS - total + 1)
                fn.check_size(total, what)
        except AimError:
            raise
        except TypeError:
            return UNDEFINED
        return out

    def eval_ListComp(self, node, env):
        return self._collect(node, env, lambda local: self.eval(node.elt, local),
                             'a list comprehension')

    def eval_GeneratorExp(self, node, env):
        generator = LazyGenerator()
        generator.items = self._generate(node, env, generator)
        return generator

    def _generate(self, node, env, generator: LazyGenerator):
        try:
            for local in self._bindings(node.generators, env, iterations=[0]):
                yield self.eval(node.elt, local)
        except AimError:
            raise
        except TypeError:
            generator.failed = True    # as a list comprehension over it would be undefined

    def eval_SetComp(self, node, env):
        items = self._collect(node, env, lambda local: plain(self.eval(node.elt, local)),
                              'a set comprehension')
        if isinstance(items, Undefined):
            return items
        try:
            return set(items)
        except TypeError:
            return UNDEFINED

    def eval_DictComp(self, node, env):
        pairs = self._collect(node, env, lambda local: (plain(self.eval(node.key, local)),
                                                        self.eval(node.value, local)),
                              'a dict comprehension')
        if isinstance(pairs, Undefined):
            return pairs
        try:
            return dict(pairs)
        except TypeError:
            return UNDEFINED
