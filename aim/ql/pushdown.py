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


class SqliteDialect:
    """SQLite's JSON1 functions over the JSON text columns. Each method returns SQL whose
    placeholders take, in order, the value's path (``path()``) then what the name says."""
    name = 'sqlite'
    true, false = '1', '0'

    def b(self, value: bool) -> str:
        return self.true if value else self.false

    def column(self, column: str) -> str:
        return column

    def path(self, keys: list) -> str | None:
        out = '$'
        for part in keys:
            if '"' in part or '\\' in part:
                return None
            out += '."' + part + '"'
        return out

    def jtype(self, col: str) -> str:
        """SQLite's type words: integer real true false text null array object."""
        return f'json_type({col}, ?)'

    def jnum(self, col: str) -> str:
        return f'json_extract({col}, ?)'

    def jtext(self, col: str) -> str:
        return f'json_extract({col}, ?)'

    def jobject_not_empty(self, col: str) -> str:
        return f"json_extract({col}, ?) != '{{}}'"

    def key_count(self, col: str) -> str:
        return f'(SELECT count(*) FROM json_each({col}, ?))'

    def root_key_count(self, col: str) -> str:
        return f"(SELECT count(*) FROM json_each(COALESCE({col}, '{{}}')))"

    def array_has_text(self, col: str) -> str:
        """Path, then the text."""
        return f"EXISTS (SELECT 1 FROM json_each({col}, ?) WHERE type = 'text' AND value = ?)"

    def object_has_key(self, col: str) -> str:
        """Path, then the key."""
        return f'EXISTS (SELECT 1 FROM json_each({col}, ?) WHERE key = ?)'

    def array_length(self, col: str) -> str:
        return f'json_array_length({col}, ?)'

    def contains(self, col: str) -> str:
        """The text argument occurs in ``col`` (a text column or expression)."""
        return f'instr({col}, ?) > 0'

    def tags_have(self, col: str) -> str:
        return (f"EXISTS (SELECT 1 FROM json_each(COALESCE({col}, '[]')) "
                f"WHERE type = 'text' AND value = ?)")

    def tags_length(self, col: str) -> str:
        return f"json_array_length(COALESCE({col}, '[]'))"

    def params_guard(self, text: str) -> str:
        # CASE evaluates its branch only when the test holds (AND may run either side)
        return f'(CASE WHEN json_valid(r.params) THEN {text} ELSE 0 END)'


class PostgresDialect(SqliteDialect):
    """PostgreSQL's JSONB operators: ``r.params`` is JSONB, contexts are JSON text (cast);
    a path is a text[] argument, and ``aim_jtype`` (aim/storage/postgres.py) gives the
    type words SQLite's json_type gives."""
    name = 'postgresql'
    true, false = 'TRUE', 'FALSE'

    def column(self, column: str) -> str:
        if column.endswith('params'):
            return column + '_jsonb'     # generated from the params text (postgres.py)
        return f'({column})::jsonb'

    def path(self, keys: list) -> list | None:  # type: ignore[override]
        return list(keys)

    def jtype(self, col: str) -> str:
        return f'aim_jtype({self.column(col)} #> ?)'

    def jnum(self, col: str) -> str:
        return f'({self.column(col)} #>> ?)::numeric'

    def jtext(self, col: str) -> str:
        return f'({self.column(col)} #>> ?)'

    def jobject_not_empty(self, col: str) -> str:
        return f"({self.column(col)} #> ?) != '{{}}'::jsonb"

    def key_count(self, col: str) -> str:
        return f'(SELECT count(*) FROM jsonb_object_keys({self.column(col)} #> ?))'

    def root_key_count(self, col: str) -> str:
        return (f"(SELECT count(*) FROM jsonb_object_keys("
                f"{self.column(f'COALESCE({col}, {chr(39)}{{}}{chr(39)})')}))")

    def array_has_text(self, col: str) -> str:
        return (f"EXISTS (SELECT 1 FROM jsonb_array_elements({self.column(col)} #> ?) e "
                f"WHERE jsonb_typeof(e) = 'string' AND e #>> '{{}}' = ?)")

    def object_has_key(self, col: str) -> str:
        return f'jsonb_exists({self.column(col)} #> ?, ?)'

    def array_length(self, col: str) -> str:
        return f'jsonb_array_length({self.column(col)} #> ?)'

    def contains(self, col: str) -> str:
        return f'strpos({col}, ?) > 0'

    def tags_have(self, col: str) -> str:
        return (f"EXISTS (SELECT 1 FROM jsonb_array_elements(COALESCE({col}, '[]')::jsonb) e "
                f"WHERE jsonb_typeof(e) = 'string' AND e #>> '{{}}' = ?)")

    def tags_length(self, col: str) -> str:
        return f"jsonb_array_length(COALESCE({col}, '[]')::jsonb)"

    def params_guard(self, text: str) -> str:
        return text        # JSONB: always valid


