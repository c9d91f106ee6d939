"""Everything the run page shows about one run, and the edits it makes."""
from __future__ import annotations

import contextlib
import json

from aim.errors import AimError, MissingRunError
from aim.web.api_errors import ApiError
from aim.web.runs_table import PROP_COLUMNS, params_of, run_props

SYSTEM_PREFIX = '__system__'
# Where Aim keeps what ``log_system_params=True`` captured (git, env, packages, argv).
SYSTEM_PARAMS_KEY = '__system_params'


def _index_row(repo, run_hash: str) -> dict:
    cols = PROP_COLUMNS + ('params',)
    rows = repo.index.query(f'SELECT {", ".join(cols)} FROM runs WHERE hash = ?', [run_hash])
    if not rows:
        raise MissingRunError(f'No run {run_hash!r} in this repository; it may have been '
                              f'deleted. Go back to the runs table to pick another.', run_hash)
    return dict(zip(cols, rows[0]))


def run_info(repo, run_hash: str) -> dict:
    row = _index_row(repo, run_hash)
    props = run_props(row)
    params = params_of(row['params'])
    system = params.pop(SYSTEM_PARAMS_KEY, None)
    traces = []
    for name, context, count, first, last_step, last, lo, hi, last_time in repo.index.query(
            'SELECT name, context, count, first_step, last_step, last, min, max, last_time '
            'FROM series WHERE run_hash = ? ORDER BY name, context', [run_hash]):
        traces.append({'name': name, 'context': json.loads(context), 'count': count,
                       'first_step': first, 'last_step': last_step, 'last': last, 'min': lo,
                       'max': hi, 'last_time': last_time,
                       'system': name.startswith(SYSTEM_PREFIX)})
    active = props['active']
    with contextlib.suppress(AimError):  # liveness is a nicety; the index's guess stands
        active = run_hash in set(repo.list_active_runs())
    props['active'] = active
    if props.get('creation_time') is not None:
        end = props.get('end_time') or props.get('updated_at')
        props['duration'] = (end - props['creation_time']) if end else None
    stored = _stored_props(repo, run_hash, ('progress', 'successful_finish'))
    props['progress'] = stored.get('progress')
    props['successful_finish'] = bool(stored.get('successful_finish'))
    return {'props': props, 'params': params, 'system_params': system, 'traces': traces,
            'objects': _object_counts(repo, run_hash)}


def _stored_props(repo, run_hash: str, keys: tuple[str, ...]) -> dict:
    """Props the run's data keeps but the index does not (progress, notes ...)."""
    marks = ', '.join('?' * len(keys))
    out = {}
    for key, value in repo.index.query(f'SELECT key, value FROM run_props WHERE run_hash = ? '
                                       f'AND key IN ({marks})', [run_hash, *keys]):
        with contextlib.suppress(TypeError, ValueError):
            out[key] = json.loads(value)
    return out


def _object_counts(repo, run_hash: str) -> dict[str, int]:
    """Object series of the run by page kind (images, texts, ...): the run page's tab."""
    from aim.web.objects_api import PAGE_OF_KIND
    try:
        rows = repo.index.query('SELECT kind, COUNT(*) FROM object_series WHERE run_hash = ? '
                                'GROUP BY kind', [run_hash])
    except AimError:
        return {}   # a repository from before rich objects: no table yet
    return {PAGE_OF_KIND[k]: n for k, n in rows if k in PAGE_OF_KIND}


def run_notes(repo, run_hash: str) -> dict:
    """The run's markdown notes (the run page's Notes tab)."""
    _index_row(repo, run_hash)
    notes = _stored_props(repo, run_hash, ('notes',)).get('notes')
    return {'notes': notes if isinstance(notes, str) else ''}


def terminal_logs(repo, run_hash: str, since_line: int = 0) -> dict:
    _index_row(repo, run_hash)
    run = repo.get_run(run_hash)
    lines: list[str] = []
    logs = run.get_terminal_logs() if run is not None else None
    if logs is not None:
        if isinstance(logs, str):
            lines = logs.splitlines()
        else:
            values = getattr(logs, 'values', None)
            items = values.values_list() if values is not None and \
                hasattr(values, 'values_list') else logs
            for item in items:
                text = item if isinstance(item, str) else \
                    (item[-1] if isinstance(item, tuple) else getattr(item, 'data', str(item)))
                lines.append(str(text).rstrip('\n'))
    start = max(0, int(since_line))
    return {'lines': lines[start:], 'from_line': start, 'next_line': len(lines)}


MAX_RECORDS = 5000


