"""The MLflow tracking operations over one aimkit repository (one method per endpoint).

Each method takes the request's fields as a dict and returns the answer's JSON; bad input
raises :class:`aim.mlflow_api.errors.MlflowApiError`. Reads come from the repository's
index (the runs and series summary tables the SDK's queries read), writes go through
:class:`aim.mlflow_api.writes.RunWriter`.
"""
from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from aim.mlflow_api import filters, views
from aim.mlflow_api.errors import MlflowApiError, invalid, missing
from aim.mlflow_api.experiments import (
    DEFAULT_ID,
    ExperimentRegistry,
    check_name,
    to_aim_name,
    to_mlflow_name,
)
from aim.mlflow_api.writes import (
    REPEATED_CONTEXT,
    REPEATED_JSON,
    RunWriter,
    param_del_op,
    param_op,
    props_op,
)

MAX_RESULTS_RUNS = 50_000
JSON_CACHE_RUNS = 20_000
DEFAULT_MAX_RESULTS = 1000
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_TOTAL = 1000
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
VIEW_TYPES = {'ACTIVE_ONLY': 1, 'DELETED_ONLY': 2, 'ALL': 3, '1': 1, '2': 2, '3': 3}
_RUN_COLS = ('hash', 'name', 'experiment', 'description', 'tags', 'archived',
             'creation_time', 'end_time', 'updated_at', 'params')


