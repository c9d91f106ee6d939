"""Run log records, progress reports and artifacts (Aim 3.29's names)."""
import logging
import subprocess
import sys
import textwrap

import pytest

from aim import Repo, Run
from aim.errors import ReadOnlyRunError
from aim.sdk.artifacts import ArtifactError


def _run(repo, **kw):
    kw.setdefault('capture_terminal_logs', False)
    return Run(repo=repo, system_tracking_interval=None, **kw)


def test_log_records_round_trip_and_sit_among_the_terminal_output(new_repo, child_env):
    script = textwrap.dedent('''
        import sys
        from aim import Run
        run = Run(repo=sys.argv[1], system_tracking_interval=None)
        print('epoch 1 starts', flush=True)
        run.log_info('data loaded', rows=120, source='csv')
        run.log_debug('batch size picked')
        print('epoch 1 ends', flush=True)
        run.log_warning('loss went up')
        run.log_error('NaN in layer 3')
        run.report_progress(expect_next_in=30)
        run.report_successful_finish()
        print(run.hash)
        run.close()
    ''')
    res = subprocess.run([sys.executable, '-c', script, new_repo.root_path], env=child_env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    run = Repo(new_repo.root_path).get_run(res.stdout.split()[-1])
    records = run.get_log_records()
    assert [(r.level_name, r.message) for r in records] == [
        ('INFO', 'data loaded'), ('DEBUG', 'batch size picked'),
        ('WARNING', 'loss went up'), ('ERROR', 'NaN in layer 3')]
    assert records[0].kwargs == {'rows': 120, 'source': 'csv'}
    assert records[0].log_level == logging.INFO and records[3].log_level == logging.ERROR
    assert run.creation_time <= records[0].timestamp <= records[3].timestamp <= run.end_time
    # the run page shows them among what the script printed (printed text arrives through
    # the capture thread, so its order against the records is only roughly kept)
    joined = '\n'.join(run.get_terminal_logs().lines)
    for text in ('epoch 1 starts', 'data loaded', 'epoch 1 ends', 'loss went up'):
        assert text in joined
    assert joined.index('data loaded') < joined.index('loss went up')
    assert run.successful_finish is True
    assert run.progress['expect_next_in'] == 0


def test_records_of_a_live_run_and_a_read_only_one(new_repo):
    run = _run(new_repo)
    run.log_info('hello')
    assert [r.message for r in run.get_log_records()] == ['hello']   # before any flush
    assert len(run.get_terminal_logs()) == 1
    run.report_progress(expect_next_in=5)
    assert run.progress['expect_next_in'] == 5 and not run.successful_finish
    run.close()
    stored = new_repo.get_run(run.hash)
    assert stored.get_log_records().messages() == ['hello']
    with pytest.raises(ReadOnlyRunError):
        stored.log_info('no')


def test_artifacts_are_copied_listed_and_downloaded(new_repo, tmp_path):
    store = tmp_path / 'artifacts'
    model = tmp_path / 'model.pt'
    model.write_bytes(b'weights')
    ckpt = tmp_path / 'ckpt'
    (ckpt / 'sub').mkdir(parents=True)
    (ckpt / 'a.txt').write_text('A')
    (ckpt / 'sub' / 'b.txt').write_text('B')
    run = _run(new_repo)
    with pytest.raises(ArtifactError, match='set_artifacts_uri'):
        run.log_artifact(str(model))
    with pytest.raises(ArtifactError, match='file:// and s3://'):
        run.set_artifacts_uri('gs://bucket/prefix')
    run.set_artifacts_uri(f'file://{store}')
    run.log_artifact(str(model))
    run.log_artifact(str(model), name='best/model.pt')
    run.log_artifacts(str(ckpt), name='checkpoints')
    with pytest.raises(ValueError):
        run.log_artifact(str(model), name='../escape')
    run.close()
    stored = Repo(new_repo.root_path).get_run(run.hash)
    arts = stored.artifacts
    assert sorted(arts) == ['best/model.pt', 'checkpoints/a.txt', 'checkpoints/sub/b.txt',
                            'model.pt']
    assert (store / run.hash / 'best' / 'model.pt').read_bytes() == b'weights'
    assert arts['model.pt'].uri == f'file://{store}/{run.hash}/model.pt'
    out = arts['checkpoints/sub/b.txt'].download(str(tmp_path / 'down'))
    assert open(out).read() == 'B' and out.endswith('checkpoints/sub/b.txt')
    # the params stay the user's own
    assert stored[...] == {}
