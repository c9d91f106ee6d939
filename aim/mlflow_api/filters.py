"""MLflow's search syntax: ``filter`` strings and ``order_by`` clauses, parsed and applied.

A filter is clauses joined by ``AND``: ``metrics.loss < 0.5 AND params.optimizer = 'adam'
AND tags."my tag" LIKE 'x%' AND attributes.status IN ('FINISHED', 'FAILED')``. Keys may be
quoted with backticks or double quotes. A run without the metric, param or tag a clause
names does not match it (``!=`` included), as in MLflow.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from aim.mlflow_api.errors import invalid

ENTITY_ALIASES = {
    'metric': 'metrics', 'metrics': 'metrics',
    'param': 'params', 'params': 'params', 'parameter': 'params', 'parameters': 'params',
    'tag': 'tags', 'tags': 'tags',
    'attribute': 'attributes', 'attributes': 'attributes', 'attr': 'attributes',
    'run': 'attributes',
    'dataset': 'datasets', 'datasets': 'datasets',
}
STRING_ATTRIBUTES = ('run_id', 'run_name', 'status', 'user_id', 'artifact_uri',
                     'lifecycle_stage')
NUMERIC_ATTRIBUTES = ('start_time', 'end_time')
ATTRIBUTE_ALIASES = {'created': 'start_time', 'Created': 'start_time', 'run name': 'run_name',
                     'Run name': 'run_name', 'Run Name': 'run_name'}
NUMERIC_OPS = ('=', '!=', '>', '>=', '<', '<=')
STRING_OPS = ('=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN')

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<backtick>`[^`]*`)
  | (?P<op>!=|<>|>=|<=|=|>|<)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<dot>\.)
  | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*)
""", re.VERBOSE)


@dataclass
class Clause:
    entity: str            # metrics | params | tags | attributes | datasets
    key: str
    op: str                # = != > >= < <= LIKE ILIKE IN NOT IN IS NULL, IS NOT NULL
    value: Any


@dataclass
class OrderKey:
    entity: str
    key: str
    ascending: bool


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise invalid(f"Invalid filter {text!r}: unexpected character {text[pos]!r} at "
                          f"position {pos}.")
        pos = m.end()
        kind = m.lastgroup or ''
        if kind != 'space':
            out.append((kind, m.group()))
    return out


def _unquote(token: str) -> str:
    if token[0] == "'":
        return token[1:-1].replace("''", "'").replace("\\'", "'")
    if token[0] == '"':
        return token[1:-1].replace('\\"', '"')
    return token[1:-1]   # backticks


class _Parser:
    def __init__(self, text: str, what: str = 'filter'):
        self.text = text
        self.what = what
        self.toks = _tokens(text)
        self.i = 0

    def fail(self, why: str):
        return invalid(f'Invalid {self.what} {self.text!r}: {why}. MLflow filters look like '
                       f"metrics.loss < 0.5 AND params.optimizer = 'adam'.")

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ('end', '')

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def identifier(self) -> tuple[str, str]:
        kind, text = self.take()
        if kind == 'string' and text[0] == '"' or kind == 'backtick':
            # a bare quoted key: an attribute (MLflow's UI writes `Run Name`)
            return 'attributes', _unquote(text)
        if kind != 'word':
            raise self.fail(f'expected an identifier such as metrics.loss, got '
                            f'{text or "the end"!r}')
        if self.peek()[0] != 'dot':
            return 'attributes', text   # a bare attribute name (run_name, status, ...)
        entity = ENTITY_ALIASES.get(text.lower())
        if entity is None:
            raise self.fail(f'{text!r} is not one of metrics, params, tags, attributes, '
                            f'datasets')
        self.take()
        parts: list[str] = []
        while True:
            kind, tok = self.take()
            if kind in ('backtick', 'string') and not parts:
                parts.append(_unquote(tok))
                break
            if kind not in ('word', 'number'):
                raise self.fail(f'expected a key after {text}.')
            parts.append(tok)
            if self.peek()[0] == 'dot':
                self.take()
                parts.append('.')
                continue
            break
        return entity, ''.join(parts)

    def value(self):
        kind, tok = self.take()
        if kind == 'string':
            return _unquote(tok)
        if kind == 'number':
            return float(tok)
        raise self.fail(f'expected a quoted string or a number, got {tok or "the end"!r}')


