"""MLflow 3's logged models, kept as far as autologging needs them.

``mlflow.<flavor>.autolog()`` and ``log_model`` create a *logged model* (an id, an artifact
location under the experiment's, a status, tags and params), upload the model files
there through the artifact proxy, mark it ready and link it to the run as an output.
The records live in the repository database's ``logged_models`` table; the model
registry (registered models, versions, aliases) is not supported.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aim.mlflow_api.errors import invalid, missing


class LoggedModels:
    def __init__(self, registry, experiment_lookup):
        self.registry = registry
        self._experiment = experiment_lookup

    def _get(self, model_id: str, allow_deleted: bool = False) -> dict:
        row = self.registry.connection().execute(
            'SELECT doc, deleted FROM logged_models WHERE id=?', (model_id,)).fetchone()
        if row is None or (row[1] and not allow_deleted):
            raise missing(f"Logged model with ID '{model_id}' not found.")
        return json.loads(row[0])

    def _put(self, doc: dict) -> None:
        info = doc['info']
        info['last_updated_timestamp_ms'] = int(time.time() * 1000)
        with self.registry._conn() as conn:
            conn.execute('INSERT INTO logged_models(id, experiment_id, creation_ms, doc) '
                         'VALUES(?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET doc=excluded.doc',
                         (info['model_id'], info['experiment_id'],
                          info['creation_timestamp_ms'], json.dumps(doc)))

    def handle(self, method: str, parts: list[str], req: dict) -> dict:
        """``parts``: the path after ``logged-models`` split on ``/``."""
        if not parts:
            if method != 'POST':
                raise invalid('Create a logged model with POST.')
            return self.create(req)
        if parts == ['search']:
            return self.search(req)
        model_id = parts[0]
        rest = parts[1:]
        if not rest:
            if method == 'GET':
                allow = str(req.get('allow_deleted', '')).lower() == 'true'
                return {'model': self._get(model_id, allow)}
            if method == 'PATCH':
                doc = self._get(model_id)
                doc['info']['status'] = req.get('status') or doc['info'].get('status')
                self._put(doc)
                return {'model': doc}
            if method == 'DELETE':
                self._get(model_id)
                with self.registry._conn() as conn:
                    conn.execute('UPDATE logged_models SET deleted=1 WHERE id=?', (model_id,))
                return {}
        if rest == ['tags'] and method in ('PATCH', 'POST'):
            doc = self._get(model_id)
            tags = {t['key']: t['value'] for t in doc['info'].get('tags', [])}
            tags.update(_kv(req.get('tags')))
            doc['info']['tags'] = [{'key': k, 'value': v} for k, v in sorted(tags.items())]
            self._put(doc)
            return {}
        if len(rest) == 2 and rest[0] == 'tags' and method == 'DELETE':
            doc = self._get(model_id)
            doc['info']['tags'] = [t for t in doc['info'].get('tags', []) if t['key'] != rest[1]]
            self._put(doc)
            return {}
        if rest == ['params'] and method == 'POST':
            doc = self._get(model_id)
            params = {p['key']: p['value'] for p in doc['data'].get('params', [])}
            params.update(_kv(req.get('params')))
            doc['data']['params'] = [{'key': k, 'value': v} for k, v in sorted(params.items())]
            self._put(doc)
            return {}
        raise invalid(f'No logged-model operation {method} {"/".join(parts)}.')

    def create(self, req: dict) -> dict:
        exp = self._experiment(req.get('experiment_id'))
        model_id = f'm-{uuid.uuid4().hex}'
        now = int(time.time() * 1000)
        info: dict[str, Any] = {
            'model_id': model_id, 'experiment_id': exp.id,
            'name': req.get('name') or model_id, 'creation_timestamp_ms': now,
            'last_updated_timestamp_ms': now,
            'artifact_uri': f'{exp.artifact_location.rstrip("/")}/models/{model_id}/artifacts',
            'status': 'LOGGED_MODEL_PENDING',
            'tags': [{'key': k, 'value': v} for k, v in sorted(_kv(req.get('tags')).items())]}
        for key in ('model_type', 'source_run_id'):
            if isinstance(req.get(key), str) and req[key]:
                info[key] = req[key]
        doc = {'info': info, 'data': {'params': [{'key': k, 'value': v} for k, v in
                                                 sorted(_kv(req.get('params')).items())],
                                      'metrics': []}}
        self._put(doc)
        return {'model': doc}

    def search(self, req: dict) -> dict:
        from aim.mlflow_api import filters
        clauses = filters.parse_experiment_filter(req.get('filter'), filters.MODEL_ATTRIBUTES)
        ids = req.get('experiment_ids') or []
        ids = [ids] if isinstance(ids, str) else [str(i) for i in ids]
        rows = self.registry.connection().execute(
            f'SELECT doc FROM logged_models WHERE deleted=0 AND experiment_id IN '
            f'({", ".join("?" * len(ids))}) ORDER BY creation_ms DESC, id',
            ids).fetchall() if ids else []
        from aim.mlflow_api.service import _max_results, _page
        docs = [d for d in (json.loads(r[0]) for r in rows) if _matches(d, clauses)]
        page, token = _page(docs, req.get('page_token'),
                            _max_results(req.get('max_results'), 50_000))
        out: dict[str, Any] = {'models': page}
        if token:
            out['next_page_token'] = token
        return out


def _kv(items) -> dict[str, str]:
    if not isinstance(items, list):
        return {}
    return {str(i['key']): '' if i.get('value') is None else str(i['value'])
            for i in items if isinstance(i, dict) and isinstance(i.get('key'), str)}


def _matches(doc: dict, clauses) -> bool:
    from aim.mlflow_api import filters
    info = doc['info']
    tags = {t['key']: t['value'] for t in info.get('tags', [])}
    for c in clauses:
        if c.entity == 'tags':
            actual: Any = tags.get(c.key)
        else:
            key = {'creation_time': 'creation_timestamp_ms'}.get(c.key, c.key)
            actual = info.get(key)
            if isinstance(actual, int):
                actual = float(actual)
        if not filters.matches(c, actual):
            return False
    return True
