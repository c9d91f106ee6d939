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
    from aim.storage import objects
    object_series = []
    blobs: dict[str, bytes] = {}
    for row in objects.list_series(db, run_hash):
        chunks = db.query('SELECT seq, first_step, last_step, n, data FROM object_chunks '
                          'WHERE series_id=? ORDER BY seq', (row['id'],))
        digests = [r[0] for r in db.query('SELECT digest FROM object_blobs WHERE series_id=?',
                                          (row['id'],))]
        for digest in digests:
            if digest not in blobs:
                blobs[digest] = store.blobs.get(digest)
        object_series.append({'row': [row[k] for k in objects.SERIES_FIELDS[2:]],
                              'chunks': [[c[0], c[1], c[2], c[3], bytes(c[4])] for c in chunks],
                              'digests': digests})
    return {
        'hash': run_hash,
        'objects': object_series,
        'blobs': blobs,
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
    from aim.storage.blobs import digest_of
    blobs = doc.get('blobs') or {}
    if not isinstance(blobs, dict):
        raise RepositoryError(f'the document of run {run_hash} has bad blobs')
    for digest, data in blobs.items():
        if not isinstance(data, bytes) or digest_of(data) != digest:
            raise RepositoryError(f'the document of run {run_hash}: blob {digest!r:.80} does '
                                  f'not match its bytes')
        store.blobs.put(data)        # before the rows that use them
    try:
        with store.db.write() as conn:
            for s in doc.get('objects') or []:
                name, context, kind, count, first, last, last_time = s['row']
                conn.execute('INSERT INTO object_series(run_hash, name, context, kind, count, '
                             'first_step, last_step, last_time) VALUES(?, ?, ?, ?, ?, ?, ?, ?)',
                             (run_hash, name, context, kind, count, first, last, last_time))
                sid = conn.execute('SELECT id FROM object_series WHERE run_hash=? AND name=? '
                                   'AND context=?', (run_hash, name, context)).fetchone()[0]
                conn.executemany('INSERT INTO object_chunks VALUES(?, ?, ?, ?, ?, ?)',
                                 [(sid, *c) for c in s['chunks']])
                conn.executemany('INSERT OR IGNORE INTO object_blobs VALUES(?, ?)',
                                 [(sid, d) for d in s['digests']])
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
