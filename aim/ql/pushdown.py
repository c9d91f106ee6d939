"""Push-down: the part of a query that SQL over the index can decide.

`translate()` turns a checked AST into a WHERE condition over `runs r` (and `series s`
for trace queries). Each condition is either *exact* (SQL decides it the way the Python
evaluator would) or a *superset* (SQL keeps every candidate that could match, and the
evaluator decides on those). `and` keeps whatever parts translate; `or` and `not` need
their parts to translate (exactly, for `not`).

SQL's type rules differ from Python's (`'1' = 1` under column affinity, NULL logic), so a
comparison with a constant becomes a CASE over the stored value's JSON type: same-type
branches compare in SQL, and every other branch is a constant computed *by the Python
evaluator itself* on a representative value of that type (e.g. `'' > 3` is a TypeError,
so False). The SQL can therefore never disagree with the residual evaluation.
"""
from __future__ import annotations

import ast
import datetime as _dt
import math
from typing import Any

from aim.ql.evaluate import py_compare
from aim.ql.undefined import UNDEFINED
from aim.ql.views import METRIC_SUMMARY_ATTRIBUTES, RUN_PROPS, metric_key

MAX_IN_LIST = 10_000


class Sql:
    """A WHERE condition: its text, its arguments, and whether it decides exactly."""
    __slots__ = ('args', 'exact', 'text')

    def __init__(self, text: str, args: list | None = None, exact: bool = True):
        self.text = text
        self.args = args if args is not None else []
        self.exact = exact

    def __repr__(self) -> str:
        return f'Sql({self.text!r}, {self.args!r}, exact={self.exact})'


UNKNOWN = Sql('1', [], False)
TRUE = Sql('1', [], True)
FALSE = Sql('0', [], True)

_SQL_OPS = {ast.Eq: '=', ast.NotEq: '!=', ast.Lt: '<', ast.LtE: '<=', ast.Gt: '>',
            ast.GtE: '>='}
_FLIP = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE, ast.Eq: ast.Eq,
         ast.NotEq: ast.NotEq, ast.Is: ast.Is, ast.IsNot: ast.IsNot}

# A representative Python value for each JSON type: results that do not depend on the
# value within the type are computed on it.
_JSON_REPRESENTATIVES: tuple[tuple[str, Any], ...] = (
    ('integer', 0), ('real', 0.0), ('true', True), ('false', False), ('text', ''),
    ('null', None), ('array', []), ('object', {}))


def _special_float(column: str) -> str:
    """SQL giving the "$float" word of a one-key object (else NULL); two arguments: the
    value's path and the path of its "$float" key. The decoder turns exactly the one-key
    objects holding 'nan', 'inf' or '-inf' into floats."""
    return (f"(CASE WHEN (SELECT count(*) FROM json_each({column}, ?)) = 1 "
            f"THEN json_extract({column}, ?) END)")


def _b(value: bool) -> str:
    return '1' if value else '0'


def _is_number(c) -> bool:
    return isinstance(c, (int, float)) and not (isinstance(c, float) and math.isnan(c))


def _is_scalar(c) -> bool:
    return c is None or isinstance(c, (str, int, float, bool))


# ------------------------------------------------------------------ references
class JsonRef:
    """A path into a JSON column: 'r.params' or 's.context', and a list of str keys."""
    __slots__ = ('column', 'path')

    def __init__(self, column: str, path: list):
        self.column = column
        self.path = path

    def json_path(self, extra: str | None = None) -> str | None:
        out = '$'
        for part in self.path + ([extra] if extra is not None else []):
            if '"' in part or '\\' in part:
                return None
            out += '."' + part + '"'
        return out


class ColumnRef:
    """A column; kind is text | real | int | archived | datetime | tags | metric, and
    null_value what the evaluator sees for NULL."""
    __slots__ = ('column', 'kind', 'null_value')

    def __init__(self, column: str, kind: str, null_value=None):
        self.column = column
        self.kind = kind
        self.null_value = null_value


class SummaryRef:
    """A summary column of one series of the run (`run.metrics[...]`): the condition that
    selects the series row, its arguments, and the column."""
    __slots__ = ('args', 'attribute', 'condition')

    def __init__(self, condition: str, args: list, attribute: str):
        self.condition = condition
        self.args = args
        self.attribute = attribute


