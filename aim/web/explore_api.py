"""The experiments page and the run comparison page: ``GET /api/experiments/summary`` and
``GET /api/compare``.

Both read the repository index with plain SQL that both backends run (PostgreSQL through
the rewrites of aim/storage/postgres.py): one grouped statement for the experiments' counts,
one statement for the compared runs and one for their metrics' last values. Which params
vary most inside each experiment needs every run's params, so that pass (about half a
second on 10,000 runs) is kept until a run is added, removed or written again, as the
params summary of the query bar is (aim/web/repo_summary.py).
"""
from __future__ import annotations

import json
import threading
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Query

from aim.web.api_errors import ApiError
from aim.web.runs_table import PROP_COLUMNS, flatten, params_of, run_props

MAX_COMPARE = 50          # runs on one comparison page
VARIED_PARAMS = 3         # params named per experiment
MAX_DISTINCT = 50         # distinct values counted per param (more: "50+")


def _walk(tree: dict, prefix: str, out: list) -> None:
    """(path, leaf) pairs of a params tree, as ``flatten`` gives them, into ``out``."""
    for key, value in tree.items():
        path = f'{prefix}.{key}' if prefix else str(key)
        if isinstance(value, dict) and value:
            _walk(value, path, out)
        else:
            out.append((path, value))


def _identity(value: Any) -> Any:
    """A hashable stand-in for a param value that tells 1, 1.0 and True apart only as
    JSON does (1 == 1.0; true is not 1)."""
    if isinstance(value, bool):
        return ('b', value)
    if isinstance(value, (int, float, str)):
        return value
    return ('j', json.dumps(value, sort_keys=True))


def varied_params(rows) -> dict[Any, list[dict]]:
    """For each experiment of ``rows`` ((experiment, params text) pairs): the params whose
    values differ most across its runs. A param counts when at least half of the runs set
    it and it has two values or more; the most distinct values first, then the most runs,
    then the name. Each comes with its distinct count (capped at 50), its numeric range or
    a few of its values."""
    # per experiment and path: [runs, distinct identities, first values, min, max, numeric]
    stats: dict[Any, dict[str, list]] = defaultdict(dict)
    runs: dict[Any, int] = defaultdict(int)
    for experiment, text in rows:
        runs[experiment] += 1
        mine = stats[experiment]
        leaves: list = []
        _walk(params_of(text), '', leaves)
        for path, value in leaves:
            if value is None or path.startswith('__system_params'):
                continue
            entry = mine.get(path)
            if entry is None:
                entry = mine[path] = [0, set(), [], None, None, True]
            entry[0] += 1
            if isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and value == value:          # (NaN is no number to range over)
                entry[3] = value if entry[3] is None or value < entry[3] else entry[3]
                entry[4] = value if entry[4] is None or value > entry[4] else entry[4]
            else:
                entry[5] = False
            seen = entry[1]
            if len(seen) <= MAX_DISTINCT:
                key = _identity(value)
                if key not in seen:
                    seen.add(key)
                    if len(entry[2]) < 3:
                        entry[2].append(value)
    out: dict[Any, list[dict]] = {}
    for experiment, mine in stats.items():
        total = runs[experiment]
        varying = [(path, e) for path, e in mine.items()
                   if len(e[1]) > 1 and 2 * e[0] >= total]
        varying.sort(key=lambda pe: (-len(pe[1][1]), -pe[1][0], pe[0]))
        items = []
        for path, e in varying[:VARIED_PARAMS]:
            item: dict[str, Any] = {'path': path, 'distinct': min(len(e[1]), MAX_DISTINCT),
                                    'distinct_capped': len(e[1]) > MAX_DISTINCT,
                                    'runs': e[0]}
            if e[5] and e[3] is not None:
                item['min'], item['max'] = e[3], e[4]
            else:
                item['values'] = sorted(e[2], key=lambda v: json.dumps(v, sort_keys=True))
            items.append(item)
        out[experiment] = items
    return out


