"""Repository-wide facts for the pages: param names with their values or ranges (query
completion, params explorer axes), metric names, experiments and tags."""
from __future__ import annotations

import json
import math
import threading
from collections import defaultdict

from aim.web.runs_table import flatten, params_of

MAX_DISTINCT = 50


def params_summary(repo) -> dict[str, dict]:
    """For every param path: its kinds, run count, numeric min/max and up to 50 distinct
    values (strings, bools, small sets of numbers)."""
    summary: dict[str, dict] = {}
    distinct: dict[str, set] = defaultdict(set)
    for (text,) in repo.index.query('SELECT params FROM runs'):
        for path, value in flatten(params_of(text)).items():
            entry = summary.get(path)
            if entry is None:
                entry = summary[path] = {'kinds': set(), 'runs': 0, 'min': None, 'max': None}
            entry['runs'] += 1
            kind = 'bool' if isinstance(value, bool) else \
                'number' if isinstance(value, (int, float)) else \
                'string' if isinstance(value, str) else \
                'null' if value is None else 'list'
            entry['kinds'].add(kind)
            if kind == 'number' and not math.isnan(value):
                entry['min'] = value if entry['min'] is None else min(entry['min'], value)
                entry['max'] = value if entry['max'] is None else max(entry['max'], value)
            values = distinct[path]
            if len(values) <= MAX_DISTINCT:
                values.add(json.dumps(value, sort_keys=True))
    for path, entry in summary.items():
        values = distinct[path]
        entry['kinds'] = sorted(entry['kinds'])
        entry['distinct_capped'] = len(values) > MAX_DISTINCT
        entry['values'] = sorted((json.loads(v) for v in values),
                                 key=lambda v: (str(type(v)), str(v)))[:MAX_DISTINCT]
    return dict(sorted(summary.items()))


class ParamsSummary:
    """``params_summary`` of a repository, kept until a run is added, removed or writes
    again. Summarising means a pass over every run's params (about half a second for
    10,000 runs), so ``aim up`` starts it in the background before the first page asks."""

    def __init__(self, repo):
        self.repo = repo
        self.lock = threading.Lock()
        self.mark = None
        self.value: dict | None = None

    def get(self) -> dict:
        with self.lock:
            mark = tuple(self.repo.index.query(
                'SELECT COUNT(*), MAX(updated_at), MAX(creation_time) FROM runs')[0])
            if mark != self.mark or self.value is None:
                self.value = params_summary(self.repo)
                self.mark = mark
            return self.value

    def warm_in_background(self) -> threading.Thread:
        def warm():
            try:
                self.get()
            except Exception:  # the first request will say what is wrong
                pass
        thread = threading.Thread(target=warm, name='aim-params-summary', daemon=True)
        thread.start()
        return thread


def metric_names(repo) -> list[dict]:
    rows = repo.index.query('SELECT name, context, COUNT(*) FROM series '
                            'GROUP BY name, context ORDER BY name, context')
    return [{'name': n, 'context': json.loads(c), 'runs': k} for n, c, k in rows]


def experiments(repo) -> list[dict]:
    rows = repo.index.query('SELECT experiment, COUNT(*), MAX(creation_time) FROM runs '
                            'GROUP BY experiment ORDER BY experiment')
    return [{'name': e, 'runs': k, 'last_created': t} for e, k, t in rows]


def tags(repo) -> list[dict]:
    if getattr(repo.index, 'dialect', 'sqlite') == 'postgresql':
        rows = repo.index.query('SELECT j.value, COUNT(*) FROM runs, '
                                'jsonb_array_elements_text(runs.tags::jsonb) AS j(value) '
                                'GROUP BY j.value ORDER BY j.value')
    else:
        rows = repo.index.query('SELECT j.value, COUNT(*) FROM runs, json_each(runs.tags) AS j '
                                'GROUP BY j.value ORDER BY j.value')
    return [{'name': t, 'runs': k} for t, k in rows]
