"""The allow-list: a query AST is checked node by node before anything is evaluated.

Only expression nodes that cannot reach Python's internals are allowed. Calls are allowed
only to the functions in `aim.ql.functions` and to methods from its method allow-list
(which the evaluator enforces again per receiver type). Names are limited to the query's
variables, the safe functions and comprehension variables.
"""
from __future__ import annotations

import ast
from typing import NoReturn

from aim.errors import QueryError
from aim.ql.errors import QuerySyntaxError, UnsafeQueryError, query_error
from aim.ql.functions import (
    ALLOWED_METHOD_NAMES,
    REGEX_FUNCTIONS,
    SAFE_FUNCTIONS,
    SAFE_MODULES,
    compile_regex,
)
from aim.ql.syntax import ParsedQuery

MAX_AST_NODES = 20_000
MAX_AST_DEPTH = 60
# Constant patterns are compiled while checking, before any budget runs; a query's
# distinct patterns together may hold this many RE2 instructions (about 10 ms to compile).
MAX_QUERY_REGEX_PROGRAM = 20_000

RUN_VARIABLES = frozenset({'run'})
TRACE_VARIABLES = frozenset({'run', 'metric', 'trace', 'context'})

_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Is, ast.IsNot, ast.Call, ast.keyword, ast.Attribute, ast.Subscript, ast.Slice,
    ast.Name, ast.Load, ast.Store, ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension, ast.IfExp,
)

_REFUSED_HINTS = {
    ast.Lambda: 'lambdas are not allowed in queries',
    ast.NamedExpr: 'assignment expressions (:=) are not allowed in queries',
    ast.JoinedStr: 'f-strings are not allowed in queries; compare with a plain string or '
                   'build it with + and str()',
    ast.FormattedValue: 'f-strings are not allowed in queries',
    ast.Starred: '* and ** unpacking are not allowed in queries',
    ast.Await: 'await is not allowed in queries',
    ast.Yield: 'yield is not allowed in queries',
    ast.YieldFrom: 'yield is not allowed in queries',
    ast.MatMult: 'the @ operator is not allowed in queries',
    ast.BitAnd: "'&' is not allowed in queries; write `and`",
    ast.BitOr: "'|' is not allowed in queries; write `or`",
    ast.BitXor: "'^' is not allowed in queries; for powers write **",
    ast.LShift: "'<<' is not allowed in queries",
    ast.RShift: "'>>' is not allowed in queries",
    ast.Invert: "'~' is not allowed in queries; write `not`",
}

_NAME_HINTS = {
    'true': 'True', 'false': 'False', 'null': 'None', 'none': 'None', 'nil': 'None',
    'TRUE': 'True', 'FALSE': 'False', 'NULL': 'None', 'NONE': 'None',
}


def check_query(parsed: ParsedQuery, variables: frozenset[str]) -> None:
    """Raise UnsafeQueryError / QuerySyntaxError if the query is not allowed."""
    if parsed.tree is None:
        return
    _Checker(parsed, variables).check()


