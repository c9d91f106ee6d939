"""aimkit runs as MLflow sees them: the run JSON, metric keys, params and tags.

The mapping (docs/mlflow.md):

- ``run.name`` is ``run_name`` / the ``mlflow.runName`` tag, ``run.description`` the
  ``mlflow.note.content`` tag, ``run.archived`` the ``deleted`` lifecycle stage.
- Params of a run an MLflow client created are ``run['params']`` (strings, as MLflow keeps
  them), with a typed copy in ``run['hparams']``; MLflow's own bookkeeping (status, every
  tag, dataset inputs; ``origin: 'mlflow'``) is ``run['mlflow']``. A run tracked with the
  SDK shows its whole params tree as dotted keys, each value as ``str()`` gives it, and a
  param MLflow logs to it is a key of that tree.
- MLflow tags that are not ``mlflow.*`` are also aimkit tags: ``key`` for an empty value,
  else ``key=value``; an aimkit tag of an SDK run is an MLflow tag the same way.
- A series is the metric ``name`` when its context is empty, else
  ``name (k=v, k2=v2)``.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from aim.mlflow_api.writes import REPEATED_JSON

# stored params tag NaN and infinities as one-key objects under this key
# (aim.storage.encoding._NONFINITE_TAG); text without it parses as plain JSON, faster
_NONFINITE_MARK = '"$float"'
_UNSET = object()
RUN_STATUSES = ('RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED')
TERMINAL = ('FINISHED', 'FAILED', 'KILLED')
RUN_NAME_TAG = 'mlflow.runName'
NOTE_TAG = 'mlflow.note.content'
USER_TAG = 'mlflow.user'
MAX_LABEL = 250
_INT = re.compile(r'[-+]?\d{1,18}')
_FLOAT = re.compile(r'[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|nan|inf|infinity)',
                    re.IGNORECASE)


def metric_key(name: str, context_json: str) -> str:
    if context_json in ('{}', '', None):
        return name
    try:
        ctx = json.loads(context_json)
    except ValueError:
        return f'{name} {context_json}'
    parts = ', '.join(f'{k}={v if isinstance(v, str) else json.dumps(v)}'
                      for k, v in sorted(ctx.items()))
    return f'{name} ({parts})'


def typed(value: str) -> Any:
    """A param string as the value it spells (number, bool, None, JSON list/dict), or
    itself."""
    text = value.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text in ('True', 'true'):
        return True
    if text in ('False', 'false'):
        return False
    if text in ('None', 'null'):
        return None
    if text[:1] in ('[', '{'):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return value


def label(key: str, value: str) -> str | None:
    """The aimkit tag standing for an MLflow tag (None: not shown as a label)."""
    if key.startswith('mlflow.'):
        return None
    text = key if value == '' else f'{key}={value}'
    if len(text) > MAX_LABEL or '\n' in text:
        return None
    return text


def label_key(text: str) -> str:
    return text.split('=', 1)[0]


def labels_to_tags(labels: list[str]) -> dict[str, str]:
    out = {}
    for text in labels:
        key, _, value = text.partition('=')
        out[key] = value
    return out


def mlflow_meta(params: Any) -> dict | None:
    if isinstance(params, dict):
        meta = params.get('mlflow')
        if isinstance(meta, dict):
            return meta
    return None


def logged_by_mlflow(meta: dict | None) -> bool:
    """Whether the run was created by an MLflow client (its params are ``run['params']``),
    not by the SDK."""
    return meta is not None and meta.get('origin') == 'mlflow'


def params_of(params: Any) -> dict[str, str]:
    meta = mlflow_meta(params)
    if logged_by_mlflow(meta):
        logged = params.get('params')
        return {k: v if isinstance(v, str) else _as_text(v)
                for k, v in (logged.items() if isinstance(logged, dict) else [])}
    out: dict[str, str] = {}
    if isinstance(params, dict):
        _flatten(params, '', out)
    return out


def _flatten(node: dict, prefix: str, out: dict[str, str]) -> None:
    for k, v in node.items():
        if not prefix and k in ('__system_params', 'mlflow'):
            continue
        key = f'{prefix}{k}'
        if isinstance(v, dict) and v:
            _flatten(v, key + '.', out)
        else:
            out[key] = _as_text(v)


def _as_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and not v:
        return '{}'
    return str(v)


def tags_of(row: dict, params: Any) -> dict[str, str]:
    meta = mlflow_meta(params)
    tags: dict[str, str] = labels_to_tags(json.loads(row.get('tags') or '[]'))
    if meta is not None and isinstance(meta.get('tags'), dict):
        stored = meta['tags']
        # a label removed in the UI removes the tag; stored values keep their full text
        for key, value in stored.items():
            if key in tags or label(key, value) is None:
                tags[key] = value
    if row.get('name') is not None:
        tags[RUN_NAME_TAG] = row['name']
    if row.get('description'):
        tags[NOTE_TAG] = row['description']
    return tags


def status_of(row: dict, meta: dict | None, is_active) -> str:
    if meta is not None and meta.get('status') in RUN_STATUSES:
        return meta['status']
    if row.get('end_time') is not None:
        return 'FINISHED'
    return 'RUNNING' if is_active(row['hash']) else 'FAILED'


def ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def float_json(value) -> Any:
    value = float(value)
    if math.isnan(value):
        return 'NaN'
    if math.isinf(value):
        return 'Infinity' if value > 0 else '-Infinity'
    return value


class RunView:
    """One run as MLflow's ``Run``: info, data (metrics, params, tags) and inputs."""

    __slots__ = ('row', '_params', '_meta', 'series', 'experiment_id', 'artifact_root',
                 '_status', '_metrics', '_mparams', '_tags', 'is_active')

    def __init__(self, row: dict, series: list[tuple], experiment_id: str, artifact_root: str,
                 is_active):
        self.row = row
        self._params: Any = None
        self._meta: Any = _UNSET
        self.series = series  # (name, context, last, last_step, last_time, count)
        self.experiment_id = experiment_id
        self.artifact_root = artifact_root
        self.is_active = is_active
        self._status: str | None = None
        self._metrics: dict[str, tuple] | None = None
        self._mparams: dict[str, str] | None = None
        self._tags: dict[str, str] | None = None

    @property
    def params(self) -> Any:
        if self._params is None:
            text = self.row.get('params') or '{}'
            try:
                if _NONFINITE_MARK in text:
                    from aim.storage.encoding import loads_params
                    self._params = loads_params(text)
                else:
                    self._params = json.loads(text)
            except ValueError:
                self._params = {}
        return self._params

    @property
    def meta(self) -> dict | None:
        if self._meta is _UNSET:
            self._meta = mlflow_meta(self.params)
        return self._meta

    @property
    def run_id(self) -> str:
        return self.row['hash']

    @property
    def status(self) -> str:
        if self._status is None:
            self._status = status_of(self.row, self.meta, self.is_active)
        return self._status

    @property
    def metrics(self) -> dict[str, tuple]:
        """key -> (value, timestamp ms, step) of the last step."""
        if self._metrics is None:
            self._metrics = {}
            for name, context, last, last_step, last_time, count in self.series:
                if context == REPEATED_JSON:   # values replaced at their step: history only
                    continue
                if last is None:
                    if not count:
                        continue
                    last = math.nan   # the index keeps NaN as NULL
                self._metrics[metric_key(name, context)] = (
                    float(last), ms(last_time) or 0, int(last_step or 0))
        return self._metrics

    @property
    def mparams(self) -> dict[str, str]:
        if self._mparams is None:
            self._mparams = params_of(self.params)
        return self._mparams

    @property
    def tags(self) -> dict[str, str]:
        if self._tags is None:
            self._tags = tags_of(self.row, self.params)
        return self._tags

    @property
    def user_id(self) -> str:
        return self.tags.get(USER_TAG) or (self.meta or {}).get('user_id') or ''

    @property
    def lifecycle_stage(self) -> str:
        return 'deleted' if self.row.get('archived') else 'active'

    @property
    def start_time(self) -> int | None:
        return ms(self.row.get('creation_time'))

    @property
    def end_time(self) -> int | None:
        if self.status not in TERMINAL:
            return None
        return ms(self.row.get('end_time') or self.row.get('updated_at'))

    @property
    def artifact_uri(self) -> str:
        return f'{self.artifact_root}/{self.run_id}/artifacts'

    def attribute(self, key: str):
        if key == 'run_id':
            return self.run_id
        if key == 'run_name':
            return self.row.get('name') or ''
        if key == 'status':
            return self.status
        if key == 'user_id':
            return self.user_id
        if key == 'artifact_uri':
            return self.artifact_uri
        if key == 'lifecycle_stage':
            return self.lifecycle_stage
        if key == 'start_time':
            t = self.start_time
            return None if t is None else float(t)
        if key == 'end_time':
            t = self.end_time
            return None if t is None else float(t)
        return None

    def info(self) -> dict:
        row = self.row
        run_id = row['hash']
        status = self.status
        out = {'run_id': run_id, 'run_uuid': run_id, 'run_name': row.get('name') or '',
               'experiment_id': self.experiment_id, 'user_id': self.user_id,
               'status': status, 'start_time': ms(row.get('creation_time')),
               'artifact_uri': f'{self.artifact_root}/{run_id}/artifacts',
               'lifecycle_stage': 'deleted' if row.get('archived') else 'active'}
        if status in TERMINAL:
            out['end_time'] = ms(row.get('end_time') or row.get('updated_at'))
        return out

    def datasets(self) -> list[dict]:
        inputs = (self.meta or {}).get('inputs')
        return list(inputs) if isinstance(inputs, list) else []

    def outputs(self) -> list[dict]:
        outputs = (self.meta or {}).get('outputs')
        return list(outputs) if isinstance(outputs, list) else []

    def to_json(self) -> dict:
        metrics = [{'key': k, 'value': v[0] if math.isfinite(v[0]) else float_json(v[0]),
                    'timestamp': v[1], 'step': v[2]} for k, v in self.metrics.items()]
        params = [{'key': k, 'value': v} for k, v in self.mparams.items()]
        tags = [{'key': k, 'value': v} for k, v in self.tags.items()]
        return {'info': self.info(),
                'data': {'metrics': metrics, 'params': params, 'tags': tags},
                'inputs': {'dataset_inputs': self.datasets()},
                'outputs': {'model_outputs': self.outputs()}}