SQLITE = SqliteDialect()
POSTGRES = PostgresDialect()
DIALECTS = {'sqlite': SQLITE, 'postgresql': POSTGRES}


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
    def __init__(self, kind: str, constant, dialect: SqliteDialect = SQLITE):
        self.kind = kind            # 'run' or 'trace'
        self.constant = constant    # node -> (True, value) | (False, None)
        self.d = dialect
        self.TRUE = Sql(dialect.true, [], True)
        self.FALSE = Sql(dialect.false, [], True)
        self.UNKNOWN = Sql(dialect.true, [], False)

    def path(self, ref: JsonRef, extra: str | None = None):
        """The dialect's form of ``ref``'s path (plus ``extra``), or None if it has none."""
        return self.d.path(ref.path + ([extra] if extra is not None else []))

    def special_float(self, col: str) -> str:
        """SQL giving the "$float" word of a one-key object (else NULL); two arguments: the
        value's path and the path of its "$float" key. The decoder turns exactly the one-key
        objects holding 'nan', 'inf' or '-inf' into floats."""
        return f'(CASE WHEN {self.d.key_count(col)} = 1 THEN {self.d.jtext(col)} END)'

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
        conditions.append(f"{self.d.root_key_count('s2.context')} = ?")
        args.append(len(context))
        for k, v in context.items():
            path = self.path(JsonRef('s2.context', [k])) if isinstance(k, str) else None
            if path is None:
                return None
            if isinstance(v, bool):
                conditions.append(f"{self.d.jtype('s2.context')} = ?")
                args += [path, 'true' if v else 'false']
            elif v is None:
                conditions.append(f"{self.d.jtype('s2.context')} = 'null'")
                args.append(path)
            elif isinstance(v, (int, str)) or (isinstance(v, float) and math.isfinite(v)):
                jtype = 'text' if isinstance(v, str) else \
                    ('integer' if isinstance(v, int) else 'real')
                value_sql = self.d.jtext('s2.context') if isinstance(v, str) else \
                    self.d.jnum('s2.context')
                # (CASE: PostgreSQL may evaluate either side of an AND first)
                conditions.append(f"(CASE WHEN {self.d.jtype('s2.context')} = ? "
                                  f"THEN {value_sql} = ? ELSE {self.d.false} END)")
                args += [path, jtype, path, v]
            else:
                return None
        return SummaryRef(' AND '.join(conditions), args, attribute)

    # -------------------------------------------------------------- translate
    def translate(self, node) -> Sql:
        ok, value = self.constant(node)
        if ok:
            from aim.ql.evaluate import truth
            return self.TRUE if truth(value) else self.FALSE
        if isinstance(node, ast.BoolOp):
            parts = [self.translate(v) for v in node.values]
            if isinstance(node.op, ast.And):
                known = [p for p in parts if p is not self.UNKNOWN and p.text != self.d.true]
                if any(p.text == self.d.false and p.exact for p in parts):
                    return self.FALSE
                exact = all(p.exact for p in parts)
                if not known:
                    return self.TRUE if exact else self.UNKNOWN
                return Sql('(' + ' AND '.join(p.text for p in known) + ')',
                           [a for p in known for a in p.args], exact)
            if any(p is self.UNKNOWN for p in parts):
                return self.UNKNOWN
            return Sql('(' + ' OR '.join(p.text for p in parts) + ')',
                       [a for p in parts for a in p.args], all(p.exact for p in parts))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.translate(node.operand)
            if not inner.exact:
                return self.UNKNOWN
            return Sql(f'(NOT {inner.text})', inner.args, True)
        if isinstance(node, ast.Compare):
            return self.translate_compare(node)
        ref = self.resolve(node)
        if ref is not None:
            return self.truth(ref)
        return self.UNKNOWN

    def translate_compare(self, node: ast.Compare) -> Sql:
        parts = []
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            parts.append(self.compare_pair(left, type(op), right))
            left = right
        known = [p for p in parts if p is not self.UNKNOWN]
        if not known:
            return self.UNKNOWN
        return Sql('(' + ' AND '.join(p.text for p in known) + ')',
                   [a for p in known for a in p.args],
                   all(p.exact for p in parts))

    def compare_pair(self, left, op, right) -> Sql:
        left_ref = self.resolve(left)
        right_ref = self.resolve(right)
        if left_ref is not None and right_ref is None:
            ok, c = self.constant(right)
            if not ok:
                return self.UNKNOWN
            if op in (ast.In, ast.NotIn):
                return self.ref_in_constant(left_ref, op, c)
            return self.compare(left_ref, op, c)
        if right_ref is not None and left_ref is None:
            ok, c = self.constant(left)
            if not ok:
                return self.UNKNOWN
            if op in (ast.In, ast.NotIn):
                return self.constant_in_ref(c, op, right_ref)
            return self.compare(right_ref, _FLIP[op], c)
        return self.UNKNOWN

    # -------------------------------------------------------------- primitives
    def compare(self, ref, op, c) -> Sql:
        if op in (ast.Is, ast.IsNot) and not (c is None or c is True or c is False):
            return self.UNKNOWN
        if not (_is_scalar(c) or isinstance(c, (_dt.date, _dt.timedelta))):
            return self.UNKNOWN
        if isinstance(ref, JsonRef):
            return self.json_compare(ref, op, c)
        if isinstance(ref, ColumnRef):
            return self.column_compare(ref, op, c)
        if isinstance(ref, SummaryRef):
            return self.summary_compare(ref, op, c)
        return self.UNKNOWN

    def json_compare(self, ref: JsonRef, op, c) -> Sql:
        if not ref.path:
            if op in (ast.Eq, ast.NotEq) and c == {} and isinstance(c, dict):
                truth = self.truth(ref)
                return truth if op is ast.NotEq else Sql(f'(NOT {truth.text})', truth.args)
            return self.UNKNOWN
        path = self.path(ref)
        if path is None:
            return self.UNKNOWN
        branches = []
        args: list = [path]
        for jtype, representative in _JSON_REPRESENTATIVES:
            sql = None
            if op in _SQL_OPS:
                if jtype in ('integer', 'real') and _is_number(c):
                    sql = f'({self.d.jnum(ref.column)} {_SQL_OPS[op]} ?)'
                    branch_args = [path, int(c) if isinstance(c, bool) else c]
                elif jtype == 'text' and isinstance(c, str):
                    sql = f'({self.d.jtext(ref.column)} {_SQL_OPS[op]} ?)'
                    branch_args = [path, c]
                elif jtype == 'object':
                    float_path = self.path(ref, '$float')
                    if float_path is None:
                        return self.UNKNOWN
                    sql = (f"(CASE {self.special_float(ref.column)} "
                           f"WHEN 'nan' THEN {self.d.b(py_compare(op, math.nan, c))} "
                           f"WHEN 'inf' THEN {self.d.b(py_compare(op, math.inf, c))} "
                           f"WHEN '-inf' THEN {self.d.b(py_compare(op, -math.inf, c))} "
                           f"ELSE {self.d.b(py_compare(op, {}, c))} END)")
                    branch_args = [path, float_path]
            if sql is None:
                verdict = self.d.b(py_compare(op, representative, c))
                branches.append(f"WHEN '{jtype}' THEN {verdict}")
            else:
                branches.append(f"WHEN '{jtype}' THEN {sql}")
                args += branch_args
        branches.append(f'ELSE {self.d.b(py_compare(op, UNDEFINED, c))}')
        return Sql(f'(CASE {self.d.jtype(ref.column)} ' + ' '.join(branches) + ' END)', args)

    def column_compare(self, ref: ColumnRef, op, c) -> Sql:
        col = ref.column
        if ref.kind == 'archived':
            yes, no = self.d.b(py_compare(op, True, c)), self.d.b(py_compare(op, False, c))
            return Sql(f'(CASE WHEN COALESCE({col}, 0) != 0 THEN {yes} ELSE {no} END)')
        if ref.kind == 'tags':
            if op in (ast.Eq, ast.NotEq, ast.Is, ast.IsNot) and _is_scalar(c):
                return Sql(self.d.b(py_compare(op, [], c)))
            return self.UNKNOWN
        if ref.kind == 'datetime':
            null = self.d.b(py_compare(op, None, c))
            if isinstance(c, _dt.datetime) and c.tzinfo is None and op in _SQL_OPS \
                    and op is not ast.NotEq:
                try:
                    ts = c.timestamp()
                except (OverflowError, ValueError, OSError):
                    return self.UNKNOWN
                # fromtimestamp() rounds to microseconds: widen by 2 us, then let the
                # evaluator decide the candidates exactly.
                if op is ast.Eq:
                    return Sql(f'({col} IS NOT NULL AND abs({col} - ?) < 2e-6)', [ts], False)
                bound = ts - 2e-6 if op in (ast.Gt, ast.GtE) else ts + 2e-6
                return Sql(f'({col} IS NOT NULL AND {col} {_SQL_OPS[op]} ?)', [bound], False)
            if isinstance(c, _dt.datetime) and c.tzinfo is None:
                return self.UNKNOWN
            other = self.d.b(py_compare(op, _dt.datetime(2000, 1, 1), c))
            return Sql(f'(CASE WHEN {col} IS NULL THEN {null} ELSE {other} END)')
        null_value = ref.null_value
        null = self.d.b(py_compare(op, null_value, c))
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
        other = self.d.b(py_compare(op, representative, c))
        return Sql(f'(CASE WHEN {col} IS NULL THEN {null} ELSE {other} END)')

    def summary_compare(self, ref: SummaryRef, op, c) -> Sql:
        null_value = math.nan if ref.attribute in ('last', 'min', 'max') else None
        value_sql = f'(SELECT s2.{ref.attribute} FROM series s2 WHERE {ref.condition} LIMIT 1)'
        missing = self.d.b(py_compare(op, UNDEFINED, c))
        null = self.d.b(py_compare(op, null_value, c))
        if _is_number(c) and op in _SQL_OPS:
            other, other_args = f'({value_sql} {_SQL_OPS[op]} ?)', \
                ref.args + [int(c) if isinstance(c, bool) else c]
        else:
            other, other_args = self.d.b(py_compare(op, 0.0, c)), []
        text = (f'(CASE WHEN NOT EXISTS (SELECT 1 FROM series s2 WHERE {ref.condition}) '
                f'THEN {missing} WHEN {value_sql} IS NULL THEN {null} ELSE {other} END)')
        return Sql(text, ref.args + ref.args + other_args)

    def ref_in_constant(self, ref, op, c) -> Sql:
        if not isinstance(c, (list, tuple, set, frozenset)) or len(c) > MAX_IN_LIST \
                or not all(_is_scalar(e) for e in c):
            return self.UNKNOWN
        if not c:
            return Sql(self.d.b(op is ast.NotIn))
        fast = self.json_in(ref, c) if isinstance(ref, JsonRef) else \
            self.text_column_in(ref, c) if isinstance(ref, ColumnRef) and \
            ref.kind in ('text', 'metric') else None
        if fast is not None:
            return Sql(f'(NOT {fast.text})', fast.args) if op is ast.NotIn else fast
        parts = [self.compare(ref, ast.Eq, e) for e in c]
        if any(p is self.UNKNOWN for p in parts):
            return self.UNKNOWN
        text = '(' + ' OR '.join(p.text for p in parts) + ')'
        args = [a for p in parts for a in p.args]
        exact = all(p.exact for p in parts)
        if op is ast.NotIn:
            if not exact:
                return self.UNKNOWN
            return Sql(f'(NOT {text})', args)
        return Sql(text, args, exact)

    def json_in(self, ref: JsonRef, members) -> Sql | None:
        """`ref in [scalars]` as one IN per JSON type, each with the members of that type."""
        path = self.path(ref)
        float_path = self.path(ref, '$float')
        if not ref.path or path is None or float_path is None:
            return None
        numbers = [int(e) if isinstance(e, bool) else e for e in members
                   if isinstance(e, (int, float)) and not (isinstance(e, float) and math.isnan(e))]
        texts = [e for e in members if isinstance(e, str)]
        args: list = [path]

        def member_of(values):
            if not values:
                return self.d.false
            args.append(path)
            args.extend(values)
            value_sql = self.d.jtext(ref.column) if isinstance(values[0], str) else \
                self.d.jnum(ref.column)
            return f'({value_sql} IN ({", ".join("?" * len(values))}))'

        number_sql = member_of(numbers)
        number_args = args[1:]
        del args[1:]
        branches = [f"WHEN 'integer' THEN {number_sql}", f"WHEN 'real' THEN {number_sql}"]
        args += number_args + number_args
        branches.append(f"WHEN 'text' THEN {member_of(texts)}")
        for jtype, representative in (('true', True), ('false', False), ('null', None),
                                      ('array', [])):
            member_test = self.d.b(py_compare(ast.In, representative, members))
            branches.append(f"WHEN '{jtype}' THEN {member_test}")
        # a fresh NaN object: `in` tests identity before equality
        branches.append(f"WHEN 'object' THEN (CASE {self.special_float(ref.column)} "
                        f"WHEN 'nan' THEN {self.d.b(py_compare(ast.In, float('nan'), members))} "
                        f"WHEN 'inf' THEN {self.d.b(py_compare(ast.In, math.inf, members))} "
                        f"WHEN '-inf' THEN {self.d.b(py_compare(ast.In, -math.inf, members))} "
                        f"ELSE {self.d.b(py_compare(ast.In, {}, members))} END)")
        args += [path, float_path]
        branches.append(f'ELSE {self.d.b(py_compare(ast.In, UNDEFINED, members))}')
        return Sql(f'(CASE {self.d.jtype(ref.column)} ' + ' '.join(branches) + ' END)', args)

    def text_column_in(self, ref: ColumnRef, members) -> Sql:
        texts = [e for e in members if isinstance(e, str)]
        null = self.d.b(py_compare(ast.In, None, members))
        found = f'{ref.column} IN ({", ".join("?" * len(texts))})' if texts else self.d.false
        return Sql(f'(CASE WHEN {ref.column} IS NULL THEN {null} ELSE ({found}) END)', texts)

    def constant_in_ref(self, c, op, ref) -> Sql:
        negate = op is ast.NotIn
        if not isinstance(c, str):
            return self.UNKNOWN
        if isinstance(ref, ColumnRef):
            col = ref.column
            if ref.kind == 'tags':
                sql = self.d.tags_have(col)
                return Sql(f'(NOT {sql})' if negate else f'({sql})', [c])
            if ref.kind in ('text', 'metric'):
                null = self.d.b(py_compare(op, c, None))
                found = f"{'NOT ' if negate else ''}{self.d.contains(col)}"
                return Sql(f'(CASE WHEN {col} IS NULL THEN {null} ELSE ({found}) END)', [c])
            return self.UNKNOWN
        if isinstance(ref, JsonRef) and ref.path:
            path = self.path(ref)
            float_path = self.path(ref, '$float')
            if path is None or float_path is None:
                return self.UNKNOWN
            neg = 'NOT ' if negate else ''
            branches = [
                f"WHEN 'text' THEN ({neg}{self.d.contains(self.d.jtext(ref.column))})",
                f"WHEN 'array' THEN ({neg}{self.d.array_has_text(ref.column)})",
                (f"WHEN 'object' THEN (CASE WHEN {self.special_float(ref.column)} "
                 f"IN ('nan', 'inf', '-inf') "
                 f"THEN {self.d.b(py_compare(op, c, math.nan))} "
                 f"ELSE ({neg}{self.d.object_has_key(ref.column)}) END)"),
            ]
            args = [path, path, c, path, c, path, float_path, path, c]
            for jtype, representative in _JSON_REPRESENTATIVES:
                if jtype not in ('text', 'array', 'object'):
                    truth = self.d.b(py_compare(op, c, representative))
                    branches.append(f"WHEN '{jtype}' THEN {truth}")
            branches.append(f'ELSE {self.d.b(py_compare(op, c, UNDEFINED))}')
            return Sql(f'(CASE {self.d.jtype(ref.column)} ' + ' '.join(branches) + ' END)',
                       args)
        return self.UNKNOWN

    def truth(self, ref) -> Sql:
        if isinstance(ref, JsonRef):
            if not ref.path:
                return Sql(f'({self.d.root_key_count(ref.column)} > 0)')
            path = self.path(ref)
            if path is None:
                return self.UNKNOWN
            col, d = ref.column, self.d
            return Sql(f"(CASE {d.jtype(col)} "
                       f"WHEN 'integer' THEN {d.jnum(col)} != 0 "
                       f"WHEN 'real' THEN {d.jnum(col)} != 0 "
                       f"WHEN 'true' THEN {d.true} WHEN 'false' THEN {d.false} "
                       f"WHEN 'text' THEN {d.jtext(col)} != '' "
                       f"WHEN 'null' THEN {d.false} "
                       f"WHEN 'array' THEN {d.array_length(col)} > 0 "
                       f"WHEN 'object' THEN {d.jobject_not_empty(col)} ELSE {d.false} END)",
                       [path] * 6)
        if isinstance(ref, ColumnRef):
            col = ref.column
            if ref.kind == 'metric':
                return self.TRUE
            if ref.kind == 'archived':
                return Sql(f'(COALESCE({col}, 0) != 0)')
            if ref.kind == 'tags':
                return Sql(f'({self.d.tags_length(col)} > 0)')
            if ref.kind == 'text':
                return Sql(f"(COALESCE({col}, '') != '')")
            if ref.kind == 'datetime':
                return Sql(f'({col} IS NOT NULL)')
            null = self.d.b(bool(ref.null_value) if ref.null_value is not None else False)
            return Sql(f'(CASE WHEN {col} IS NULL THEN {null} ELSE {col} != 0 END)')
        return self.UNKNOWN


def translate(tree: ast.AST, kind: str, constant, dialect: str = 'sqlite') -> Sql:
    """The WHERE condition of a query, in ``dialect`` ('sqlite' or 'postgresql'). On SQLite
    a query that reads params never matches a run whose params text is not valid JSON
    (damage): SQLite's JSON functions would fail the whole statement on it, and the Python
    evaluator could not read it either."""
    node = tree.body if isinstance(tree, ast.Expression) else tree
    d = DIALECTS[dialect]
    translator = Translator(kind, constant, d)
    sql = translator.translate(node)
    if reads_params(translator, node):
        sql = Sql(d.params_guard(sql.text), sql.args, sql.exact)
    return sql


def reads_params(translator: Translator, node: ast.AST) -> bool:
    """Whether the query may read the params of `run` (anything but its props)."""
    props = {id(n.value) for n in ast.walk(node)
             if isinstance(n, ast.Attribute) and n.attr in RUN_PROPS
             and translator.is_run(n.value)}
    return any(translator.is_run(n) and id(n) not in props for n in ast.walk(node))
