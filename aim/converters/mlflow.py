"""``aim convert mlflow``: MLflow runs (a file store or a database store) into aim runs.

The store is read through MLflow's own client (``mlflow.MlflowClient``), so every store
MLflow reads works: a ``mlruns`` folder, ``file:///...``, ``sqlite:///...``.

Each MLflow run becomes one aim run: the MLflow experiment's name is the experiment,
``run_name`` the name, the ``mlflow.note.content`` tag the description; params go to the
``hparams`` param (strings that spell a number become numbers: MLflow stores every param
as a string); each metric key becomes a metric with an empty context, keeping MLflow's
steps and timestamps (several values at one step: the last one logged is kept, as a step
holds one value in aim); the run id, experiment, status, tags and artifact URI go to the
``mlflow`` param. Deleted runs are left out.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from aim.converters.importing import ImportedRun, import_hash, needs_import
from aim.converters.tensorboard import ConvertReport
from aim.errors import AimError


def _client(uri: str):
    from mlflow.tracking import MlflowClient
    if '://' not in uri and ':' not in uri[:3]:
        if not os.path.isdir(uri):
            raise AimError(f'No MLflow store at {os.path.abspath(uri)}: give the mlruns folder '
                           f'or a tracking URI (file:///..., sqlite:///...).')
        uri = 'file://' + os.path.abspath(uri)
    if uri.startswith('sqlite:///'):
        path = uri[len('sqlite:///'):].split('?', 1)[0]
        if path and path != ':memory:' and not os.path.isfile(path):
            # MLflow would create an empty store there
            raise AimError(f'No MLflow database at {os.path.abspath(path)} (from {uri}).')
    if uri.startswith('file:'):
        # MLflow 3 refuses to open a file store unless told to (it wants users to migrate
        # to a database); reading one to convert it is what a migration needs
        os.environ.setdefault('MLFLOW_ALLOW_FILE_STORE', 'true')
    return MlflowClient(tracking_uri=uri)


def list_mlflow_runs(uri: str, experiment: str | None = None) -> list:
    """The (active) MLflow runs of the store at ``uri``, oldest first; only those of
    ``experiment`` (a name or an id) when given."""
    from mlflow.entities import ViewType
    client = _client(uri)
    experiments = client.search_experiments(view_type=ViewType.ALL)
    if experiment is not None:
        experiments = [e for e in experiments
                       if experiment in (e.name, str(e.experiment_id))]
        if not experiments:
            raise AimError(f'No MLflow experiment named {experiment!r} at {uri}.')
    names = {e.experiment_id: e.name for e in experiments}
    runs: list = []
    token = None
    ids = list(names)
    if not ids:
        return []
    while True:
        page = client.search_runs(ids, run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    for run in runs:
        run._aim_experiment_name = names.get(run.info.experiment_id)
    runs.sort(key=lambda r: (r.info.start_time or 0, r.info.run_id))
    return runs


def _param_value(text: str) -> Any:
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        if kind is float and not math.isfinite(value):
            return text
        return value
    return text


def _fingerprint(run) -> list:
    return [run.info.status, run.info.end_time, sorted(run.data.metrics.items()),
            len(run.data.params), len(run.data.tags)]


def convert_mlflow(repo, uri: str, runs: list | None = None, *,
                   experiment: str | None = None,
                   progress: Callable[[str], None] | None = None) -> ConvertReport:
    """Convert the MLflow runs (``list_mlflow_runs``) into ``repo``; runs converted before
    and unchanged since are left as they are."""
    client = _client(uri)
    if runs is None:
        runs = list_mlflow_runs(uri, experiment)
    report = ConvertReport()
    for run in runs:
        run_hash = import_hash('mlflow', run.info.run_id)
        try:
            if needs_import(repo, run_hash, _fingerprint(run)):
                _write_run(repo, client, run, run_hash, report)
            else:
                report.unchanged.append(run_hash)
        except Exception as e:  # one bad run does not stop the others
            report.failed.append((run.info.run_id, f'{type(e).__name__}: {e}'))
        if progress:
            progress(run.info.run_id)
    return report


def _write_run(repo, client, run, run_hash: str, report: ConvertReport) -> None:
    info, data = run.info, run.data
    tags = dict(data.tags)
    name = info.run_name or tags.get('mlflow.runName') or info.run_id
    imported = ImportedRun(repo, run_hash, source='mlflow', origin=info.run_id,
                           fingerprint=_fingerprint(run),
                           experiment=getattr(run, '_aim_experiment_name', None) or None,
                           name=name)
    try:
        note = tags.get('mlflow.note.content')
        if note:
            imported.run.description = note
        if data.params:
            imported.run['hparams'] = {k: _param_value(v) for k, v in data.params.items()}
        imported.run['mlflow'] = {
            'run_id': info.run_id, 'experiment_id': info.experiment_id,
            'experiment_name': getattr(run, '_aim_experiment_name', None),
            'status': info.status, 'artifact_uri': info.artifact_uri, 'tags': tags}
        for key in sorted(data.metrics):
            history = sorted(client.get_metric_history(info.run_id, key),
                             key=lambda m: (m.step, m.timestamp))
            imported.series(key, None, [m.step for m in history],
                            [m.value for m in history],
                            [m.timestamp / 1000.0 for m in history])
    except BaseException:
        imported.abandon()
        raise
    start = info.start_time / 1000.0 if info.start_time else None
    end = info.end_time / 1000.0 if info.end_time else None
    imported.finish(start, end)
    report.points += imported.points
    report.converted.append(run_hash)


__all__ = ['convert_mlflow', 'list_mlflow_runs']
