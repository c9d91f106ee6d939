"""Maintenance of a PostgreSQL repository and ``aim storage migrate SRC DST``.

``check`` and ``vacuum`` of a PostgreSQL repository do what they do for SQLite, with what
the database offers: every run's props, params and points are read back and compared with
the series summaries (aim/storage/maintenance.py: ``check_run_data``); vacuum removes
rows that no run owns and runs ``VACUUM (ANALYZE)`` on each table.

``migrate`` copies every run from one repository to another, between any two backends
(a directory or a ``postgresql://`` URL). A run is copied in one transaction of the
destination, so an interrupted migration leaves whole runs only; running it again skips
the runs already there (after checking they hold the same points) and copies the rest.
At the end the counts of both sides are compared: runs, series, and points per series.
Blobs (aim/storage/blobs.py) that the destination's blob store lacks are copied too.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aim.storage.maintenance import CheckReport, RunCheck, VacuumReport, check_run_data

Progress = Callable[[str], None]


def check_database_repository(store, *, thorough: bool = True,
                              progress: Progress | None = None) -> CheckReport:
    report = CheckReport(runs=[])
    index_problems: list[str] = []
    hashes = store.list_run_hashes()
    for run_hash in hashes:
        report.runs.append(RunCheck(run_hash, check_run_data(
            store, run_hash, thorough=thorough, index_problems=index_problems)))
        if progress is not None:
            progress(run_hash)
    indexed = {r[0] for r in store.db.query('SELECT hash FROM runs')}
    unindexed = sorted(set(hashes) - indexed)
    if unindexed:
        report.notes.append(f'{len(unindexed)} runs have no index row ({", ".join(unindexed[:5])}'
                            f'); `aim storage reindex` adds them')
    stale = sorted(indexed - set(hashes))
    if stale:
        report.notes.append(f'{len(stale)} index rows name runs with no data; `aim storage '
                            f'reindex` removes them')
    report.notes += [f'{p}; `aim storage reindex` rebuilds it' for p in index_problems]
    orphans = store.db.query('SELECT count(*) FROM chunks WHERE series_id NOT IN '
                             '(SELECT id FROM series)')[0][0]
    if orphans:
        report.notes.append(f'{orphans} chunks belong to no series; `aim storage vacuum` '
                            f'removes them')
    return report


def _tables_size(db) -> int:
    from aim.storage.postgres import TABLES
    return int(db.query('SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) '
                        'FROM pg_class c WHERE c.relname = ANY(?) AND c.relkind = ?',
                        (list(TABLES), 'r'))[0][0])


def vacuum_database_repository(store, progress: Progress | None = None,
                               full: bool = False) -> VacuumReport:
    """Remove rows no run owns, then VACUUM (ANALYZE) each table (``full``: VACUUM FULL,
    which rewrites the tables and holds them for the whole rewrite)."""
    from aim.storage.postgres import TABLES
    db = store.db
    report = VacuumReport(bytes_before=_tables_size(db))
    with db.write() as conn:
        for table in ('chunks', 'overviews'):
            conn.execute(f'DELETE FROM {table} WHERE series_id NOT IN (SELECT id FROM series)')
        conn.execute('DELETE FROM series WHERE run_hash NOT IN '
                     '(SELECT DISTINCT run_hash FROM run_props)')
    from aim.storage.maintenance import collect_object_garbage
    report.removed_blobs = collect_object_garbage(store)
    with db.lock:
        for table in TABLES:
            try:   # VACUUM runs outside a transaction (the connection is in autocommit)
                db.conn.raw.execute(f'VACUUM {"FULL " if full else ""}(ANALYZE) {table}')
                report.compacted.append(table)
            except Exception as exc:
                report.failed[table] = str(exc)
            if progress is not None:
                progress(table)
    report.bytes_after = _tables_size(db)
    return report


# ---------------------------------------------------------------------------------- migrate
@dataclass
class MigrateReport:
    copied: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)
    # (run hash, why): not copied this time (a live run, or different data in DST)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # the final comparison: what differs between SRC and DST (empty when they agree)
    mismatches: list[str] = field(default_factory=list)
    blobs_copied: int = 0

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.mismatches


def _fingerprint(store, run_hash: str) -> dict:
    """What a run holds, for comparing two repositories: its series and their point counts
    and step ranges (from the chunks, not the summaries)."""
    rows = store.db.query('SELECT s.name, s.context, COALESCE(SUM(c.n), 0), MIN(c.first_step), '
                          'MAX(c.last_step) FROM series s LEFT JOIN chunks c '
                          'ON c.series_id = s.id WHERE s.run_hash = ? '
                          'GROUP BY s.id, s.name, s.context', (run_hash,))
    return {(name, ctx): (int(n), first, last) for name, ctx, n, first, last in rows}


def migrate(src, dst, progress: Progress | None = None) -> MigrateReport:
    """Copy every run of ``src`` (a RepoStore) into ``dst``; see the module doc."""
    from aim.errors import AimError
    report = MigrateReport()
    hashes = src.list_run_hashes()
    there = set(dst.list_run_hashes())
    for run_hash in hashes:
        try:
            if run_hash in there:
                if _fingerprint(src, run_hash) == _fingerprint(dst, run_hash):
                    report.already_there.append(run_hash)
                else:
                    report.skipped.append((run_hash, 'the destination holds a run with this '
                                                     'hash and different points; delete one'))
            elif src.is_active(run_hash):
                report.skipped.append((run_hash, 'still being written; migrate again once '
                                                 'it has ended'))
            else:
                src.copy_run_to(run_hash, dst)
                report.copied.append(run_hash)
        except AimError as exc:
            report.skipped.append((run_hash, str(exc)))
        if progress is not None:
            progress(run_hash)
    from aim.storage.blobs import copy_blobs
    if src.blobs.location != dst.blobs.location:
        report.blobs_copied = copy_blobs(src.blobs, dst.blobs)
    done = set(report.copied) | set(report.already_there)
    for run_hash in sorted(done):
        a, b = _fingerprint(src, run_hash), _fingerprint(dst, run_hash)
        if a != b:
            report.mismatches.append(f'run {run_hash}: {len(a)} series in the source, '
                                     f'{len(b)} in the destination, or different point counts')
        elif src.run_data(run_hash).get_params_text() != dst.run_data(run_hash).get_params_text():
            report.mismatches.append(f'run {run_hash}: params differ')   # (copied verbatim)
    return report
