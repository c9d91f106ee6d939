"""``aim runs import``: runs written by ``aim runs export`` back into a repository.

Each run keeps its hash, props, params and points (steps, values, epochs, timestamps).
A run whose hash the repository already holds is left alone; one that an interrupted
import left half-written is imported again.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable

from aim.converters.importing import IMPORT_PARAM, ImportedRun, import_state
from aim.converters.tensorboard import ConvertReport
from aim.errors import AimError
from aim.sdk.export import RUNS_FILE, find_metrics_file, read_metric_rows


def _runs(folder: str) -> dict[str, dict]:
    path = os.path.join(folder, RUNS_FILE)
    if not os.path.exists(path):
        raise AimError(f'No {RUNS_FILE} in {folder}: is it a folder written by '
                       f'`aim runs export`?')
    with open(path, encoding='utf-8') as f:
        records = [json.loads(line) for line in f if line.strip()]
    return {r['hash']: r for r in records}


def import_export(repo, folder: str,
                  progress: Callable[[str], None] | None = None) -> ConvertReport:
    """Import the export in ``folder`` into ``repo`` (an ``aim.Repo``)."""
    records = _runs(folder)
    report = ConvertReport()
    wanted = set()
    for run_hash in records:
        state = import_state(repo, run_hash)
        if state is not None and (not state or state.get('complete')):
            report.unchanged.append(run_hash)       # there already
            continue
        if state is not None:
            repo.delete_run(run_hash)               # half-written by an interrupted import
        wanted.add(run_hash)
    # the rows come grouped by run, then by series: one run is open at a time
    current: ImportedRun | None = None

    def finish() -> None:
        nonlocal current
        if current is not None:
            record = records[current.run.hash]
            current.finish(record.get('creation_time'), record.get('end_time'),
                           keep_state=False)
            report.points += current.points
            report.converted.append(current.run.hash)
            if progress:
                progress(current.run.hash)
            current = None

    try:
        series: tuple | None = None
        cols: tuple[list, list, list, list] = ([], [], [], [])
        for row in read_metric_rows(find_metrics_file(folder)):
            key = (row['run_hash'], row['metric_name'], row['context'])
            if key != series:
                if current is not None and series is not None:
                    _write_series(current, series, cols)
                series, cols = key, ([], [], [], [])
                if current is None or current.run.hash != key[0]:
                    finish()
                    if key[0] in wanted:
                        wanted.discard(key[0])
                        current = _start(repo, records[key[0]], folder)
            cols[0].append(row['step'])
            cols[1].append(row['value'])
            cols[2].append(row['epoch'])
            cols[3].append(row['timestamp'])
        if current is not None and series is not None:
            _write_series(current, series, cols)
        finish()
        for run_hash in sorted(wanted):             # runs without points
            current = _start(repo, records[run_hash], folder)
            finish()
    except BaseException:
        if current is not None:
            current.abandon()
        raise
    return report


def _start(repo, record: dict, folder: str) -> ImportedRun:
    imported = ImportedRun(repo, record['hash'], source='export',
                           origin=os.path.abspath(folder), fingerprint=None,
                           experiment=record.get('experiment'), name=record.get('name'))
    run = imported.run
    run[...] = {**(record.get('params') or {}), IMPORT_PARAM: run[IMPORT_PARAM]}
    if record.get('description') is not None:
        run.description = record['description']
    if record.get('notes') is not None:
        run.notes = record['notes']
    for tag in record.get('tags') or []:
        run.add_tag(tag)
    if record.get('archived'):
        run.archived = True
    return imported


def _write_series(imported: ImportedRun, series: tuple, cols) -> None:
    if series[0] != imported.run.hash:
        return
    _, name, context = series
    steps, values, epochs, times = cols
    imported.series(name, json.loads(context) or None, steps, values, times, epochs)


__all__ = ['import_export']