class _Checker:
    def __init__(self, parsed: ParsedQuery, variables: frozenset[str]):
        self.parsed = parsed
        self.variables = variables
        self.count = 0
        self.patterns: set[str] = set()
        self.regex_program = 0
        # ids of the nodes that name a function or module where one belongs: a call's
        # function, a module before its member, `key=` of min/max/sorted
        self.in_place: set[int] = set()

    def fail(self, node: ast.AST, message: str, hint: str | None = None,
             cls: type[QueryError] = UnsafeQueryError) -> NoReturn:
        raise query_error(cls, message, self.parsed.text, self.parsed.position(node), hint)

    def check(self):
        self.visit(self.parsed.tree, frozenset(), 0)

    def visit(self, node: ast.AST, local_names: frozenset[str], depth: int):
        self.count += 1
        if self.count > MAX_AST_NODES:
            self.fail(node, f'the query has more than {MAX_AST_NODES} parts',
                      'Shorten the query.')
        if depth > MAX_AST_DEPTH:
            self.fail(node, 'the query is nested too deeply', 'Flatten the expression.')
        refused = _REFUSED_HINTS.get(type(node))
        if refused is not None:
            self.fail(node, refused)
        if not isinstance(node, _ALLOWED_NODES):
            self.fail(node, f'{type(node).__name__} expressions are not allowed in queries')

        if isinstance(node, ast.Name):
            self.check_name(node, local_names)
        elif isinstance(node, ast.Attribute):
            self.check_identifier(node, node.attr, 'attribute')
            if isinstance(node.value, ast.Name) and node.value.id in SAFE_MODULES \
                    and node.value.id not in local_names \
                    and node.value.id not in self.variables:
                self.check_module_member(node, node.value.id)
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (str, int, float, bool, type(None))):
                self.fail(node, f'{type(node.value).__name__} literals are not allowed in queries')
        elif isinstance(node, ast.Call):
            self.check_call(node)
        elif isinstance(node, ast.Dict) and any(key is None for key in node.keys):
            self.fail(node, '** unpacking is not allowed in queries')
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            self.visit_comprehension(node, local_names, depth)
            return
        for child in ast.iter_child_nodes(node):
            self.visit(child, local_names, depth + 1)

    def visit_comprehension(self, node, local_names, depth):
        names = set(local_names)
        for gen in node.generators:
            if gen.is_async:
                self.fail(node, 'async comprehensions are not allowed in queries')
            # The iterable of a generator is evaluated with the names bound so far.
            self.visit(gen.iter, frozenset(names), depth + 1)
            for target in _target_names(gen.target, self):
                self.check_identifier(gen.target, target, 'name')
                names.add(target)
            for cond in gen.ifs:
                self.visit(cond, frozenset(names), depth + 1)
        inner = frozenset(names)
        if isinstance(node, ast.DictComp):
            self.visit(node.key, inner, depth + 1)
            self.visit(node.value, inner, depth + 1)
        else:
            self.visit(node.elt, inner, depth + 1)

    def check_identifier(self, node, name: str, what: str):
        if name.startswith('_'):
            self.fail(node, f"the {what} {name!r} starts with '_'; such names are not "
                      'allowed in queries',
                      "To read a param whose name starts with '_', write run['" + name + "'].")

    def check_module_member(self, node: ast.Attribute, module_name: str):
        """`math.pi`, `datetime.now()`: the member exists, and is called if and only if it
        is a function (otherwise the query would compare a function, never matching)."""
        module = SAFE_MODULES[module_name]
        self.in_place.add(id(node.value))
        if node.attr not in module:
            self.fail(node, f'{module_name}.{node.attr} is not allowed in queries',
                      'Allowed: ' + ', '.join(sorted(module)) + '.')
        member = module.members[node.attr]
        is_function = member is None or callable(member)    # None: bound per query
        called = id(node) in self.in_place
        if is_function and not called:
            self.fail(node, f'{module_name}.{node.attr} is a function, used here as a value',
                      f'Call it: {module_name}.{node.attr}(...).')
        if called and not is_function:
            self.fail(node, f'{module_name}.{node.attr} is a constant, not a function',
                      f'Write {module_name}.{node.attr} without ().')

    def check_name(self, node: ast.Name, local_names: frozenset[str]):
        name = node.id
        self.check_identifier(node, name, 'name')
        if name in local_names or name in self.variables:
            return
        if name in SAFE_FUNCTIONS or name in SAFE_MODULES:
            if id(node) not in self.in_place:
                if name in SAFE_MODULES:
                    self.fail(node, f'{name} is a module, used here as a value',
                              f'Use one of its members, e.g. {name}.'
                              f'{next(iter(SAFE_MODULES[name]))}.')
                self.fail(node, f'{name} is a function, used here as a value',
                          f'Call it: {name}(...).')
            return
        if name in TRACE_VARIABLES and self.variables == RUN_VARIABLES:
            self.fail(node, f'{name!r} is not available in a run query',
                      'Use repo.query_metrics() / repo.traces() to filter metrics; run '
                      'queries see only `run`.', QuerySyntaxError)
        if name in _NAME_HINTS:
            self.fail(node, f'unknown name {name!r}', f'Write {_NAME_HINTS[name]} instead.',
                      QuerySyntaxError)
        known = ', '.join(sorted(self.variables))
        self.fail(node, f'unknown name {name!r}',
                  f'Queries can use {known}, e.g. run.hparams.{name}; strings need quotes: '
                  f"'{name}'.", QuerySyntaxError)

    def check_call(self, node: ast.Call):
        for kw in node.keywords:
            if kw.arg is None:
                self.fail(node, '** unpacking is not allowed in queries')
            self.check_identifier(kw, kw.arg, 'keyword argument')
            if kw.arg == 'key' and isinstance(kw.value, ast.Name):
                self.in_place.add(id(kw.value))      # max(run.tags, key=len)
        func = node.func
        self.in_place.add(id(func))
        if isinstance(func, ast.Name):
            if func.id not in SAFE_FUNCTIONS:
                self.fail(func, f'calling {func.id!r} is not allowed in queries',
                          'Allowed functions: ' + ', '.join(sorted(SAFE_FUNCTIONS)) + '.')
            if func.id in REGEX_FUNCTIONS:
                self.check_pattern(node)
        elif isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id in SAFE_MODULES:
                module = SAFE_MODULES[func.value.id]
                if func.attr not in module:
                    self.fail(func, f'{func.value.id}.{func.attr} is not allowed in queries',
                              'Allowed: ' + ', '.join(sorted(module)) + '.')
            elif func.attr not in ALLOWED_METHOD_NAMES:
                self.fail(func, f'calling the method {func.attr!r} is not allowed in queries',
                          'Allowed methods: ' + ', '.join(sorted(ALLOWED_METHOD_NAMES)) + '.')
        else:
            self.fail(func, 'only named functions and methods can be called in queries')


    def check_pattern(self, node: ast.Call):
        """A constant pattern is compiled now, so its error comes before any run is read
        and points at the pattern in the query."""
        if not node.args or not isinstance(node.args[0], ast.Constant) \
                or not isinstance(node.args[0].value, str):
            return
        pattern = node.args[0].value
        if pattern in self.patterns:
            return
        try:
            compiled = compile_regex(pattern)
        except QueryError as e:
            self.fail(node.args[0], getattr(e, 'reason', None) or str(e), e.hint)
        self.patterns.add(pattern)
        self.regex_program += compiled.programsize
        if self.regex_program > MAX_QUERY_REGEX_PROGRAM:
            self.fail(node.args[0], f'the regular expressions of the query compile to more '
                      f'than {MAX_QUERY_REGEX_PROGRAM} instructions together',
                      'Use fewer or simpler patterns, e.g. one alternation (a|b|c) instead '
                      'of many patterns.')


def _target_names(target: ast.AST, checker: _Checker) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple):
        names = [e.id for e in target.elts if isinstance(e, ast.Name)]
        if len(names) == len(target.elts):
            return names
    checker.fail(target, 'a comprehension variable must be a name or a tuple of names')
