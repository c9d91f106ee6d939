"""Exporting runs and their points to files: Parquet, CSV or JSON lines (docs/export.md).

An export is a folder holding two files:

- ``runs.jsonl``: one JSON object per run (``hash``, ``name``, ``experiment``,
  ``description``, ``tags``, ``archived``, ``creation_time``, ``end_time``, ``params``).
- ``metrics.parquet`` | ``metrics.csv`` | ``metrics.jsonl``: one row per point, with the
  columns of ``METRIC_COLUMNS``: ``run_hash``, ``metric_name``, ``context`` (the context as
  canonical JSON), ``step`` (int64), ``value`` (float64 in Parquet; the number as written
  in CSV and JSON lines, so int series stay exact there), ``epoch`` (int64, empty when the
  point has none), ``timestamp`` (float64, seconds since 1970 UTC).

Parquet needs ``pyarrow`` (imported only when that format is asked for); CSV and JSON
lines need nothing. ``import_export`` (``aim runs import``) reads an export back.
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from aim.errors import AimError
from aim.sdk.trace import NO_EPOCH

if TYPE_CHECKING:
    from aim.sdk.repo import Repo
    from aim.sdk.run import Run
    from aim.sdk.trace import Metric

FORMATS = ('parquet', 'csv', 'jsonl')
METRIC_COLUMNS = ('run_hash', 'metric_name', 'context', 'step', 'value', 'epoch', 'timestamp')
RUNS_FILE = 'runs.jsonl'
SCHEMA_VERSION = '1'


@dataclass
class ExportReport:
    output: str
    runs: int = 0
    series: int = 0
    points: int = 0


def _run_record(run: Run) -> dict[str, Any]:
    return {'hash': run.hash, 'name': run.name, 'experiment': run.experiment,
            'description': run.description, 'tags': run.tags, 'archived': run.archived,
            'creation_time': run.creation_time, 'end_time': run.end_time,
            'notes': run.notes, 'params': run[...]}


def _series_points(metric: Metric):
    steps, values, epochs, times = metric._load()
    return (np.asarray(steps, dtype=np.int64), np.asarray(values), np.asarray(epochs),
            np.asarray(times, dtype=np.float64))


class _CsvSink:
    def __init__(self, path: str):
        self.file = open(path, 'w', newline='', encoding='utf-8')
        self.writer = csv.writer(self.file)
        self.writer.writerow(METRIC_COLUMNS)

    def write(self, run_hash, name, context, steps, values, epochs, times) -> None:
        rows = zip(steps.tolist(), values.tolist(), epochs.tolist(), times.tolist())
        self.writer.writerows(
            (run_hash, name, context, s, repr(v) if isinstance(v, float) else v,
             '' if e == NO_EPOCH else e, repr(t)) for s, v, e, t in rows)

    def close(self) -> None:
        self.file.close()


class _JsonlSink:
    def __init__(self, path: str):
        self.file = open(path, 'w', encoding='utf-8')

    def write(self, run_hash, name, context, steps, values, epochs, times) -> None:
        dumps = json.dumps
        head = f'{{"run_hash": {dumps(run_hash)}, "metric_name": {dumps(name)}, ' \
               f'"context": {dumps(context)}, '
        self.file.writelines(
            head + f'"step": {s}, "value": {dumps(v)}, '
                   f'"epoch": {"null" if e == NO_EPOCH else e}, "timestamp": {t!r}}}\n'
            for s, v, e, t in zip(steps.tolist(), values.tolist(), epochs.tolist(),
                                  times.tolist()))

    def close(self) -> None:
        self.file.close()


class _ParquetSink:
    """Buffers points and writes a row group every ``ROWS`` points."""
    ROWS = 1_000_000

    def __init__(self, path: str):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise AimError('Parquet export needs pyarrow: pip install pyarrow (or choose '
                           '--format csv or jsonl).') from None
        self.pa = pa
        self.schema = pa.schema([
            ('run_hash', pa.string()), ('metric_name', pa.string()), ('context', pa.string()),
            ('step', pa.int64()), ('value', pa.float64()), ('epoch', pa.int64()),
            ('timestamp', pa.float64())], metadata={'aimkit.export.schema': SCHEMA_VERSION})
        self.writer = pq.ParquetWriter(path, self.schema)
        self.parts: list[tuple] = []
        self.rows = 0

    def write(self, run_hash, name, context, steps, values, epochs, times) -> None:
        self.parts.append((run_hash, name, context, steps, values, epochs, times))
        self.rows += len(steps)
        if self.rows >= self.ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.parts:
            return
        pa = self.pa
        n = [len(p[3]) for p in self.parts]
        epochs = np.concatenate([p[5] for p in self.parts]).astype(np.int64)
        columns = [
            pa.DictionaryArray.from_arrays(
                np.repeat(np.arange(len(n), dtype=np.int32), n),
                pa.array([p[i] for p in self.parts])).cast(pa.string())
            for i in range(3)]
        columns += [
            pa.array(np.concatenate([p[3] for p in self.parts]), pa.int64()),
            pa.array(np.concatenate([np.asarray(p[4], dtype=np.float64)
                                     for p in self.parts]), pa.float64()),
            pa.array(epochs, pa.int64(), mask=epochs == NO_EPOCH),
            pa.array(np.concatenate([p[6] for p in self.parts]), pa.float64())]
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))
        self.parts, self.rows = [], 0

    def close(self) -> None:
        self._flush()
        self.writer.close()


_SINKS: dict[str, Any] = {'parquet': _ParquetSink, 'csv': _CsvSink, 'jsonl': _JsonlSink}


def export_metrics(runs_and_metrics: Iterable[tuple[Run, list[Metric]]], output: str,
                   fmt: str = 'parquet') -> ExportReport:
    """Write ``runs.jsonl`` and ``metrics.<fmt>`` into the folder ``output`` (created if
    needed) for each (run, its metrics to export)."""
    if fmt not in FORMATS:
        raise ValueError(f'unknown export format {fmt!r}: choose one of {", ".join(FORMATS)}')
    os.makedirs(output, exist_ok=True)
    report = ExportReport(os.path.abspath(output))
    sink = _SINKS[fmt](os.path.join(output, f'metrics.{fmt}'))
    try:
        with open(os.path.join(output, RUNS_FILE), 'w', encoding='utf-8') as runs_file:
            for run, metrics in runs_and_metrics:
                runs_file.write(json.dumps(_run_record(run), ensure_ascii=False) + '\n')
                report.runs += 1
                for metric in metrics:
                    steps, values, epochs, times = _series_points(metric)
                    sink.write(run.hash, metric.name, metric.context_json, steps, values,
                               epochs, times)
                    report.series += 1
                    report.points += len(steps)
    finally:
        sink.close()
    return report


def export_runs(repo: Repo, run_hashes: Iterable[str], output: str,
                fmt: str = 'parquet') -> ExportReport:
    """Export whole runs (every series) of ``repo``."""
    def pairs() -> Iterator[tuple[Run, list[Metric]]]:
        for run_hash in run_hashes:
            run = repo.get_run(run_hash)
            if run is None:
                raise AimError(f'No run {run_hash!r} in the repository at {repo.path}.')
            yield run, run.metrics()
    return export_metrics(pairs(), output, fmt)


# reading an export back ------------------------------------------------------------------
def read_metric_rows(path: str) -> Iterator[dict[str, Any]]:
    """The point rows of a ``metrics.<fmt>`` file, as dicts of METRIC_COLUMNS."""
    if path.endswith('.parquet'):
        import pyarrow.parquet as pq
        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()
    elif path.endswith('.csv'):
        with open(path, newline='', encoding='utf-8') as f:
            for row in csv.DictReader(f):
                value = row['value']
                yield {'run_hash': row['run_hash'], 'metric_name': row['metric_name'],
                       'context': row['context'], 'step': int(row['step']),
                       'value': float(value) if any(c in value for c in '.eEna') else
                       int(value),
                       'epoch': int(row['epoch']) if row['epoch'] else None,
                       'timestamp': float(row['timestamp'])}
    else:
        with open(path, encoding='utf-8') as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)   # NaN and Infinity as Python's json writes them


def find_metrics_file(folder: str) -> str:
    for fmt in FORMATS:
        path = os.path.join(folder, f'metrics.{fmt}')
        if os.path.exists(path):
            return path
    raise AimError(f'No metrics.parquet, metrics.csv or metrics.jsonl in {folder}: is it a '
                   f'folder written by `aim runs export`?')


__all__ = ['FORMATS', 'METRIC_COLUMNS', 'ExportReport', 'export_metrics', 'export_runs',
           'find_metrics_file', 'read_metric_rows']