def _and_joined(text: str | None, clause) -> list[Clause]:
    """Clauses read by ``clause(parser)``, joined by AND (MLflow's search has no OR)."""
    if not text or not text.strip():
        return []
    p = _Parser(text)
    clauses: list[Clause] = []
    while True:
        clauses.append(clause(p))
        kind, tok = p.take()
        if kind == 'end':
            return clauses
        if not (kind == 'word' and tok.upper() == 'AND'):
            raise p.fail(f'clauses are joined by AND; got {tok!r}'
                         + (' (OR is not supported by MLflow search)' if tok.upper() == 'OR'
                            else ''))


def parse_filter(text: str | None) -> list[Clause]:
    return _and_joined(text, _run_clause)


def _run_clause(p: _Parser) -> Clause:
    entity, key = p.identifier()
    kind, tok = p.take()
    upper = tok.upper()
    if kind == 'op':
        op = '!=' if tok == '<>' else tok
        value = p.value()
    elif kind == 'word' and upper in ('LIKE', 'ILIKE'):
        op, value = upper, p.value()
    elif kind == 'word' and upper == 'NOT' and p.peek()[1].upper() in ('IN', 'LIKE', 'ILIKE'):
        word = p.take()[1].upper()
        if word != 'IN':
            raise p.fail(f'NOT {word} is not supported; use !=')
        op, value = 'NOT IN', _value_list(p)
    elif kind == 'word' and upper == 'IN':
        op, value = 'IN', _value_list(p)
    elif kind == 'word' and upper == 'IS':
        negate = p.peek()[1].upper() == 'NOT'
        if negate:
            p.take()
        if p.take()[1].upper() != 'NULL':
            raise p.fail('IS must be followed by NULL or NOT NULL')
        op, value = ('IS NOT NULL' if negate else 'IS NULL'), None
    else:
        raise p.fail(f'expected a comparison after {entity}.{key}, got {tok or "the end"!r}')
    return _checked(p, Clause(entity, key, op, value))


def _value_list(p: _Parser) -> list:
    if p.take()[0] != 'lparen':
        raise p.fail('IN takes a parenthesised list of values')
    values = [p.value()]
    while True:
        kind, tok = p.take()
        if kind == 'rparen':
            return values
        if kind != 'comma':
            raise p.fail(f'expected , or ) in a list of values, got {tok!r}')
        values.append(p.value())


def _checked(p: _Parser, c: Clause) -> Clause:
    if c.entity == 'attributes':
        c.key = ATTRIBUTE_ALIASES.get(c.key, c.key)
        if c.key == 'run_uuid':
            c.key = 'run_id'
        if c.key not in STRING_ATTRIBUTES + NUMERIC_ATTRIBUTES:
            raise p.fail(f'{c.key!r} is not a searchable attribute (one of '
                         f'{", ".join(STRING_ATTRIBUTES + NUMERIC_ATTRIBUTES)})')
        numeric = c.key in NUMERIC_ATTRIBUTES
    elif c.entity == 'datasets':
        if c.key not in ('name', 'digest', 'context'):
            raise p.fail('datasets are searched by name, digest or context')
        numeric = False
    else:
        numeric = c.entity == 'metrics'
    if c.op in ('IS NULL', 'IS NOT NULL'):
        if c.entity not in ('params', 'tags', 'metrics'):
            raise p.fail(f'IS NULL is for metrics, params and tags, not {c.entity}')
        return c
    allowed = NUMERIC_OPS if numeric else STRING_OPS
    if c.key == 'run_id' and c.op not in ('=', '!=', 'IN', 'NOT IN'):
        raise p.fail('run_id is compared with =, !=, IN or NOT IN')
    if c.op not in allowed:
        raise p.fail(f'{c.op} does not apply to {c.entity}.{c.key} (use one of '
                     f'{", ".join(allowed)})')
    values = c.value if isinstance(c.value, list) else [c.value]
    if numeric and not all(isinstance(v, float) for v in values):
        raise p.fail(f'{c.entity}.{c.key} is compared with a number, got {c.value!r}')
    if not numeric and not all(isinstance(v, str) for v in values):
        raise p.fail(f'{c.entity}.{c.key} is compared with a quoted string, got {c.value!r}')
    if c.op in ('LIKE', 'ILIKE'):
        c.value = _like_regex(c.value, c.op == 'ILIKE')
    return c