class Translator:
    def __init__(self, kind: str, constant):
        self.kind = kind            # 'run' or 'trace'
        self.constant = constant    # node -> (True, value) | (False, None)

    # -------------------------------------------------------------- resolve refs
    def is_run(self, node) -> bool:
        if isinstance(node, ast.Name):
            return node.id == 'run'
        return (self.kind == 'trace' and isinstance(node, ast.Attribute) and node.attr == 'run'
                and isinstance(node.value, ast.Name) and node.value.id in ('metric', 'trace'))

    def is_metric(self, node) -> bool:
        return self.kind == 'trace' and isinstance(node, ast.Name) and \
            node.id in ('metric', 'trace')

    def const_keys(self, node) -> list | None:
        ok, value = self.constant(node)
        if not ok:
            return None
        if isinstance(value, str):
            return [value]
        if isinstance(value, tuple) and value and all(isinstance(v, str) for v in value):
            return list(value)
        return None

    def resolve(self, node):
        if self.is_metric(node):
            return ColumnRef('s.name', 'metric')
        if self.kind == 'trace' and isinstance(node, ast.Name) and node.id == 'context':
            return JsonRef('s.context', [])
        if isinstance(node, ast.Attribute):
            if self.is_run(node.value):
                return self.run_prop(node.attr)
            if self.is_metric(node.value):
                attr = node.attr
                if attr == 'name':
                    return ColumnRef('s.name', 'text')
                if attr == 'context':
                    return JsonRef('s.context', [])
                if attr in ('last', 'min', 'max'):
                    return ColumnRef('s.' + attr, 'real', math.nan)
                if attr in ('count', 'first_step', 'last_step'):
                    return ColumnRef('s.' + attr, 'int', None)
                return None
            if self.is_run_metrics_item(node.value):
                return self.summary_ref(node.value, node.attr)
            base = self.resolve(node.value)
            if isinstance(base, JsonRef):
                return JsonRef(base.column, base.path + [node.attr])
            return None
        if isinstance(node, ast.Subscript):
            keys = self.const_keys(node.slice)
            if keys is None:
                return None
            if self.is_run(node.value):
                return JsonRef('r.params', keys)
            base = self.resolve(node.value)
            if isinstance(base, JsonRef):
                return JsonRef(base.column, base.path + keys)
        return None

    def run_prop(self, attr: str):
        if attr not in RUN_PROPS:
            return JsonRef('r.params', [attr])
        if attr in ('name', 'experiment', 'description', 'hash'):
            return ColumnRef('r.' + attr, 'text')
        if attr in ('creation_time', 'end_time', 'updated_at'):
            return ColumnRef('r.' + attr, 'real')
        if attr == 'created_at':
            return ColumnRef('r.creation_time', 'datetime')
        if attr == 'finalized_at':
            return ColumnRef('r.end_time', 'datetime')
        if attr == 'archived':
            return ColumnRef('r.archived', 'archived')
        if attr == 'tags':
            return ColumnRef('r.tags', 'tags')
        return None    # active, duration, metrics: decided by the evaluator

    def is_run_metrics_item(self, node) -> bool:
        return (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                and node.value.attr == 'metrics' and self.is_run(node.value.value))

    def summary_ref(self, item: ast.Subscript, attribute: str):
        if attribute not in METRIC_SUMMARY_ATTRIBUTES:
            return None
        ok, key = self.constant(item.slice)
        if not ok:
            return None
        named = metric_key(key)
        if named is None:
            return None
        name, context = named
        conditions = ['s2.run_hash = r.hash', 's2.name = ?']
        args: list = [name]
        conditions.append('(SELECT count(*) FROM json_each(COALESCE(s2.context, \'{}\'))) = ?')
        args.append(len(context))
        for k, v in context.items():
            path = JsonRef('s2.context', [k]).json_path() if isinstance(k, str) else None
            if path is None:
                return None
            if isinstance(v, bool):
                conditions.append('json_type(s2.context, ?) = ?')
                args += [path, 'true' if v else 'false']
            elif v is None:
                conditions.append("json_type(s2.context, ?) = 'null'")
                args.append(path)
            elif isinstance(v, (int, str)) or (isinstance(v, float) and math.isfinite(v)):
                jtype = 'text' if isinstance(v, str) else \
                    ('integer' if isinstance(v, int) else 'real')
                conditions.append('json_type(s2.context, ?) = ? '
                                  'AND json_extract(s2.context, ?) = ?')
                args += [path, jtype, path, v]
            else:
                return None
        return SummaryRef(' AND '.join(conditions), args, attribute)

    # -------------------------------------------------------------- translate
    def translate(self, node) -> Sql:
        ok, value = self.constant(node)
        if ok:
            from aim.ql.evaluate import truth
            return TRUE if truth(value) else FALSE
        if isinstance(node, ast.BoolOp):
            parts = [self.translate(v) for v in node.values]
            if isinstance(node.op, ast.And):
                known = [p for p in parts if p is not UNKNOWN and p.text != '1']
                if any(p.text == '0' and p.exact for p in parts):
                    return FALSE
                exact = all(p.exact for p in parts)
                if not known:
                    return TRUE if exact else UNKNOWN
                return Sql('(' + ' AND '.join(p.text for p in known) + ')',
                           [a for p in known for a in p.args], exact)
            if any(p is UNKNOWN for p in parts):
                return UNKNOWN
            return Sql('(' + ' OR '.join(p.text for p in parts) + ')',
                       [a for p in parts for a in p.args], all(p.exact for p in parts))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.translate(node.operand)
            if not inner.exact:
                return UNKNOWN
            return Sql(f'(NOT {inner.text})', inner.args, True)
        if isinstance(node, ast.Compare):
            return self.translate_compare(node)
        ref = self.resolve(node)
        if ref is not None:
            return self.truth(ref)
        return UNKNOWN

    def translate_compare(self, node: ast.Compare) -> Sql:
        parts = []
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            parts.append(self.compare_pair(left, type(op), right))
            left = right
        known = [p for p in parts if p is not UNKNOWN]
        if not known:
            return UNKNOWN
        return Sql('(' + ' AND '.join(p.text for p in known) + ')',
                   [a for p in known for a in p.args],
                   all(p.exact for p in parts))

    def compare_pair(self, left, op, right) -> Sql:
        left_ref = self.resolve(left)
        right_ref = self.resolve(right)
        if left_ref is not None and right_ref is None:
            ok, c = self.constant(right)
            if not ok:
                return UNKNOWN
            if op in (ast.In, ast.NotIn):
                return self.ref_in_constant(left_ref, op, c)
            return self.compare(left_ref, op, c)
        if right_ref is not None and left_ref is None:
            ok, c = self.constant(left)
            if not ok:
                return UNKNOWN
            if op in (ast.In, ast.NotIn):
                return self.constant_in_ref(c, op, right_ref)
            return self.compare(right_ref, _FLIP[op], c)
        return UNKNOWN

    # -------------------------------------------------------------- primitives
    def compare(self, ref, op, c) -> Sql:
        if op in (ast.Is, ast.IsNot) and not (c is None or c is True or c is False):
            return UNKNOWN
        if not (_is_scalar(c) or isinstance(c, (_dt.date, _dt.timedelta))):
            return UNKNOWN
        if isinstance(ref, JsonRef):
            return self.json_compare(ref, op, c)
        if isinstance(ref, ColumnRef):
            return self.column_compare(ref, op, c)
        if isinstance(ref, SummaryRef):
            return self.summary_compare(ref, op, c)
        return UNKNOWN

    def json_compare(self, ref: JsonRef, op, c) -> Sql:
        if not ref.path:
            if op in (ast.Eq, ast.NotEq) and c == {} and isinstance(c, dict):
                truth = self.truth(ref)
                return truth if op is ast.NotEq else Sql(f'(NOT {truth.text})', truth.args)
            return UNKNOWN
        path = ref.json_path()
        if path is None:
            return UNKNOWN
        branches = []
        args: list = [path]
        for jtype, representative in _JSON_REPRESENTATIVES:
            sql = None
            if op in _SQL_OPS:
                if jtype in ('integer', 'real') and _is_number(c):
                    sql = f'(json_extract({ref.column}, ?) {_SQL_OPS[op]} ?)'
                    branch_args = [path, int(c) if isinstance(c, bool) else c]
                elif jtype == 'text' and isinstance(c, str):
                    sql = f'(json_extract({ref.column}, ?) {_SQL_OPS[op]} ?)'
                    branch_args = [path, c]
                elif jtype == 'object':
                    float_path = ref.json_path('$float')
                    if float_path is None:
                        return UNKNOWN
                    sql = (f"(CASE {_special_float(ref.column)} "
                           f"WHEN 'nan' THEN {_b(py_compare(op, math.nan, c))} "
                           f"WHEN 'inf' THEN {_b(py_compare(op, math.inf, c))} "
                           f"WHEN '-inf' THEN {_b(py_compare(op, -math.inf, c))} "
                           f"ELSE {_b(py_compare(op, {}, c))} END)")
                    branch_args = [path, float_path]
            if sql is None:
                branches.append(f"WHEN '{jtype}' THEN {_b(py_compare(op, representative, c))}")
            else:
                branches.append(f"WHEN '{jtype}' THEN {sql}")
                args += branch_args
        branches.append(f'ELSE {_b(py_compare(op, UNDEFINED, c))}')
        return Sql(f'(CASE json_type({ref.column}, ?) ' + ' '.join(branches) + ' END)', args)

    def column_compare(self, ref: ColumnRef, op, c) -> Sql:
        col = ref.column
        if ref.kind == 'archived':
            return Sql(f'(CASE WHEN COALESCE({col}, 0) != 0 THEN {_b(py_compare(op, True, c))} '
                       f'ELSE {_b(py_compare(op, False, c))} END)')
        if ref.kind == 'tags':
            if op in (ast.Eq, ast.NotEq, ast.Is, ast.IsNot) and _is_scalar(c):
                return Sql(_b(py_compare(op, [], c)))
            return UNKNOWN
        if ref.kind == 'datetime':
            null = _b(py_compare(op, None, c))
            if isinstance(c, _dt.datetime) and c.tzinfo is None and op in _SQL_OPS \
                    and op is not ast.NotEq:
                try:
                    ts = c.timestamp()
                except (OverflowError, ValueError, OSError):
                    return UNKNOWN
                # fromtimestamp() rounds to microseconds: widen by 2 us, then let the
                # evaluator decide the candidates exactly.
                if op is ast.Eq:
                    return Sql(f'({col} IS NOT NULL AND abs({col} - ?) < 2e-6)', [ts], False)
                bound = ts - 2e-6 if op in (ast.Gt, ast.GtE) else ts + 2e-6
                return Sql(f'({col} IS NOT NULL AND {col} {_SQL_OPS[op]} ?)', [bound], False)
            if isinstance(c, _dt.datetime) and c.tzinfo is None:
                return UNKNOWN
            other = _b(py_compare(op, _dt.datetime(2000, 1, 1), c))
            return Sql(f'(CASE WHEN {col} IS NULL THEN {null} ELSE {other} END)')
        null_value = ref.null_value
        null = _b(py_compare(op, null_value, c))
        representative: Any
        if ref.kind in ('text', 'metric'):
            same_type, representative = isinstance(c, str), ''
        else:
            same_type, representative = _is_number(c), 0
        if same_type and op in _SQL_OPS:
            value = int(c) if isinstance(c, bool) else c
            return Sql(f'(CASE WHEN {col} IS NULL THEN {null} '
                       f'ELSE ({col} {_SQL_OPS[op]} ?) END)', [value])
        if isinstance(c, float) and math.isnan(c) and ref.kind in ('real', 'int'):
            representative = 0.0
        other = _b(py_compare(op, representative, c))
        return Sql(f'(CASE WHEN {col} IS NULL THEN {null} ELSE {other} END)')

    def summary_compare(self, ref: SummaryRef, op, c) -> Sql:
        null_value = math.nan if ref.attribute in ('last', 'min', 'max') else None
        value_sql = f'(SELECT s2.{ref.attribute} FROM series s2 WHERE {ref.condition} LIMIT 1)'
        missing = _b(py_compare(op, UNDEFINED, c))
        null = _b(py_compare(op, null_value, c))
        if _is_number(c) and op in _SQL_OPS:
            other, other_args = f'({value_sql} {_SQL_OPS[op]} ?)', \
                ref.args + [int(c) if isinstance(c, bool) else c]
        else:
            other, other_args = _b(py_compare(op, 0.0, c)), []
        text = (f'(CASE WHEN NOT EXISTS (SELECT 1 FROM series s2 WHERE {ref.condition}) '
                f'THEN {missing} WHEN {value_sql} IS NULL THEN {null} ELSE {other} END)')
        return Sql(text, ref.args + ref.args + other_args)

    def ref_in_constant(self, ref, op, c) -> Sql:
        if not isinstance(c, (list, tuple, set, frozenset)) or len(c) > MAX_IN_LIST \
                or not all(_is_scalar(e) for e in c):
            return UNKNOWN
        if not c:
            return Sql(_b(op is ast.NotIn))
        fast = self.json_in(ref, c) if isinstance(ref, JsonRef) else \
            self.text_column_in(ref, c) if isinstance(ref, ColumnRef) and \
            ref.kind in ('text', 'metric') else None
        if fast is not None:
            return Sql(f'(NOT {fast.text})', fast.args) if op is ast.NotIn else fast
        parts = [self.compare(ref, ast.Eq, e) for e in c]
        if any(p is UNKNOWN for p in parts):
            return UNKNOWN
        text = '(' + ' OR '.join(p.text for p in parts) + ')'
        args = [a for p in parts for a in p.args]
        exact = all(p.exact for p in parts)
        if op is ast.NotIn:
            if not exact:
                return UNKNOWN
            return Sql(f'(NOT {text})', args)
        return Sql(text, args, exact)

    def json_in(self, ref: JsonRef, members) -> Sql | None:
        """`ref in [scalars]` as one IN per JSON type, each with the members of that type."""
        path = ref.json_path()
        float_path = ref.json_path('$float')
        if not ref.path or path is None or float_path is None:
            return None
        numbers = [int(e) if isinstance(e, bool) else e for e in members
                   if isinstance(e, (int, float)) and not (isinstance(e, float) and math.isnan(e))]
        texts = [e for e in members if isinstance(e, str)]
        args: list = [path]

        def member_of(values):
            if not values:
                return '0'
            args.append(path)
            args.extend(values)
            return (f'(json_extract({ref.column}, ?) IN '
                    f'({", ".join("?" * len(values))}))')

        number_sql = member_of(numbers)
        number_args = args[1:]
        del args[1:]
        branches = [f"WHEN 'integer' THEN {number_sql}", f"WHEN 'real' THEN {number_sql}"]
        args += number_args + number_args
        branches.append(f"WHEN 'text' THEN {member_of(texts)}")
        for jtype, representative in (('true', True), ('false', False), ('null', None),
                                      ('array', [])):
            member_test = _b(py_compare(ast.In, representative, members))
            branches.append(f"WHEN '{jtype}' THEN {member_test}")
        # a fresh NaN object: `in` tests identity before equality
        branches.append(f"WHEN 'object' THEN (CASE {_special_float(ref.column)} "
                        f"WHEN 'nan' THEN {_b(py_compare(ast.In, float('nan'), members))} "
                        f"WHEN 'inf' THEN {_b(py_compare(ast.In, math.inf, members))} "
                        f"WHEN '-inf' THEN {_b(py_compare(ast.In, -math.inf, members))} "
                        f"ELSE {_b(py_compare(ast.In, {}, members))} END)")
        args += [path, float_path]
        branches.append(f'ELSE {_b(py_compare(ast.In, UNDEFINED, members))}')
        return Sql(f'(CASE json_type({ref.column}, ?) ' + ' '.join(branches) + ' END)', args)

    def text_column_in(self, ref: ColumnRef, members) -> Sql:
        texts = [e for e in members if isinstance(e, str)]
        null = _b(py_compare(ast.In, None, members))
        found = f'{ref.column} IN ({", ".join("?" * len(texts))})' if texts else '0'
        return Sql(f'(CASE WHEN {ref.column} IS NULL THEN {null} ELSE ({found}) END)', texts)

    def constant_in_ref(self, c, op, ref) -> Sql:
        negate = op is ast.NotIn
        if not isinstance(c, str):
            return UNKNOWN
        if isinstance(ref, ColumnRef):
            col = ref.column
            if ref.kind == 'tags':
                sql = (f"EXISTS (SELECT 1 FROM json_each(COALESCE({col}, '[]')) "
                       f"WHERE type = 'text' AND value = ?)")
                return Sql(f'(NOT {sql})' if negate else f'({sql})', [c])
            if ref.kind in ('text', 'metric'):
                null = _b(py_compare(op, c, None))
                found = f"instr({col}, ?) {'=' if negate else '>'} 0"
                return Sql(f'(CASE WHEN {col} IS NULL THEN {null} ELSE ({found}) END)', [c])
            return UNKNOWN
        if isinstance(ref, JsonRef) and ref.path:
            path = ref.json_path()
            float_path = ref.json_path('$float')
            if path is None or float_path is None:
                return UNKNOWN
            neg = 'NOT ' if negate else ''
            branches = [
                f"WHEN 'text' THEN ({neg}instr(json_extract({ref.column}, ?), ?) > 0)",
                (f"WHEN 'array' THEN ({neg}EXISTS (SELECT 1 FROM json_each({ref.column}, ?) "
                 f"WHERE type = 'text' AND value = ?))"),
                (f"WHEN 'object' THEN (CASE WHEN {_special_float(ref.column)} "
                 f"IN ('nan', 'inf', '-inf') "
                 f"THEN {_b(py_compare(op, c, math.nan))} ELSE ({neg}EXISTS (SELECT 1 FROM "
                 f"json_each({ref.column}, ?) WHERE key = ?)) END)"),
            ]
            args = [path, path, c, path, c, path, float_path, path, c]
            for jtype, representative in _JSON_REPRESENTATIVES:
                if jtype not in ('text', 'array', 'object'):
                    branches.append(f"WHEN '{jtype}' THEN {_b(py_compare(op, c, representative))}")
            branches.append(f'ELSE {_b(py_compare(op, c, UNDEFINED))}')
            return Sql(f'(CASE json_type({ref.column}, ?) ' + ' '.join(branches) + ' END)',
                       args)
        return UNKNOWN

    def truth(self, ref) -> Sql:
        if isinstance(ref, JsonRef):
            if not ref.path:
                return Sql(f"((SELECT count(*) FROM "
                           f"json_each(COALESCE({ref.column}, '{{}}'))) > 0)")
            path = ref.json_path()
            if path is None:
                return UNKNOWN
            col = ref.column
            return Sql(f"(CASE json_type({col}, ?) "
                       f"WHEN 'integer' THEN json_extract({col}, ?) != 0 "
                       f"WHEN 'real' THEN json_extract({col}, ?) != 0 "
                       f"WHEN 'true' THEN 1 WHEN 'false' THEN 0 "
                       f"WHEN 'text' THEN json_extract({col}, ?) != '' "
                       f"WHEN 'null' THEN 0 "
                       f"WHEN 'array' THEN json_array_length({col}, ?) > 0 "
                       f"WHEN 'object' THEN json_extract({col}, ?) != '{{}}' ELSE 0 END)",
                       [path] * 6)
        if isinstance(ref, ColumnRef):
            col = ref.column
            if ref.kind == 'metric':
                return TRUE
            if ref.kind == 'archived':
                return Sql(f'(COALESCE({col}, 0) != 0)')
            if ref.kind == 'tags':
                return Sql(f"(json_array_length(COALESCE({col}, '[]')) > 0)")
            if ref.kind == 'text':
                return Sql(f"(COALESCE({col}, '') != '')")
            if ref.kind == 'datetime':
                return Sql(f'({col} IS NOT NULL)')
            null = _b(bool(ref.null_value) if ref.null_value is not None else False)
            return Sql(f'(CASE WHEN {col} IS NULL THEN {null} ELSE {col} != 0 END)')
        return UNKNOWN


def translate(tree: ast.AST, kind: str, constant) -> Sql:
    """The WHERE condition of a query. A query that reads params never matches a run whose
    params text is not valid JSON (damage): SQLite's JSON functions would fail the whole
    statement on it, and the Python evaluator could not read it either."""
    node = tree.body if isinstance(tree, ast.Expression) else tree
    translator = Translator(kind, constant)
    sql = translator.translate(node)
    if reads_params(translator, node):
        # CASE evaluates its branch only when the test holds (AND may run either side)
        sql = Sql(f'(CASE WHEN json_valid(r.params) THEN {sql.text} ELSE 0 END)', sql.args,
                  sql.exact)
    return sql


def reads_params(translator: Translator, node: ast.AST) -> bool:
    """Whether the query may read the params of `run` (anything but its props)."""
    props = {id(n.value) for n in ast.walk(node)
             if isinstance(n, ast.Attribute) and n.attr in RUN_PROPS
             and translator.is_run(n.value)}
    return any(translator.is_run(n) and id(n) not in props for n in ast.walk(node))
