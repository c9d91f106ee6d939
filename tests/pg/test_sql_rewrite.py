"""The storage layer's SQLite SQL as PostgreSQL runs it (aim/storage/postgres.py: pg_sql),
checked as text and against a real database."""
from __future__ import annotations

import json

import pytest

from aim.storage import postgres
from aim.storage.postgres import pg_sql


@pytest.mark.parametrize('sqlite, expected', [
    ('SELECT a FROM t WHERE x=? AND y=?', 'SELECT a FROM t WHERE x=%s AND y=%s'),
    ("SELECT '?', 7 % 2 FROM t WHERE x=?", "SELECT '?', 7 %% 2 FROM t WHERE x=%s"),
    ('INSERT OR IGNORE INTO series(run_hash, name, context) VALUES(?, ?, ?)',
     'INSERT INTO series(run_hash, name, context) VALUES(%s, %s, %s) ON CONFLICT DO NOTHING'),
    ('INSERT OR REPLACE INTO logs VALUES(?, ?, ?, ?)',
     'INSERT INTO logs(run_hash, id, time, line) VALUES(%s, %s, %s, %s) '
     'ON CONFLICT (run_hash, id) DO UPDATE SET time=EXCLUDED.time, line=EXCLUDED.line'),
    ('SELECT 1 FROM series WHERE run_hash=? AND +name IN (SELECT value FROM json_each(?))',
     'SELECT 1 FROM series WHERE run_hash=%s AND name = ANY(%s)'),
    ('SELECT COALESCE(MAX(id), -1) + 1 FROM logs', 'SELECT COALESCE(MAX(id), -1) + 1 FROM logs'),
])
def test_rewrites(sqlite, expected):
    assert pg_sql(sqlite)[0] == expected


def test_json_lists_become_arrays_and_series_inserts_return_their_id(pg_url):
    db = postgres.PgDatabase(pg_url)
    with db.write() as conn:
        first = conn.execute('INSERT INTO series(run_hash, name, context) VALUES(?, ?, ?)',
                             ('r', 'loss', '{}')).lastrowid
        second = conn.execute('INSERT INTO series(run_hash, name, context) VALUES(?, ?, ?)',
                              ('r', 'acc', '{}')).lastrowid
        conn.execute('INSERT OR IGNORE INTO series(run_hash, name, context) VALUES(?, ?, ?)',
                     ('r', 'acc', '{}'))                         # already there: ignored
        conn.executemany('INSERT OR REPLACE INTO logs VALUES(?, ?, ?, ?)',
                         [('r', 0, 1.0, 'a'), ('r', 1, 2.0, 'b'), ('r', 0, 3.0, 'c')])
    assert second == first + 1
    assert db.query('SELECT id, name FROM series WHERE id IN (SELECT value FROM json_each(?)) '
                    'ORDER BY id', (json.dumps([first, second]),)) == \
        [(first, 'loss'), (second, 'acc')]
    assert db.query('SELECT name FROM series WHERE +name IN (SELECT value FROM json_each(?))',
                    (json.dumps(['acc', 'nope']),)) == [('acc',)]
    assert db.query('SELECT id, time, line FROM logs ORDER BY id') == \
        [(0, 3.0, 'c'), (1, 2.0, 'b')]
    assert db.query("SELECT 7 % 3, 'a%b?'") == [(1, 'a%b?')]
    db.close()


def test_a_forked_child_never_ends_the_parents_session(pg_url):
    """A DataLoader worker or a sweep forks a process that holds the parent's connection:
    the child opens its own, and the parent's session survives the child's exit."""
    import os

    from aim import Repo
    repo = Repo(pg_url, init=True)
    assert repo.total_runs_count() == 0              # the parent's connection is open
    pid = os.fork()
    if pid == 0:                                     # the child: reads, then exits with GC
        try:
            code = 0 if Repo(pg_url).total_runs_count() == 0 and \
                repo.total_runs_count() == 0 else 1
        except BaseException:
            code = 2
        import gc
        repo._store.db.close()
        gc.collect()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    conn = repo._store.db.conn
    assert not conn.raw.broken
    assert repo.total_runs_count() == 0              # the same session still answers
    assert repo._store.db.conn is conn