class MlflowService:
    def __init__(self, repo_root: str):
        self.repo_root = repo_root
        self._repos: dict[int, Any] = {}
        self._guard = threading.Lock()
        self.registry = ExperimentRegistry(self.repo()._store.db)
        self.writer = RunWriter(lambda: self.repo()._store)
        self._json_cache: dict[tuple, dict] = {}
        from aim.mlflow_api.models import LoggedModels
        self.models = LoggedModels(self.registry, self._experiment)

    # plumbing --------------------------------------------------------------------------
    def repo(self):
        from aim.sdk.repo import Repo
        with self._guard:
            r = self._repos.get(os.getpid())
            if r is None:
                r = self._repos[os.getpid()] = Repo(self.repo_root)
            return r

    def _query(self, sql: str, args=()) -> list:
        return self.repo().index.query(sql, args)

    def _is_active(self, run_hash: str) -> bool:
        return self.repo()._store.is_active(run_hash)

    def _experiments(self) -> dict[str, Any]:
        """aimkit experiment name -> Experiment, every name runs carry included."""
        exps = {e.name: e for e in self.registry.all()}
        names = {r[0] for r in self._query('SELECT DISTINCT experiment FROM runs')}
        unknown = {n for n in names if n and n not in exps}
        if unknown:
            self.registry.ensure(unknown)
            exps = {e.name: e for e in self.registry.all()}
        return exps

    def _run_row(self, run_id) -> dict:
        if not isinstance(run_id, str) or not run_id:
            raise invalid('Missing value for required parameter \'run_id\'.')
        rows = self._query(f'SELECT {", ".join(_RUN_COLS)} FROM runs WHERE hash=?', (run_id,))
        if not rows:
            if self.repo()._store.run_exists(run_id):   # data not yet indexed
                row = self.repo()._store.index_row_from_data(run_id)
                return {c: row.get(c) for c in _RUN_COLS}
            raise missing(f"Run '{run_id}' not found.")
        return dict(zip(_RUN_COLS, rows[0]))

    def _series(self, run_hashes: list[str] | None, where: str = '', args=()) -> dict:
        out: dict[str, list] = {}
        if run_hashes is not None:
            if not run_hashes:
                return out
            rows = []
            for i in range(0, len(run_hashes), 900):
                part = run_hashes[i:i + 900]
                rows += self._query('SELECT run_hash, name, context, last, last_step, '
                                    'last_time, count FROM series WHERE run_hash IN '
                                    f'({", ".join("?" * len(part))})', part)
        else:
            rows = self._query('SELECT s.run_hash, s.name, s.context, s.last, s.last_step, '
                               's.last_time, s.count FROM series s JOIN runs r ON '
                               f'r.hash = s.run_hash '
                               f'{where}', args)
        for r in rows:
            out.setdefault(r[0], []).append(r[1:])
        return out

    def _view(self, row: dict, series: list, exps: dict | None = None) -> views.RunView:
        name = row.get('experiment') or 'default'
        exp = exps.get(name) if exps is not None else self.registry.by_name(name)
        if exp is None:
            self.registry.ensure([name])
            exp = self.registry.by_name(name)
        assert exp is not None
        return views.RunView(row, series, exp.id, exp.artifact_location.rstrip('/'),
                             self._is_active)

    def run_view(self, run_id) -> views.RunView:
        row = self._run_row(run_id)
        return self._view(row, self._series([row['hash']]).get(row['hash'], []))

    def _writable(self, run_id) -> views.RunView:
        """The run (without its metrics: writes do not need them), if it is active."""
        view = self._view(self._run_row(run_id), [])
        if view.lifecycle_stage != 'active':
            raise MlflowApiError(f"The run {run_id} must be in the 'active' state. Current "
                                 f"state is deleted.", 'INVALID_STATE')
        return view

    # experiments ---------------------------------------------------------------------------
    def create_experiment(self, req: dict) -> dict:
        name = check_name(req.get('name'))
        aim_name = to_aim_name(name)
        # runs tracked with the SDK may carry the name already
        if self.registry.by_name(aim_name) is not None or self._query(
                'SELECT 1 FROM runs WHERE experiment=? LIMIT 1', (aim_name,)):
            raise MlflowApiError(f"Experiment '{name}' already exists.",
                                 'RESOURCE_ALREADY_EXISTS')
        location = req.get('artifact_location') or None
        exp = self.registry.create(aim_name, location, _kv(req.get('tags'), 'tags'))
        return {'experiment_id': exp.id}

    def _experiment(self, experiment_id):
        if experiment_id in (None, ''):
            raise invalid("Missing value for required parameter 'experiment_id'.")
        self._experiments()   # names runs carry get ids before a lookup by id
        return self.registry.by_id(experiment_id)

    def get_experiment(self, req: dict) -> dict:
        return {'experiment': self._experiment(req.get('experiment_id')).to_json()}

    def get_experiment_by_name(self, req: dict) -> dict:
        name = req.get('experiment_name')
        if not isinstance(name, str) or not name:
            raise invalid("Missing value for required parameter 'experiment_name'.")
        exp = self._experiments().get(to_aim_name(name))
        if exp is None:
            raise missing(f"Could not find experiment with name '{name}'")
        return {'experiment': exp.to_json()}

    def search_experiments(self, req: dict) -> dict:
        view_type = _view_type(req.get('view_type'))
        max_results = _max_results(req.get('max_results'), 50_000)
        clauses = filters.parse_experiment_filter(req.get('filter'))
        exps = list(self._experiments().values())
        out = []
        for e in exps:
            if not _stage_wanted(e.lifecycle_stage, view_type):
                continue
            ok = True
            for c in clauses:
                if c.entity == 'tags':
                    actual: Any = e.tags.get(c.key)
                elif c.key == 'name':
                    actual = to_mlflow_name(e.name)
                else:
                    actual = float(getattr(e, c.key))
                if not filters.matches(c, actual):
                    ok = False
                    break
            if ok:
                out.append(e)
        keys = _experiment_order(req.get('order_by'))
        for attr, asc in reversed(keys):
            out.sort(key=_experiment_sort_key(attr), reverse=not asc)
        page, token = _page(out, req.get('page_token'), max_results)
        answer: dict[str, Any] = {'experiments': [e.to_json() for e in page]}
        if token:
            answer['next_page_token'] = token
        return answer

    def update_experiment(self, req: dict) -> dict:
        exp = self._experiment(req.get('experiment_id'))
        new_name = req.get('new_name')
        if new_name is None:
            return {}
        aim_name = to_aim_name(check_name(new_name))
        if exp.id == DEFAULT_ID and aim_name != exp.name:
            raise invalid('The Default experiment (id 0) is aimkit\'s "default" experiment and '
                          'keeps its name; create a new experiment instead.')
        if aim_name == exp.name:
            return {}
        if self._query('SELECT 1 FROM runs WHERE experiment=? LIMIT 1', (aim_name,)):
            raise MlflowApiError(f"Experiment '{new_name}' already exists (runs carry that "
                                 f'name).', 'RESOURCE_ALREADY_EXISTS')
        self.registry.rename(exp.id, aim_name)
        for (run_hash,) in self._query('SELECT hash FROM runs WHERE experiment=?', (exp.name,)):
            self.writer.apply(run_hash, [props_op(experiment=aim_name)])
        return {}

    def _set_experiment_stage(self, req: dict, stage: str) -> dict:
        exp = self._experiment(req.get('experiment_id'))
        if exp.id == DEFAULT_ID and stage == 'deleted':
            raise invalid('Cannot delete the default experiment \'0\'. This is an internally '
                          'reserved experiment.')
        self.registry.update(exp.id, lifecycle_stage=stage)
        archived = stage == 'deleted'
        for (run_hash,) in self._query('SELECT hash FROM runs WHERE experiment=? AND '
                                       'archived=?', (exp.name, int(not archived))):
            self.writer.apply(run_hash, [props_op(archived=archived)])
        return {}

    def delete_experiment(self, req: dict) -> dict:
        return self._set_experiment_stage(req, 'deleted')

    def restore_experiment(self, req: dict) -> dict:
        return self._set_experiment_stage(req, 'active')

    def set_experiment_tag(self, req: dict) -> dict:
        exp = self._experiment(req.get('experiment_id'))
        key, value = _key(req.get('key'), 'tag'), _text(req.get('value'), 'tag value',
                                                        MAX_TAG_VALUE * 625)
        tags = dict(exp.tags)
        tags[key] = value
        self.registry.update(exp.id, tags=json.dumps(tags))
        return {}

    def delete_experiment_tag(self, req: dict) -> dict:
        exp = self._experiment(req.get('experiment_id'))
        key = _key(req.get('key'), 'tag')
        if key not in exp.tags:
            raise missing(f"No tag with name: {key} in experiment with id {exp.id}")
        tags = dict(exp.tags)
        del tags[key]
        self.registry.update(exp.id, tags=json.dumps(tags))
        return {}

    # runs ----------------------------------------------------------------------------------
    def create_run(self, req: dict) -> dict:
        experiment_id = req.get('experiment_id') or DEFAULT_ID
        exp = self._experiment(experiment_id)
        if exp.lifecycle_stage != 'active':
            raise MlflowApiError(f"The experiment {exp.id} must be in the 'active' state. "
                                 f"Current state is {exp.lifecycle_stage}.", 'INVALID_STATE')
        tags = _kv(req.get('tags'), 'tags')
        run_hash = uuid.uuid4().hex
        name = req.get('run_name') or tags.get(views.RUN_NAME_TAG) or f'Run: {run_hash}'
        if not isinstance(name, str):
            raise invalid('run_name must be a string.')
        start = req.get('start_time')
        start_s = _number(start, 'start_time') / 1000.0 if start not in (None, '') else \
            time.time()
        tags.pop(views.RUN_NAME_TAG, None)
        description = tags.pop(views.NOTE_TAG, None)
        user = req.get('user_id') or tags.get(views.USER_TAG) or ''
        labels = [t for t in (views.label(k, v) for k, v in tags.items()) if t]
        props = {'name': name, 'experiment': exp.name, 'description': description,
                 'tags': labels, 'archived': False, 'creation_time': start_s}
        meta = {'origin': 'mlflow', 'status': 'RUNNING', 'tags': tags, 'user_id': user}
        self.writer.apply(run_hash, [{'op': 'open', 'props': props, 'experiment': None},
                                     param_op(['mlflow'], meta)])
        return {'run': self.run_view(run_hash).to_json()}

    def get_run(self, req: dict) -> dict:
        return {'run': self.run_view(_run_id(req)).to_json()}

    def update_run(self, req: dict) -> dict:
        run_id = _run_id(req)
        with self.writer.lock(run_id):
            view = self.run_view(run_id)
            ops: list[dict] = []
            status = req.get('status')
            if isinstance(status, int) and 1 <= status <= 5:
                status = views.RUN_STATUSES[status - 1]
            if status not in (None, ''):
                if status not in views.RUN_STATUSES:
                    raise invalid(f'Invalid run status {status!r}: one of '
                                  f'{", ".join(views.RUN_STATUSES)}.')
                if view.meta is None:
                    ops.append(param_op(['mlflow'], {'status': status, 'tags': {}}))
                else:
                    ops.append(param_op(['mlflow', 'status'], status))
                if status in views.TERMINAL:
                    end = req.get('end_time')
                    end_s = _number(end, 'end_time') / 1000.0 if end not in (None, '') else \
                        time.time()
                    ops.append({'op': 'close', 'end_time': end_s})
                elif view.status in views.TERMINAL:
                    ops.append({'op': 'open', 'props': {}, 'experiment': None})
            name = req.get('run_name')
            if name not in (None, ''):
                ops.append(props_op(name=_text(name, 'run_name', 1000)))
            if ops:
                self.writer.apply(run_id, ops)
        return {'run_info': self.run_view(run_id).info()}

    def delete_run(self, req: dict) -> dict:
        self.run_view(_run_id(req))
        self.writer.apply(_run_id(req), [props_op(archived=True)])
        return {}

    def restore_run(self, req: dict) -> dict:
        self.run_view(_run_id(req))
        self.writer.apply(_run_id(req), [props_op(archived=False)])
        return {}

    # logging -------------------------------------------------------------------------------
    def log_metric(self, req: dict) -> dict:
        run_id = _run_id(req)
        point = _metric(req)
        self._writable(run_id)
        self.writer.apply(run_id, [], [point])
        return {}

    def log_param(self, req: dict) -> dict:
        run_id = _run_id(req)
        key = _key(req.get('key'), 'param')
        value = _text(req.get('value'), 'param value', MAX_PARAM_VALUE, numbers=True)
        self.log_batch({'run_id': run_id, 'params': [{'key': key, 'value': value}]})
        return {}

    def set_tag(self, req: dict) -> dict:
        run_id = _run_id(req)
        key = _key(req.get('key'), 'tag')
        value = _text(req.get('value'), 'tag value', MAX_TAG_VALUE * 625, numbers=True)
        self.log_batch({'run_id': run_id, 'tags': [{'key': key, 'value': value}]})
        return {}

    def delete_tag(self, req: dict) -> dict:
        run_id = _run_id(req)
        key = _key(req.get('key'), 'tag')
        with self.writer.lock(run_id):
            view = self._writable(run_id)
            if key not in view.tags:
                raise missing(f"No tag with name: {key} in run with id {run_id}")
            ops: list[dict] = []
            if key == views.RUN_NAME_TAG:
                raise invalid('The run name tag mlflow.runName cannot be deleted; rename the '
                              'run instead.')
            if key == views.NOTE_TAG:
                ops.append(props_op(description=None))
            labels = json.loads(view.row.get('tags') or '[]')
            kept = [t for t in labels if views.label_key(t) != key]
            if kept != labels:
                ops.append(props_op(tags=kept))
            if view.meta is not None and key in (view.meta.get('tags') or {}):
                ops.append(param_del_op(['mlflow', 'tags', key]))
            self.writer.apply(run_id, ops)
        return {}

    def log_batch(self, req: dict) -> dict:
        run_id = _run_id(req)
        metrics = _list(req.get('metrics'), 'metrics')
        params = _list(req.get('params'), 'params')
        tags = _list(req.get('tags'), 'tags')
        if len(metrics) > MAX_BATCH_METRICS or len(params) > MAX_BATCH_PARAMS or \
                len(tags) > MAX_BATCH_TAGS or \
                len(metrics) + len(params) + len(tags) > MAX_BATCH_TOTAL:
            raise invalid(f'A batch logging request can contain at most {MAX_BATCH_METRICS} '
                          f'metrics, {MAX_BATCH_PARAMS} params and {MAX_BATCH_TAGS} tags, '
                          f'{MAX_BATCH_TOTAL} in all. Got {len(metrics)} metrics, '
                          f'{len(params)} params and {len(tags)} tags.')
        points = [_metric(m) for m in metrics]
        new_params: dict[str, str] = {}
        for p in params:
            if not isinstance(p, dict):
                raise invalid('Each param is an object with key and value.')
            key = _key(p.get('key'), 'param')
            value = _text(p.get('value'), 'param value', MAX_PARAM_VALUE, numbers=True)
            if key in new_params and new_params[key] != value:
                raise invalid(f"Duplicate parameter keys have been submitted: ['{key}']. "
                              f'Please ensure the request contains only one param value per '
                              f'param key.')
            new_params[key] = value
        new_tags: dict[str, str] = {}
        for t in tags:
            if not isinstance(t, dict):
                raise invalid('Each tag is an object with key and value.')
            new_tags[_key(t.get('key'), 'tag')] = _text(t.get('value'), 'tag value',
                                                         MAX_TAG_VALUE * 625, numbers=True)
        with self.writer.lock(run_id):
            view = self._writable(run_id)
            ops: list[dict] = []
            if (new_params or new_tags) and view.meta is None:
                ops.append(param_op(['mlflow'], {'tags': {}}))
            if new_params:
                logged = view.mparams
                for key, value in new_params.items():
                    if key in logged and logged[key] != value:
                        raise invalid(
                            f"Changing param values is not allowed. Param with key='{key}' "
                            f"was already logged with value='{logged[key]}' for run "
                            f"ID='{run_id}'. Attempted logging new value '{value}'.")
                    if key in logged:
                        continue
                    if views.logged_by_mlflow(view.meta):
                        ops.append(param_op(['params', key], value))
                        ops.append(param_op(['hparams', key], views.typed(value)))
                    elif key in ('mlflow', '__system_params'):
                        raise invalid(f"The param key '{key}' is reserved on runs of the Aim "
                                      f'SDK (aimkit keeps its own data there); use another '
                                      f'key.')
                    else:   # a run of the SDK: a param of its own tree, as MLflow shows it
                        ops.append(param_op([key], value))
            if new_tags:
                labels = json.loads(view.row.get('tags') or '[]')
                new_labels = list(labels)
                for key, value in new_tags.items():
                    if key == views.RUN_NAME_TAG:
                        ops.append(props_op(name=value))
                        continue
                    if key == views.NOTE_TAG:
                        ops.append(props_op(description=value))
                        continue
                    ops.append(param_op(['mlflow', 'tags', key], value))
                    if not key.startswith('mlflow.'):
                        new_labels = [t for t in new_labels if views.label_key(t) != key]
                        text = views.label(key, value)
                        if text:
                            new_labels.append(text)
                if new_labels != labels:
                    ops.append(props_op(tags=new_labels))
            if ops or points:
                self.writer.apply(run_id, ops, points)
        return {}

    def log_inputs(self, req: dict) -> dict:
        run_id = _run_id(req)
        datasets = _list(req.get('datasets'), 'datasets')
        clean = []
        for d in datasets:
            ds = d.get('dataset') if isinstance(d, dict) else None
            if not isinstance(ds, dict) or not isinstance(ds.get('name'), str) or \
                    not isinstance(ds.get('digest'), str):
                raise invalid('Each dataset input is {"dataset": {"name", "digest", ...}, '
                              '"tags": [...]}.')
            entry = {'dataset': {k: ds[k] for k in ('name', 'digest', 'source_type', 'source',
                                                    'schema', 'profile') if k in ds},
                     'tags': [{'key': t['key'], 'value': str(t.get('value', ''))}
                              for t in _list(d.get('tags'), 'tags')
                              if isinstance(t, dict) and isinstance(t.get('key'), str)]}
            clean.append(entry)
        if not clean:
            return {}
        with self.writer.lock(run_id):
            view = self._writable(run_id)
            inputs = view.datasets()
            seen = {_input_id(i) for i in inputs}
            added = [e for e in clean if _input_id(e) not in seen]
            if added:
                ops = []
                if view.meta is None:
                    ops.append(param_op(['mlflow'], {'tags': {}}))
                ops.append(param_op(['mlflow', 'inputs'], inputs + added))
                self.writer.apply(run_id, ops)
        return {}

    def log_outputs(self, req: dict) -> dict:
        """Logged models a run produced: ``run['mlflow']['outputs']``."""
        run_id = _run_id(req)
        models = [{'model_id': m['model_id'], 'step': int(m.get('step') or 0)}
                  for m in _list(req.get('models'), 'models')
                  if isinstance(m, dict) and isinstance(m.get('model_id'), str)]
        if not models:
            return {}
        with self.writer.lock(run_id):
            view = self._writable(run_id)
            outputs = view.outputs()
            added = [m for m in models if m not in outputs]
            if added:
                ops = []
                if view.meta is None:
                    ops.append(param_op(['mlflow'], {'tags': {}}))
                ops.append(param_op(['mlflow', 'outputs'], outputs + added))
                self.writer.apply(run_id, ops)
        return {}

    def log_model(self, req: dict) -> dict:
        """Old clients record a logged model as the run's ``mlflow.log-model.history``."""
        run_id = _run_id(req)
        model = req.get('model_json')
        if not isinstance(model, str):
            raise invalid("Missing value for required parameter 'model_json'.")
        try:
            entry = json.loads(model)
        except ValueError:
            raise invalid('model_json is not JSON.') from None
        view = self._writable(run_id)
        history = view.tags.get('mlflow.log-model.history')
        try:
            items = json.loads(history) if history else []
        except ValueError:
            items = []
        items.append(entry)
        self.set_tag({'run_id': run_id, 'key': 'mlflow.log-model.history',
                      'value': json.dumps(items)})
        return {}

    # search --------------------------------------------------------------------------------
    def search_runs(self, req: dict) -> dict:
        view_type = _view_type(req.get('run_view_type'))
        max_results = _max_results(req.get('max_results'), MAX_RESULTS_RUNS)
        clauses = filters.parse_filter(req.get('filter'))
        order = filters.parse_order_by(_list(req.get('order_by'), 'order_by'))
        ids = req.get('experiment_ids') or []
        if isinstance(ids, str):
            ids = [ids]
        exps = self._experiments()
        by_id = {e.id: e for e in exps.values()}
        names = []
        for eid in ids:
            exp = by_id.get(str(eid))
            if exp is not None:
                names.append(exp.name)
        if not names:
            return {'runs': []}
        where = f'WHERE r.experiment IN ({", ".join("?" * len(names))})'
        args: list = list(names)
        if 'default' in names:
            where += ' OR r.experiment IS NULL'
        if view_type == 1:
            where = f'WHERE ({where[6:]}) AND r.archived = 0'
        elif view_type == 2:
            where = f'WHERE ({where[6:]}) AND r.archived = 1'
        cols = ', '.join(f'r.{c}' for c in _RUN_COLS)
        token: str | None
        by_metrics = any(c.entity == 'metrics' for c in clauses) or \
            any(k.entity == 'metrics' for k in order)
        if not clauses and not order:
            # MLflow's default order, paged by the database
            start = _offset(req.get('page_token'))
            rows = [dict(zip(_RUN_COLS, r)) for r in self._query(
                f'SELECT {cols} FROM runs r {where} ORDER BY (r.creation_time IS NULL), '
                f'r.creation_time DESC, r.hash LIMIT ? OFFSET ?',
                args + [max_results + 1, start])]
            token = _token(start + max_results) if len(rows) > max_results else None
            page = [self._view(row, [], exps) for row in rows[:max_results]]
        else:
            rows = [dict(zip(_RUN_COLS, r)) for r in
                    self._query(f'SELECT {cols} FROM runs r {where}', args)]
            series = self._series(None, where, args) if rows and by_metrics else {}
            candidates = [self._view(row, series.get(row['hash'], []), exps) for row in rows]
            matched = [v for v in candidates if all(_clause_matches(c, v) for c in clauses)]
            _sort_runs(matched, order)
            page, token = _page(matched, req.get('page_token'), max_results)
        if not by_metrics:   # the metrics of the page's runs only
            found = self._series([v.row['hash'] for v in page])
            for v in page:
                v.series = found.get(v.row['hash'], [])
        answer: dict[str, Any] = {'runs': [self._run_json(v) for v in page]}
        if token:
            answer['next_page_token'] = token
        return answer

    def _run_json(self, view: views.RunView) -> dict:
        """``view.to_json()``, remembered for the same row and series: a search answers
        runs that mostly did not change since the last one. A run whose status depends on
        whether its writer lives (an SDK run without an end time) is built each time."""
        row = view.row
        if row.get('end_time') is None and '"origin":"mlflow"' not in (row.get('params') or ''):
            return view.to_json()
        key = (*row.values(), *view.series, view.experiment_id, view.artifact_root)
        found = self._json_cache.get(key)
        if found is None:
            if len(self._json_cache) >= JSON_CACHE_RUNS:
                self._json_cache.clear()
            found = self._json_cache[key] = view.to_json()
        return found

    def metric_history(self, req: dict) -> dict:
        run_id = _run_id(req)
        key = req.get('metric_key')
        if not isinstance(key, str) or not key:
            raise invalid("Missing value for required parameter 'metric_key'.")
        view = self.run_view(run_id)
        found = None
        replaced = False
        for name, context, *_ in view.series:
            if context == REPEATED_JSON:
                replaced = replaced or name == key
            elif views.metric_key(name, context) == key:
                found = (name, context)
        if found is None:
            return {'metrics': []}
        run = self.repo().get_run(run_id)
        metric = run.get_metric(found[0], json.loads(found[1]))
        if metric is None:
            return {'metrics': []}
        steps = metric.steps
        values = metric.values_numpy()
        times = metric.timestamps
        if replaced and found[1] == '{}':
            steps, values, times = _with_replaced(run, key, steps, values, times)
        elif len(times) > 1 and bool((times[1:] < times[:-1]).any()):
            import numpy as np  # steps logged out of time order: MLflow's order is by time
            order = np.lexsort((steps, times))
            steps, values, times = steps[order], values[order], times[order]
        start = _offset(req.get('page_token'))
        limit = req.get('max_results')
        stop = len(steps) if limit in (None, '') else \
            start + _max_results(limit, 10 ** 9)
        stop = min(stop, len(steps))
        step_list = steps[start:stop].tolist()
        time_list = [int(round(t * 1000)) for t in times[start:stop].tolist()]
        value_list = values[start:stop].astype('float64').tolist()
        out = [{'key': key, 'value': v if math.isfinite(v) else views.float_json(v),
                'timestamp': t, 'step': s}
               for s, v, t in zip(step_list, value_list, time_list)]
        answer: dict[str, Any] = {'metrics': out}
        if stop < len(steps):
            answer['next_page_token'] = _token(stop)
        return answer


