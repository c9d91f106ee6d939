"""A whole run as one document (its rows, chunk blobs as they are stored): how runs are
copied and moved between a server and a local repository, or between two servers."""
from __future__ import annotations

from typing import Any

from aim.errors import MissingRunError, RepositoryError, RunLockedError
from aim.storage import overview


def export_run(store, run_hash: str) -> dict[str, Any]:
    if not store.run_exists(run_hash):
        raise MissingRunError(f'Cannot find run {run_hash!r} in {store.root}.', run_hash)
    if store.is_active(run_hash):
        raise RunLockedError(f'Run {run_hash} is still being written; copy it once it has '
                             f'finished.', run_hash)
    db = store.db
    series = []
    for sid, *rest in db.query('SELECT id, name, context, count, first_step, last_step, last, '
                               'min, max, last_time, dtype FROM series WHERE run_hash=?',
                               (run_hash,)):
        chunks = db.query('SELECT seq, first_step, last_step, n, steps, vals, epochs, times '
                          'FROM chunks WHERE series_id=?', (sid,))
        overviews = db.query(f'SELECT {overview.COLUMNS} FROM overviews WHERE series_id=?',
                             (sid,))
        series.append({'row': list(rest), 'chunks': [list(c) for c in chunks],
                       'overviews': [list(o[1:]) for o in overviews]})
    return {
        'hash': run_hash,
        'props': [list(r) for r in db.query('SELECT key, value FROM run_props WHERE run_hash=?',
                                            (run_hash,))],
        'logs': [list(r) for r in db.query('SELECT id, time, line FROM logs WHERE run_hash=?',
                                           (run_hash,))],
        'series': series,
    }


def import_run(store, doc: dict[str, Any]) -> None:
    from aim.storage.journal import RUN_HASH_RE
    run_hash = doc.get('hash')
    if not isinstance(run_hash, str) or not RUN_HASH_RE.match(run_hash):
        raise RepositoryError(f'bad run hash in the run document: {run_hash!r:.80}')
    if store.run_exists(run_hash):
        raise RepositoryError(f'Run {run_hash} already exists in {store.root}.', store.root)
    try:
        with store.db.write() as conn:
            conn.executemany('INSERT INTO run_props VALUES(?, ?, ?)',
                             [(run_hash, k, v) for k, v in doc['props']])
            for s in doc['series']:
                cur = conn.execute('INSERT INTO series(run_hash, name, context, count, '
                                   'first_step, last_step, last, min, max, last_time, dtype) '
                                   'VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                                   (run_hash, *s['row']))
                new_id = cur.lastrowid
                conn.executemany('INSERT INTO chunks VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)',
                                 [(new_id, *c) for c in s['chunks']])
                conn.executemany(overview.INSERT, [(new_id, *o) for o in s['overviews']])
            conn.executemany('INSERT INTO logs VALUES(?, ?, ?, ?)',
                             [(run_hash, *row) for row in doc['logs']])
            store._index_run(conn, store.run_data(run_hash))
    except (KeyError, TypeError, ValueError) as e:
        raise RepositoryError(f'the document of run {run_hash} is incomplete ({e})') from None
