"""The object journal's promise with real processes: a SIGKILL loses no acknowledged object;
a record cut short by the kill is dropped; a damaged journal is quarantined, the rest kept."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from aim import Repo
from aim.storage import objects

WRITER = textwrap.dedent('''
    import sys, time
    import numpy as np
    from aim import Run, Image, Text, Distribution
    run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
    print(run.hash, flush=True)
    rng = np.random.default_rng(0)
    for i in range(100000):
        run.track(Image(np.full((16, 16, 3), i % 256, dtype=np.uint8), caption=str(i)),
                  name='img', step=i)
        run.track(Text(f'line {i}'), name='txt', step=i)
        run.track(Distribution(rng.normal(size=100) + i), name='dist', step=i)
        run.track(float(i), name='loss', step=i)
        print('ack', i, flush=True)
        if len(sys.argv) > 2 and i == int(sys.argv[2]):
            time.sleep(3600)
''')


def _kill_after(repo_dir: str, child_env, *, at: int | None = None, min_acks: int = 30):
    args = [sys.executable, '-c', WRITER, repo_dir] + ([str(at)] if at is not None else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env)
    run_hash = proc.stdout.readline().strip()
    acked = -1
    while acked < (at if at is not None else min_acks):
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        acked = int(line.split()[1])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return run_hash, acked


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_object(repo_dir, child_env):
    for _ in range(3):
        run_hash, acked = _kill_after(repo_dir, child_env, min_acks=20)
        run = Repo(repo_dir).get_run(run_hash)
        images = run.get_image_sequence('img')
        assert images is not None
        pts = list(images.values.items())
        assert [s for s, _ in pts[:acked + 1]] == list(range(acked + 1))
        for step, img in pts[:acked + 1]:
            assert img.caption == str(step)
            assert np.asarray(img.to_pil_image())[3, 3, 1] == step % 256
        texts = run.get_text_sequence('txt').values.values_list()
        assert [t.data for t in texts[:acked + 1]] == [f'line {i}' for i in range(acked + 1)]
        dists = run.get_distribution_sequence('dist')
        assert dists.values.indices_list()[:acked + 1] == list(range(acked + 1))
        assert not run.active
        # nothing left behind in the journal
        assert not os.path.exists(os.path.join(repo_dir, '.aim', 'journal', run_hash))


def test_a_record_cut_short_is_dropped_and_a_damaged_one_quarantined(repo_dir, child_env):
    run_hash, acked = _kill_after(repo_dir, child_env, at=5)
    jdir = os.path.join(repo_dir, '.aim', 'journal', run_hash)
    files = objects.journal_files(jdir)
    assert files, os.listdir(jdir)
    # a record whose copy the kill cut short: written past the committed offset, which the
    # writer moves only once the whole record is in place
    key = objects.series_key('text', 'txt', '{}')
    parts, _ = objects.pack_record(key, 6, objects.NO_EPOCH, 1.0, [(b'{}', b'never acked')])
    with open(files[-1], 'r+b') as f:
        committed = int.from_bytes(f.read(24)[16:24], 'little')
        f.seek(committed)
        f.write(b''.join(parts)[:-3])
    run = Repo(repo_dir).get_run(run_hash)          # recovery folds the journal
    texts = run.get_text_sequence('txt')
    assert texts.values.indices_list() == list(range(acked + 1))
    assert not os.path.exists(os.path.join(repo_dir, '.aim', 'quarantine', run_hash))

    # a damaged record in the middle: what comes before it is kept, the file quarantined
    run_hash, acked = _kill_after(repo_dir, child_env, at=5)
    jdir = os.path.join(repo_dir, '.aim', 'journal', run_hash)
    path = objects.journal_files(jdir)[-1]
    records, _, _ = objects.read_records(path)
    cut = records[2].end
    with open(path, 'r+b') as f:
        f.seek(cut)
        f.write(b'XXXX')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        run = Repo(repo_dir).get_run(run_hash)
    assert any('object journal' in str(w.message) for w in caught)
    kept = {r.name: r.step for r in records[:3]}
    assert run.get_image_sequence('img').values.indices_list()[0] == 0
    assert kept
    qdir = os.path.join(repo_dir, '.aim', 'quarantine', run_hash)
    assert os.path.isdir(qdir)
    assert any(objects.is_journal_name(n) for d in os.listdir(qdir)
               for n in os.listdir(os.path.join(qdir, d)))
    # the metrics of the same run are all there
    assert run.get_metric('loss').values.indices_list() == list(range(acked + 1))


def test_check_names_a_missing_blob_and_vacuum_drops_unused_ones(repo_dir):
    from aim import Image, Run
    from aim.storage.maintenance import check_repository, vacuum_repository
    run = Run(repo=repo_dir, system_tracking_interval=None, capture_terminal_logs=False)
    run.track(Image(np.zeros((4, 4, 3), dtype=np.uint8)), name='img', step=0)
    run.close()
    repo = Repo(repo_dir)
    db = repo._store.db
    assert check_repository(repo_dir).ok
    with db.write() as conn:       # a blob nothing refers to, and one that went missing
        conn.execute("INSERT INTO blobs VALUES('ab' || hex(randomblob(31)), 3, x'010203')")
        digest = conn.execute('SELECT digest FROM object_blobs').fetchone()[0]
        conn.execute('DELETE FROM blobs WHERE digest=?', (digest,))
    report = check_repository(repo_dir)
    assert not report.ok
    assert any('is missing' in p for c in report.runs for p in c.problems)
    vacuumed = vacuum_repository(repo._store)
    assert vacuumed.removed_blobs == 1
    assert db.query('SELECT count(*) FROM blobs')[0][0] == 0