def _with_replaced(run, key: str, steps, values, times):
    """A metric's points and the values replaced at their steps (REPEATED_CONTEXT: the
    epoch is the MLflow step), in MLflow's order: by time, then by step, replaced values
    first when both are equal (they were logged first)."""
    import numpy as np
    extra = run.get_metric(key, REPEATED_CONTEXT)
    if extra is None or not len(extra.steps):
        return steps, values, times
    all_steps = np.concatenate([np.asarray(extra.epochs, np.int64), np.asarray(steps, np.int64)])
    all_values = np.concatenate([np.asarray(extra.values_numpy(), np.float64),
                                 np.asarray(values, np.float64)])
    all_times = np.concatenate([np.asarray(extra.timestamps, np.float64),
                                np.asarray(times, np.float64)])
    later = np.concatenate([np.zeros(len(extra.steps)), np.ones(len(steps))])
    order = np.lexsort((later, all_steps, all_times))
    return all_steps[order], all_values[order], all_times[order]


# -- request fields ------------------------------------------------------------------------
def _run_id(req: dict) -> str:
    run_id = req.get('run_id') or req.get('run_uuid')
    if not isinstance(run_id, str) or not run_id:
        raise invalid("Missing value for required parameter 'run_id'.")
    return run_id


def _key(key, what: str) -> str:
    if not isinstance(key, str) or not key:
        raise invalid(f"Missing value for required parameter 'key' ({what} key).")
    if len(key) > MAX_KEY:
        raise invalid(f"{what.capitalize()} key '{key[:40]}...' has {len(key)} characters; "
                      f'at most {MAX_KEY}.')
    if key.startswith('/') or '..' in key.split('/') or '\x00' in key:
        raise invalid(f"Invalid {what} key '{key}': names may not start with / or hold "
                      f'.. as a path part.')
    return key