class ExperimentsSummary:
    """The experiments' rows, their varied params kept until the runs change."""

    def __init__(self, repo):
        self.repo = repo
        self.lock = threading.Lock()
        self.mark: tuple | None = None
        self.varied: dict[Any, list[dict]] = {}

    def get(self) -> list[dict]:
        index = self.repo.index
        rows = index.query(
            'SELECT experiment, COUNT(*), '
            'SUM(CASE WHEN archived = 0 THEN 1 ELSE 0 END), '
            'SUM(CASE WHEN archived = 0 AND end_time IS NULL THEN 1 ELSE 0 END), '
            'MIN(creation_time), MAX(COALESCE(updated_at, end_time, creation_time)), '
            'MAX(creation_time) '
            'FROM runs GROUP BY experiment')
        with self.lock:
            # archiving a run changes which runs count without a new write time
            mark = (sum(r[1] for r in rows), sum(r[2] or 0 for r in rows),
                    max((r[5] or 0 for r in rows), default=0),
                    max((r[6] or 0 for r in rows), default=0))
            if mark != self.mark:
                self.varied = varied_params(index.query(
                    'SELECT experiment, params FROM runs WHERE archived = 0'))
                self.mark = mark
            varied = self.varied
        found = {}
        for experiment, total, shown, active, first, last, _ in rows:
            found[experiment] = {
                'name': experiment, 'runs': int(shown or 0), 'archived': int(total - (shown or 0)),
                'active': int(active or 0), 'first_created': first, 'last_activity': last,
                'varied_params': varied.get(experiment, [])}
        # experiments created (by MLflow's clients) without a run yet
        for (name,) in index.query("SELECT name FROM experiments "
                                   "WHERE lifecycle_stage = 'active'"):
            if name not in found:
                found[name] = {'name': name, 'runs': 0, 'archived': 0, 'active': 0,
                               'first_created': None, 'last_activity': None,
                               'varied_params': []}
        return sorted(found.values(), key=lambda e: (-(e['last_activity'] or 0),
                                                     e['name'] is None, e['name'] or ''))


def compare_runs(repo, hashes: list[str]) -> dict:
    """Props, flattened params and every metric's last value of the runs ``hashes``, in
    that order; hashes without a run are named in ``missing``."""
    index = repo.index
    wanted = json.dumps(hashes)
    cols = ', '.join(PROP_COLUMNS) + ', params'
    found: dict[str, dict] = {}
    for r in index.query(f'SELECT {cols} FROM runs WHERE hash IN '
                         f'(SELECT value FROM json_each(?))', [wanted]):
        row = dict(zip(PROP_COLUMNS + ('params',), r))
        item = run_props(row)
        end = row['end_time'] if row['end_time'] is not None else row['updated_at']
        item['duration'] = end - row['creation_time'] \
            if end is not None and row['creation_time'] is not None else None
        item['params'] = flatten(params_of(row['params']))
        item['metrics'] = []
        found[item['hash']] = item
    if found:
        for run_hash, name, context, last, last_step in index.query(
                'SELECT run_hash, name, context, last, last_step FROM series '
                'WHERE run_hash IN (SELECT value FROM json_each(?)) ORDER BY name, context',
                [json.dumps(list(found))]):
            found[run_hash]['metrics'].append({'name': name, 'context': json.loads(context),
                                               'last': last, 'last_step': last_step})
    return {'runs': [found[h] for h in hashes if h in found],
            'missing': [h for h in hashes if h not in found]}


def explore_router(repo) -> APIRouter:
    router = APIRouter(tags=['repository'])
    summary = ExperimentsSummary(repo)

    @router.get('/api/experiments/summary')
    def experiments_summary():
        """Every experiment: runs (not archived), archived runs, active runs, first and
        last activity, and the params that vary most across its runs."""
        return {'experiments': summary.get()}

    @router.get('/api/compare', tags=['runs'])
    def compare(runs: str = Query('', max_length=MAX_COMPARE * 65,
                                  description='comma-separated run hashes')):
        hashes = list(dict.fromkeys(h.strip() for h in runs.split(',') if h.strip()))
        if not hashes:
            raise ApiError(400, 'InvalidRequest', 'Name the runs to compare: '
                           '/api/compare?runs=HASH1,HASH2.')
        if len(hashes) > MAX_COMPARE:
            raise ApiError(400, 'TooManyRuns', f'At most {MAX_COMPARE} runs can be compared '
                           f'at once; {len(hashes)} were given.', limit=MAX_COMPARE)
        return compare_runs(repo, hashes)

    return router
