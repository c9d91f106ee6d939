import os
import sqlite3


def damage_chunks(repo_dir, run_hash):
    """Replace a run's stored values with a truncated zlib stream."""
    conn = sqlite3.connect(repo_dir / '.aim' / 'repo.db')
    with conn:
        conn.execute("UPDATE chunks SET vals = x'789c0bad' WHERE series_id IN "
                     "(SELECT id FROM series WHERE run_hash=?)", (run_hash,))
    conn.close()


def test_check_of_an_intact_repository(repo_dir, make_run, invoke):
    for _ in range(3):
        make_run(repo_dir)
    result = invoke('storage', 'check', '--repo', repo_dir)
    assert result.exit_code == 0, result.output
    assert 'All 3 runs are intact.' in result.stdout


def test_check_finds_undecodable_series_data_unless_quick(repo_dir, make_run, invoke, reopen):
    good, bad = make_run(repo_dir), make_run(repo_dir)
    damage_chunks(repo_dir, bad.hash)
    quick = invoke('storage', 'check', '--repo', repo_dir, '--quick')
    assert quick.exit_code == 0, quick.output
    full = invoke('storage', 'check', '--repo', repo_dir)
    assert full.exit_code == 1
    assert f'DAMAGED {bad.hash}' in full.stdout and "'loss'" in full.stdout
    assert good.hash not in full.stdout
    # the damaged run does not make the other one unreadable
    metric = reopen(repo_dir).get_run(good.hash).get_metric('loss', {'subset': 'train'})
    assert metric.values.values_list() == [i * 0.5 for i in range(10)]
    assert invoke('runs', '--repo', repo_dir, 'rm', bad.hash, '-y').exit_code == 0
    assert invoke('storage', 'check', '--repo', repo_dir).exit_code == 0


def test_check_reports_an_index_out_of_step_with_the_run_files(repo_dir, make_run, invoke):
    run = make_run(repo_dir)
    conn = sqlite3.connect(repo_dir / '.aim' / 'repo.db')
    with conn:
        conn.execute('DELETE FROM runs')
    conn.close()
    result = invoke('storage', 'check', '--repo', repo_dir)
    assert result.exit_code == 1
    assert 'not in the index' in result.stdout and run.hash in result.stdout
    assert 'aim storage reindex' in result.stdout
    assert invoke('storage', 'reindex', '--repo', repo_dir).exit_code == 0
    assert invoke('storage', 'check', '--repo', repo_dir).exit_code == 0


def test_check_notes_long_series_without_overviews_and_reindex_rebuilds_them(
        repo_dir, make_run, invoke):
    """A repository written before chunk overviews (here: their rows deleted) reads fine;
    check says charts of its long series read every point, and reindex fixes that."""
    make_run(repo_dir, points=5000)
    assert invoke('storage', 'check', '--repo', repo_dir).exit_code == 0
    conn = sqlite3.connect(repo_dir / '.aim' / 'repo.db')
    with conn:
        conn.execute('DELETE FROM overviews WHERE seq = 1')
    conn.close()
    result = invoke('storage', 'check', '--repo', repo_dir)
    assert result.exit_code == 0  # nothing is damaged
    assert 'NOTE    1 series lack current chunk overviews' in result.stdout
    assert 'aim storage reindex' in result.stdout
    assert invoke('storage', 'reindex', '--repo', repo_dir).exit_code == 0
    assert 'NOTE' not in invoke('storage', 'check', '--repo', repo_dir).stdout


def test_check_outside_a_repository(tmp_path, invoke):
    result = invoke('storage', 'check', '--repo', tmp_path)
    assert result.exit_code != 0 and 'aim init' in result.output


def test_vacuum_reclaims_space_and_keeps_every_value(repo_dir, make_run, invoke, reopen):
    from aim.storage.maintenance import directory_size

    keep = make_run(repo_dir, points=20000)
    dropped = make_run(repo_dir, points=20000)
    live = make_run(repo_dir, close=False)
    # a lock file left behind by a deleted run, and a copy that was interrupted
    stale_lock = repo_dir / '.aim' / 'locks' / 'deadbeefdeadbeefdeadbeef.lock'
    stale_lock.write_text('12345')
    stale_tmp = repo_dir / '.aim' / 'cafe.db.tmp'
    stale_tmp.write_bytes(b'partial')
    os.utime(stale_tmp, (0, 0))
    assert invoke('runs', '--repo', repo_dir, 'rm', dropped.hash, '-y').exit_code == 0
    before = directory_size(str(repo_dir / '.aim'))

    result = invoke('storage', 'vacuum', '--repo', repo_dir)
    assert result.exit_code == 0, result.output
    assert 'Compacted 1 database file(s); freed' in result.stdout
    assert directory_size(str(repo_dir / '.aim')) < before
    assert not stale_lock.exists() and not stale_tmp.exists()

    live.track(99.0, name='loss', step=10, context={'subset': 'train'})
    live.close()
    repo = reopen(repo_dir)
    values = repo.get_run(keep.hash).get_metric('loss', {'subset': 'train'}).values.values_list()
    assert values == [i * 0.5 for i in range(20000)]
    assert repo.get_run(live.hash).get_metric('loss', {'subset': 'train'}).last_value == 99.0
    assert invoke('storage', 'check', '--repo', repo_dir).exit_code == 0