def _like_regex(pattern: str, fold: bool) -> re.Pattern:
    out = []
    for ch in pattern:
        out.append('.*' if ch == '%' else '.' if ch == '_' else re.escape(ch))
    return re.compile(''.join(out), re.DOTALL | (re.IGNORECASE if fold else 0))


def matches(clause: Clause, actual: Any) -> bool:
    """Whether ``actual`` (None: the run lacks it) satisfies ``clause``."""
    op = clause.op
    if op == 'IS NULL':
        return actual is None
    if op == 'IS NOT NULL':
        return actual is not None
    if actual is None:
        return False
    want = clause.value
    if op == '=':
        return bool(actual == want)
    if op == '!=':
        return bool(actual != want)
    if op == 'IN':
        return actual in want
    if op == 'NOT IN':
        return actual not in want
    if op in ('LIKE', 'ILIKE'):
        return want.fullmatch(actual) is not None
    if isinstance(actual, float) and math.isnan(actual):
        return False
    if op == '>':
        return bool(actual > want)
    if op == '>=':
        return bool(actual >= want)
    if op == '<':
        return bool(actual < want)
    return bool(actual <= want)


def parse_order_by(items: list[str] | None) -> list[OrderKey]:
    out = []
    for item in items or []:
        if not isinstance(item, str) or not item.strip():
            raise invalid(f'Invalid order_by clause {item!r}: write e.g. "metrics.loss ASC".')
        p = _Parser(item, 'order_by clause')
        entity, key = p.identifier()
        ascending = True
        kind, tok = p.take()
        if kind == 'word' and tok.upper() in ('ASC', 'DESC'):
            ascending = tok.upper() == 'ASC'
            kind, tok = p.take()
        if kind != 'end':
            raise p.fail(f'unexpected {tok!r} (an order_by clause is a key and ASC or DESC)')
        if entity == 'attributes':
            key = ATTRIBUTE_ALIASES.get(key, key)
            if key == 'run_uuid':
                key = 'run_id'
            if key not in STRING_ATTRIBUTES + NUMERIC_ATTRIBUTES:
                raise p.fail(f'{key!r} is not an attribute runs can be ordered by')
        elif entity == 'datasets':
            raise p.fail('runs cannot be ordered by datasets')
        out.append(OrderKey(entity, key, ascending))
    return out


EXPERIMENT_ATTRIBUTES = {'name': False, 'creation_time': True, 'last_update_time': True}
MODEL_ATTRIBUTES = {'name': False, 'model_id': False, 'source_run_id': False,
                    'model_type': False, 'status': False, 'creation_timestamp_ms': True,
                    'creation_time': True, 'last_updated_timestamp_ms': True}


def parse_experiment_filter(text: str | None,
                            attributes: dict[str, bool] = EXPERIMENT_ATTRIBUTES
                            ) -> list[Clause]:
    """``name LIKE 'x%' AND tags.team = 'a'``: ``attributes`` (name -> numeric) and
    tags; for experiments and logged models."""
    return _and_joined(text, lambda p: _attribute_clause(p, attributes))


def _attribute_clause(p: _Parser, attributes: dict[str, bool]) -> Clause:
    entity, key = p.identifier()
    kind, tok = p.take()
    upper = tok.upper()
    if kind == 'op':
        op = '!=' if tok == '<>' else tok
    elif kind == 'word' and upper in ('LIKE', 'ILIKE'):
        op = upper
    else:
        raise p.fail(f'expected a comparison after {key}, got {tok or "the end"!r}')
    value = p.value()
    if entity == 'attributes':
        if key not in attributes:
            raise p.fail(f'the attributes searched are {", ".join(attributes)} (and '
                         f'tags), not {key!r}')
        numeric = attributes[key]
    elif entity == 'tags':
        numeric = False
    else:
        raise p.fail(f'experiments have no {entity}')
    if numeric != isinstance(value, float) or (numeric and op not in NUMERIC_OPS):
        raise p.fail(f'{key} {op} {value!r} compares the wrong type')
    if op in ('LIKE', 'ILIKE'):
        value = _like_regex(value, op == 'ILIKE')
    return Clause(entity, key, op, value)