def records(repo, run_hash: str, artifact_roots: list[str] | tuple = ()) -> dict:
    """The run's log records (``run.log_info`` ..., the newest MAX_RECORDS), its artifacts
    (names, where they are, and whether the UI serves them: only from the roots the
    operator named with ``aim up --artifacts-root``, since an artifact's location is
    whatever the writing client recorded), and its progress reports."""
    _index_row(repo, run_hash)
    run = repo.get_run(run_hash)
    if run is None:
        raise MissingRunError(f'No run {run_hash!r} in this repository.', run_hash)
    found = list(run.get_log_records())
    log_records = [r.json() for r in found[-MAX_RECORDS:]]
    artifacts = [{'name': a.name, 'uri': a.uri, 'path': a.path,
                  'downloadable': _served_root(a.uri, artifact_roots) is not None}
                 for a in run.artifacts.values()]
    return {'log_records': log_records, 'log_records_total': len(found),
            'artifacts': artifacts, 'progress': run.progress,
            'successful_finish': run.successful_finish}


def _served_root(uri: str, roots) -> str | None:
    """The root of ``roots`` that holds ``uri`` (a file:// path inside it once links are
    resolved, or an s3:// key under its prefix), or None."""
    import os

    from aim.sdk.artifacts import uri_path
    if not isinstance(uri, str):
        return None
    for root in roots:
        if uri.startswith('file://') and root.startswith('file://'):
            base = os.path.realpath(uri_path(root))
            path = os.path.realpath(uri_path(uri))
            if path.startswith(base.rstrip(os.sep) + os.sep):
                return root
        elif uri.startswith('s3://') and root.startswith('s3://'):
            if uri.startswith(root.rstrip('/') + '/') and '/../' not in uri:
                return root
    return None


MAX_ARTIFACT_BYTES = 1 << 30


def artifact_bytes(repo, run_hash: str, name: str, roots) -> tuple[bytes, str]:
    """The bytes of one artifact, if it lies under a served root (else 403)."""
    import os
    import tempfile
    _index_row(repo, run_hash)
    run = repo.get_run(run_hash)
    artifact = run.artifacts.get(name) if run is not None else None
    if artifact is None:
        raise ApiError(404, 'ArtifactNotFound', f'Run {run_hash} has no artifact {name!r}.')
    if _served_root(artifact.uri, roots) is None:
        raise ApiError(403, 'ArtifactNotServed', f'{artifact.uri} is not under a folder this '
                       f'UI serves artifacts from; start `aim up --artifacts-root URI` with '
                       f'the artifacts URI of your runs, or copy it with '
                       f'Repo(...).get_run(hash).artifacts[name].download(dir).')
    with tempfile.TemporaryDirectory(prefix='aim-artifact-') as tmp:
        try:
            path = artifact.download(tmp)
        except AimError as e:
            raise ApiError(404, 'ArtifactNotFound', str(e)) from None
        if os.path.getsize(path) > MAX_ARTIFACT_BYTES:
            raise ApiError(413, 'ArtifactTooLarge', f'{artifact.uri} is over 1 GiB; copy it '
                           f'with artifacts[name].download(dir).')
        with open(path, 'rb') as f:
            return f.read(), os.path.basename(path)


def _open_for_edit(repo, run_hash: str):
    from aim.sdk.run import Run
    _index_row(repo, run_hash)
    return Run(run_hash, repo=repo, system_tracking_interval=None,
               capture_terminal_logs=False, log_system_params=False)


def edit_run(repo, run_hash: str, changes: dict) -> dict:
    """Apply name / description / notes / archived / tags changes; returns the new run
    info."""
    with _open_for_edit(repo, run_hash) as run:
        if changes.get('name') is not None:
            run.name = changes['name']
        if changes.get('description') is not None:
            run.description = changes['description']
        if changes.get('notes') is not None:
            run.notes = changes['notes']
        if changes.get('archived') is not None:
            run.archived = bool(changes['archived'])
        if changes.get('tags') is not None:
            wanted = list(dict.fromkeys(changes['tags']))
            for tag in list(run.tags):
                if tag not in wanted:
                    run.remove_tag(tag)
            for tag in wanted:
                if tag not in run.tags:
                    run.add_tag(tag)
    return run_info(repo, run_hash)


def delete_runs(repo, run_hashes: list[str]) -> dict:
    missing = [h for h in run_hashes
               if not repo.index.query('SELECT 1 FROM runs WHERE hash = ?', [h])]
    if missing:
        raise ApiError(404, 'MissingRunError', f'No such runs: {", ".join(missing)}. Nothing '
                       f'was deleted; reload the runs table.', missing=missing)
    for h in run_hashes:
        ok = repo.delete_run(h)
        if ok is False:
            raise ApiError(409, 'RunLockedError', f'Run {h} could not be deleted; it may '
                           f'still be written by a live process. Stop it and try again.',
                           run_hash=h)
    return {'deleted': run_hashes}