def test_full_vacuum_rewrites_the_file_and_keeps_every_value(repo_dir, make_run, invoke,
                                                             reopen):
    """--full stores each table in one piece (SQLite VACUUM): overview rows written between
    chunks end up together, ordered as the table; nothing changes for readers."""
    import sqlite3

    runs = [make_run(repo_dir, points=9000) for _ in range(3)]

    def overview_pages():
        conn = sqlite3.connect(repo_dir / '.aim' / 'repo.db')
        try:
            return [p for (p,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'overviews' ORDER BY path")]
        except sqlite3.OperationalError:  # SQLite built without dbstat
            return None
        finally:
            conn.close()

    before = overview_pages()
    result = invoke('storage', 'vacuum', '--repo', repo_dir, '--full')
    assert result.exit_code == 0, result.output
    after = overview_pages()
    if before is not None:
        def runs_of(pages):  # stretches of consecutive page numbers
            pages = sorted(pages)
            return 1 + sum(b != a + 1 for a, b in zip(pages, pages[1:]))
        assert runs_of(after) <= 2  # the root page, then every other page in one run
        assert runs_of(before) > runs_of(after)
    repo = reopen(repo_dir)
    for run in runs:
        values = repo.get_run(run.hash).get_metric('loss', {'subset': 'train'}).values
        assert values.values_list() == [i * 0.5 for i in range(9000)]
    assert 'NOTE' not in invoke('storage', 'check', '--repo', repo_dir).stdout


def test_check_reports_pages_of_the_repository_database_overwritten_with_junk(
        repo_dir, make_run, invoke):
    runs = [make_run(repo_dir, points=20000) for _ in range(3)]
    db = repo_dir / '.aim' / 'repo.db'
    conn = sqlite3.connect(db)
    conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    conn.close()
    size = db.stat().st_size
    with open(db, 'r+b') as f:  # junk over pages in the middle, away from the schema
        f.seek(size // 2 // 4096 * 4096)
        f.write(b'\xde\xad\xbe\xef' * 4096)
    result = invoke('storage', 'check', '--repo', repo_dir)
    assert result.exit_code == 1
    assert 'REPO    repo.db: SQLite reports damage' in result.stdout
    assert 'Traceback' not in result.output
    assert 'cp "*" --destination NEW' in result.output  # the way out: salvage what reads
    damaged = [line.split()[1].rstrip(':') for line in result.stdout.splitlines()
               if line.startswith('DAMAGED')]
    assert set(damaged) <= {r.hash for r in runs}


def test_reindex_names_a_run_whose_params_are_not_json_and_keeps_it_listed(
        repo_dir, make_run, invoke, reopen):
    good, bad = make_run(repo_dir, name='good'), make_run(repo_dir, name='bad')
    conn = sqlite3.connect(repo_dir / '.aim' / 'repo.db')
    with conn:
        conn.execute("UPDATE run_props SET value='{\"lr\": ' WHERE run_hash=? "
                     "AND key='params'", (bad.hash,))
    conn.close()
    result = invoke('storage', 'reindex', '--repo', repo_dir)
    assert result.exit_code == 1
    assert f'SKIPPED {bad.hash}: its params are not valid JSON' in result.output
    assert good.hash not in result.output
    assert 'the params of its old index row are kept' in result.output
    repo = reopen(repo_dir)
    assert {r.hash for r in repo.iter_runs()} == {good.hash, bad.hash}
    assert set(repo.query_runs('run.hparams.lr == 0.01').hashes()) == {good.hash, bad.hash}


def test_check_notes_files_that_are_not_part_of_the_repository(repo_dir, make_run, invoke):
    make_run(repo_dir)
    (repo_dir / '.aim' / 'old-copy.db').write_bytes(b'\0' * 4096)
    result = invoke('storage', 'check', '--repo', repo_dir)
    assert result.exit_code == 0, result.output
    assert 'NOTE' in result.stdout and 'old-copy.db' in result.stdout
    assert 'All 1 runs are intact.' in result.stdout


def test_reindex_of_an_unreadable_database_changes_nothing_and_says_what_to_do(
        repo_dir, make_run, invoke):
    make_run(repo_dir)
    db = repo_dir / '.aim' / 'repo.db'
    conn = sqlite3.connect(db)
    conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    conn.close()
    os.truncate(db, 4096)
    damaged = db.read_bytes()
    result = invoke('storage', 'reindex', '--repo', repo_dir)
    assert result.exit_code == 1
    assert 'repo.db' in result.output and 'aim storage check' in result.output
    assert db.read_bytes() == damaged