def _text(value, what: str, limit: int, numbers: bool = False) -> str:
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if value is None:
        value = ''
    if not isinstance(value, str):
        raise invalid(f'The {what} must be a string; got {type(value).__name__}.')
    if len(value) > limit:
        raise invalid(f'The {what} has {len(value)} characters; at most {limit} are '
                      f'allowed.')
    return value


def _number(value, what: str) -> float:
    if isinstance(value, bool):
        raise invalid(f'{what} must be a number; got {value!r}.')
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise invalid(f'{what} must be a number; got {value!r:.60}.')


def _metric(m) -> tuple[str, int, float, float]:
    if type(m) is dict:
        # the common case, checked in few steps: what MLflow's client sends
        key, raw, ts, step = m.get('key'), m.get('value'), m.get('timestamp'), m.get('step', 0)
        if type(key) is str and 0 < len(key) <= MAX_KEY and (type(raw) is float or (
                type(raw) is int and -2 ** 53 <= raw <= 2 ** 53)) and type(ts) is int and \
                type(step) is int and -2 ** 63 < step < 2 ** 63 and '..' not in key and \
                key[0] != '/' and '\x00' not in key:
            return key, step, float(raw), ts / 1000.0
    return _metric_checked(m)


def _metric_checked(m) -> tuple[str, int, float, float]:
    if not isinstance(m, dict):
        raise invalid('Each metric is an object with key, value, timestamp and step.')
    key = _key(m.get('key'), 'metric')
    raw = m.get('value')
    if isinstance(raw, str) and raw in ('NaN', 'nan', 'Infinity', 'inf', '-Infinity', '-inf'):
        value = float(raw.replace('Infinity', 'inf'))
    elif raw is None:
        raise invalid(f"Missing value for required parameter 'value' of metric '{key}'.")
    else:
        value = _number(raw, f"the value of metric '{key}'")
    ts = m.get('timestamp')
    if ts in (None, ''):
        raise invalid(f"Missing value for required parameter 'timestamp' of metric '{key}'.")
    timestamp = _number(ts, f"the timestamp of metric '{key}'")
    step_raw = m.get('step', 0)
    step = _number(step_raw, f"the step of metric '{key}'") if step_raw not in (None, '') \
        else 0.0
    if step != int(step) or not -2 ** 63 < step < 2 ** 63:
        raise invalid(f"The step of metric '{key}' must be an integer; got {step_raw!r}.")
    return key, int(step), value, timestamp / 1000.0


