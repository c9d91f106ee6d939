"""The runs table: one page of runs from the repository index, sorted and projected.

Reads the index (``repo.index``) with SQL so that the first page of 10,000 runs costs one
indexed statement; a non-empty query is evaluated by the query layer, which returns the
matching hashes, and only then are the rows of the page read.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aim.ql.plan import mentions_archived
from aim.ql.syntax import parse_query
from aim.storage.encoding import canonical_context, loads_params
from aim.web.api_errors import ApiError
from aim.web.query_bridge import matching_run_hashes

PROP_COLUMNS = ('hash', 'name', 'experiment', 'description', 'tags', 'archived',
                'creation_time', 'end_time', 'updated_at')
SORTABLE_PROPS = {'hash', 'name', 'experiment', 'description', 'archived', 'creation_time',
                  'end_time', 'updated_at'}
MAX_PAGE = 1000
_SORT_RE = re.compile(r'^(?P<desc>-)?(?P<key>.+)$')


@dataclass
class RunsPageRequest:
    query: str = ''
    offset: int = 0
    limit: int = 50
    sort: str = '-creation_time'
    params: list[str] = field(default_factory=list)   # dotted paths, or ['*'] for all
    metrics: list[str] = field(default_factory=list)  # metric names (or ['*']) to show last
    #                                                     values of
    # archived runs too, whatever the query; else the query rule: left out unless the
    # query mentions run.archived (the empty query included)
    include_archived: bool = False


def json_path(dotted: str) -> str:
    """``hparams.lr`` -> ``$."hparams"."lr"`` (keys quoted, so any key text is safe)."""
    keys = [k for k in dotted.split('.') if k != '']
    if not keys:
        raise ApiError(400, 'InvalidSort', f'Empty param path in {dotted!r}; write e.g. '
                       f'params.hparams.lr.')
    return '$' + ''.join('.' + json.dumps(k) for k in keys)


def _order_clause(sort: str, dialect: str = 'sqlite') -> tuple[str, list]:
    m = _SORT_RE.match(sort.strip() or '-creation_time')
    if m is None:  # a line break inside the key
        raise ApiError(400, 'InvalidSort', f'Cannot sort by {sort!r}: a sort key is one line. '
                       f'Sort by a prop, by params.<path> or by metric:<name>.', sort=sort)
    direction = 'DESC' if m.group('desc') else 'ASC'
    key = m.group('key')
    if key in SORTABLE_PROPS:
        # SQLite sorts NULL first, so descending already puts it last; leaving the column
        # bare lets the planner walk the runs_by_time index for the default sort.
        if direction == 'DESC':
            # (PostgreSQL sorts NULL first when descending: last, as SQLite does)
            return f'{key} DESC{" NULLS LAST" if dialect == "postgresql" else ""}, hash', []
        return f'{key} IS NULL, {key} ASC, hash', []
    if key.startswith('params.') and dialect == 'postgresql':
        json_path(key[len('params.'):])   # the same check of the path
        keys = [k for k in key[len('params.'):].split('.') if k != '']
        return (f'(params_jsonb #> ?) IS NULL, (params_jsonb #> ?) {direction}, hash',
                [keys, keys])
    if key.startswith('params.'):
        # a run whose params are not valid JSON sorts as if it had no such param, instead
        # of failing the whole statement
        value = 'CASE WHEN json_valid(params) THEN json_extract(params, ?) END'
        return (f'({value}) IS NULL, ({value}) {direction}, hash',
                [json_path(key[len('params.'):])] * 2)
    if key.startswith('metric:'):
        name, context = metric_sort_key(key[len('metric:'):])
        if context is not None:
            sub = '(SELECT last FROM series s WHERE s.run_hash = runs.hash AND s.name = ? ' \
                  'AND s.context = ?)'
            return f'{sub} IS NULL, {sub} {direction}, hash', [name, context] * 2
        # No context given: the context-less series, else the run's first context (the
        # first value the table shows), so that a metric tracked only with contexts sorts.
        sub = "(SELECT last FROM series s WHERE s.run_hash = runs.hash AND s.name = ? " \
              "ORDER BY s.context <> '{}', s.context LIMIT 1)"
        return f'{sub} IS NULL, {sub} {direction}, hash', [name, name]
    raise ApiError(400, 'InvalidSort', f'Cannot sort by {key!r}. Sort by a prop '
                   f'({", ".join(sorted(SORTABLE_PROPS))}), by params.<path> or by '
                   f'metric:<name>; prefix with "-" for descending.', sort=sort)


def metric_sort_key(text: str) -> tuple[str, str | None]:
    """``acc@{"subset": "train"}`` -> ``('acc', '{"subset":"train"}')`` (the context's
    canonical text, as stored); ``acc`` -> ``('acc', None)``. A name may itself hold ``@{``:
    the first ``@`` whose rest is a JSON object starts the context."""
    start = text.find('@{')
    while start >= 0:
        try:
            context = json.loads(text[start + 1:])
        except ValueError:
            context = None
        if isinstance(context, dict):
            try:
                return text[:start], canonical_context(context)
            except ValueError:  # NaN in a context: no series has it
                break
        start = text.find('@{', start + 1)
    return text, None


def _matching_hashes(repo, req: RunsPageRequest, queries) -> list[str]:
    def evaluate(query: str) -> list[str]:
        return queries.run_hashes(query) if queries is not None \
            else matching_run_hashes(repo, query)
    hashes = evaluate(req.query)
    if not req.include_archived:
        return hashes
    # The query rule hides archived runs unless the query mentions run.archived; "show
    # archived" adds those that match. The user's query was evaluated just above, so its
    # errors keep their positions in the text the user wrote; it parses, and its Python
    # text comes back in parentheses.
    parsed = parse_query(req.query)
    if mentions_archived(parsed.tree):
        return hashes
    archived = evaluate(f'run.archived and {parsed.python_text}' if parsed.tree is not None
                        else 'run.archived == True')
    seen = set(hashes)
    return hashes + [h for h in archived if h not in seen]


def params_of(text: str | None) -> dict:
    """A run's params from its index row; params that are not valid JSON (a damaged row,
    named by `aim storage check`) show as none rather than failing the whole answer."""
    try:
        params = loads_params(text)
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def flatten(tree: Any, prefix: str = '') -> dict[str, Any]:
    """Nested dicts to ``{'a.b': leaf}``; lists and scalars are leaves."""
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(flatten(v, f'{prefix}.{k}' if prefix else str(k)))
        return out
    return {prefix: tree} if prefix else {}


def dig(tree: Any, dotted: str) -> Any:
    for key in dotted.split('.'):
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def run_props(row: dict) -> dict:
    props = {k: row[k] for k in PROP_COLUMNS if k in row}
    props['tags'] = json.loads(row['tags'] or '[]') if isinstance(row.get('tags'), str) \
        else (row.get('tags') or [])
    props['archived'] = bool(row.get('archived'))
    # The index has no liveness flag; a run without an end time is still being written
    # (or died without closing; the run page asks the SDK for the exact answer).
    props['active'] = row.get('end_time') is None
    return props


def runs_page(repo, req: RunsPageRequest, queries=None) -> dict:
    """One page of runs; ``queries`` (a :class:`aim.web.query_pool.QueryWorkers`) evaluates
    the query in a worker process, else it is evaluated here."""
    limit = max(1, min(int(req.limit), MAX_PAGE))
    offset = max(0, int(req.offset))
    where: list[str] = []
    args: list = []
    if req.query.strip():
        where.append('hash IN (SELECT value FROM json_each(?))')
        args.append(json.dumps(_matching_hashes(repo, req, queries)))
    elif not req.include_archived:   # the empty query mentions nothing: the query rule
        where.append('archived = 0')
    where_sql = (' WHERE ' + ' AND '.join(where)) if where else ''
    index = repo.index
    order_sql, order_args = _order_clause(req.sort, getattr(index, 'dialect', 'sqlite'))
    total = index.query(f'SELECT COUNT(*) FROM runs{where_sql}', args)[0][0]
    cols = ', '.join(PROP_COLUMNS) + ', params'
    rows = index.query(f'SELECT {cols} FROM runs{where_sql} ORDER BY {order_sql} '
                       f'LIMIT ? OFFSET ?', args + order_args + [limit, offset])
    runs = []
    for r in rows:
        row = dict(zip(PROP_COLUMNS + ('params',), r))
        item = run_props(row)
        params = params_of(row['params'])
        if req.params == ['*']:
            item['params'] = flatten(params)
        elif req.params:
            item['params'] = {p: dig(params, p) for p in req.params}
        runs.append(item)
    if req.metrics and runs:
        by_hash = {item['hash']: item for item in runs}
        for item in runs:
            item['metrics'] = []
        sql = ('SELECT run_hash, name, context, last, last_step FROM series '
               'WHERE run_hash IN (SELECT value FROM json_each(?)) ')
        args = [json.dumps(list(by_hash))]
        if req.metrics != ['*']:
            # `+name`: look rows up by run (the unique index), not by metric name.
            sql += 'AND +name IN (SELECT value FROM json_each(?)) '
            args.append(json.dumps(req.metrics))
        for run_hash, name, context, last, last_step in index.query(
                sql + 'ORDER BY name, context', args):
            by_hash[run_hash]['metrics'].append(
                {'name': name, 'context': json.loads(context), 'last': last,
                 'last_step': last_step})
    return {'total': total, 'offset': offset, 'limit': limit, 'sort': req.sort, 'runs': runs}