def _kv(items, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _list(items, what):
        if not isinstance(item, dict):
            raise invalid(f'Each of {what} is an object with key and value.')
        out[_key(item.get('key'), what.rstrip('s'))] = _text(
            item.get('value'), f'{what.rstrip("s")} value', MAX_TAG_VALUE * 625, numbers=True)
    return out


def _list(value, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        return [value]
    if not isinstance(value, list):
        raise invalid(f'{what} must be a list.')
    return value


def _view_type(value) -> int:
    if value in (None, ''):
        return 1
    found = VIEW_TYPES.get(str(value))
    if found is None:
        raise invalid(f'Invalid view type {value!r}: ACTIVE_ONLY, DELETED_ONLY or ALL.')
    return found


def _stage_wanted(stage: str, view_type: int) -> bool:
    return view_type == 3 or (stage == 'deleted') == (view_type == 2)


def _max_results(value, limit: int) -> int:
    if value in (None, ''):
        return DEFAULT_MAX_RESULTS
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise invalid(f'max_results must be an integer; got {value!r:.40}.') from None
    if n <= 0 or n > limit:
        raise invalid(f'Invalid value {n} for parameter \'max_results\' supplied. It must be '
                      f'a positive integer of at most {limit}.')
    return n


def _token(offset: int) -> str:
    return base64.b64encode(json.dumps({'offset': offset}).encode()).decode()


def _offset(token) -> int:
    if token in (None, ''):
        return 0
    try:
        doc = json.loads(base64.b64decode(str(token), validate=True))
        offset = int(doc['offset'])
        if offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError):
        raise invalid(f'Invalid page token {str(token)[:40]!r}: pass the next_page_token of '
                      f'the previous answer.') from None


def _page(items: list, token, max_results: int) -> tuple[list, str | None]:
    start = _offset(token)
    page = items[start:start + max_results]
    more = start + max_results < len(items)
    return page, (_token(start + max_results) if more else None)


def _input_id(entry: dict) -> tuple:
    ds = entry['dataset']
    context = [t.get('value') for t in entry.get('tags', [])
               if t.get('key') == 'mlflow.data.context']
    return ds.get('name'), ds.get('digest'), tuple(context)


def _clause_value(c: filters.Clause, v: views.RunView):
    if c.entity == 'metrics':
        found = v.metrics.get(c.key)
        return None if found is None else found[0]
    if c.entity == 'params':
        return v.mparams.get(c.key)
    if c.entity == 'tags':
        return v.tags.get(c.key)
    if c.entity == 'attributes':
        return v.attribute(c.key)
    return None


def _clause_matches(c: filters.Clause, v: views.RunView) -> bool:
    if c.entity == 'datasets':
        for entry in v.datasets():
            ds = entry['dataset']
            actual = ds.get(c.key) if c.key != 'context' else next(
                (t.get('value') for t in entry.get('tags', [])
                 if t.get('key') == 'mlflow.data.context'), None)
            if filters.matches(c, actual):
                return True
        return False
    return filters.matches(c, _clause_value(c, v))


def _sort_runs(runs: list[views.RunView], order: list[filters.OrderKey]) -> None:
    """MLflow's order: the clauses given, then start_time DESC, then run_id; runs lacking a
    key, then NaN values, come last whichever the direction."""
    keys = list(order)
    if not any(k.entity == 'attributes' and k.key == 'start_time' for k in keys):
        keys.append(filters.OrderKey('attributes', 'start_time', False))
    keys.append(filters.OrderKey('attributes', 'run_id', True))
    if not order:   # the default order, read straight off the rows
        runs.sort(key=lambda v: v.row['hash'])
        runs.sort(key=lambda v: -(v.row.get('creation_time') or 0.0))
        return
    for k in reversed(keys):
        probe = filters.Clause(k.entity, k.key, '=', None)
        values = {id(v): _clause_value(probe, v) for v in runs}

        present: list[views.RunView] = []
        nan: list[views.RunView] = []
        absent: list[views.RunView] = []
        for v in runs:
            x = values[id(v)]
            (absent if x is None else nan if isinstance(x, float) and math.isnan(x)
             else present).append(v)
        present.sort(key=_by_id(values), reverse=not k.ascending)
        runs[:] = present + nan + absent   # NaN after every number, as MLflow's server


def _by_id(values: dict[int, Any]) -> Callable[[Any], Any]:
    return lambda v: values[id(v)]


def _experiment_sort_key(attr: str) -> Callable[[Any], Any]:
    if attr == 'name':
        return lambda e: to_mlflow_name(e.name)
    if attr == 'experiment_id':
        return lambda e: int(e.id)
    return lambda e: getattr(e, attr)


def _experiment_order(items) -> list[tuple[str, bool]]:
    out = []
    for item in _list(items, 'order_by'):
        parts = str(item).split()
        if not parts or len(parts) > 2:
            raise invalid(f'Invalid order_by clause {item!r}.')
        attr = parts[0].split('.', 1)[-1] if parts[0].startswith(('attribute.', 'attributes.')) \
            else parts[0]
        if attr not in ('name', 'experiment_id', 'creation_time', 'last_update_time'):
            raise invalid(f'Invalid order_by clause {item!r}: experiments are ordered by name, '
                          f'experiment_id, creation_time or last_update_time.')
        asc = True if len(parts) == 1 else parts[1].upper() == 'ASC'
        if len(parts) == 2 and parts[1].upper() not in ('ASC', 'DESC'):
            raise invalid(f'Invalid order_by clause {item!r}: ASC or DESC.')
        out.append((attr, asc))
    if not any(a == 'creation_time' for a, _ in out):
        out.append(('creation_time', False))
    out.append(('experiment_id', True))
    return out
