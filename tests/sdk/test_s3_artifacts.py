"""Artifacts in S3 (aim/sdk/artifacts.py): ``set_artifacts_uri('s3://...')``, ``log_artifact``,
``log_artifacts`` and ``Artifact.download`` against a real S3-compatible server (a
``moto_server`` subprocess on a loopback port), with credentials from the environment."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from aim import Repo, Run
from aim.sdk import artifacts as artifacts_module
from aim.sdk.artifacts import ArtifactError

boto3 = pytest.importorskip('boto3', reason='the s3 extra (boto3) is not installed')

TEST_KEYS = {'AWS_ACCESS_KEY_ID': 'testing', 'AWS_SECRET_ACCESS_KEY': 'testing',
             'AWS_DEFAULT_REGION': 'us-east-1'}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _moto(env: dict[str, str] | None = None):
    """A moto S3 server on a free loopback port: (process, endpoint URL)."""
    moto = shutil.which('moto_server') or os.path.join(os.path.dirname(sys.executable),
                                                       'moto_server')
    if not os.path.exists(moto):
        pytest.skip('moto_server is not installed (the dev extra has moto[server])')
    port = _free_port()
    proc = subprocess.Popen([moto, '-H', '127.0.0.1', '-p', str(port)],
                            env={**os.environ, **TEST_KEYS, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f'moto_server did not start on port {port}') from None
            time.sleep(0.1)


def _stop(proc) -> None:
    proc.kill()
    proc.wait()


@pytest.fixture(scope='module')
def moto_url():
    proc, url = _moto()
    client = boto3.client('s3', endpoint_url=url, **_client_keys(TEST_KEYS))
    client.create_bucket(Bucket='team-artifacts')
    yield url
    _stop(proc)


def _client_keys(keys: dict[str, str]) -> dict[str, str]:
    return {'aws_access_key_id': keys['AWS_ACCESS_KEY_ID'],
            'aws_secret_access_key': keys['AWS_SECRET_ACCESS_KEY'],
            'region_name': keys['AWS_DEFAULT_REGION']}


@pytest.fixture
def s3_env(moto_url, monkeypatch):
    """The environment an S3 client reads: test keys and the moto endpoint."""
    for key in [k for k in os.environ if k.startswith('AWS_')]:
        monkeypatch.delenv(key)
    for key, value in TEST_KEYS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv('AWS_ENDPOINT_URL', moto_url)
    return moto_url


@pytest.fixture
def run(repo_dir):
    run = Run(repo=repo_dir, system_tracking_interval=None, capture_terminal_logs=False)
    yield run
    run.close()


def _keys(endpoint: str, bucket: str = 'team-artifacts') -> list[str]:
    client = boto3.client('s3', endpoint_url=endpoint, **_client_keys(TEST_KEYS))
    return sorted(o['Key'] for o in client.list_objects_v2(Bucket=bucket).get('Contents', []))


def test_artifacts_are_stored_in_s3_listed_and_downloaded(s3_env, run, repo_dir, tmp_path):
    model = tmp_path / 'model.pt'
    model.write_bytes(os.urandom(300_000))
    ckpt = tmp_path / 'ckpt'
    (ckpt / 'sub').mkdir(parents=True)
    (ckpt / 'a.txt').write_text('A')
    (ckpt / 'sub' / 'b #1.txt').write_text('B')
    run.set_artifacts_uri('s3://team-artifacts/exp/')
    run.log_artifact(str(model))
    run.log_artifact(str(model), name='best/model.pt')
    run.log_artifacts(str(ckpt), name='checkpoints')
    run.track(1.0, name='loss')
    run.close()
    h = run.hash
    assert _keys(s3_env) == [f'exp/{h}/best/model.pt', f'exp/{h}/checkpoints/a.txt',
                             f'exp/{h}/checkpoints/sub/b #1.txt', f'exp/{h}/model.pt']

    stored = Repo(repo_dir).get_run(h)
    arts = stored.artifacts
    assert sorted(arts) == ['best/model.pt', 'checkpoints/a.txt', 'checkpoints/sub/b #1.txt',
                            'model.pt']
    assert arts['model.pt'].uri == f's3://team-artifacts/exp/{h}/model.pt'
    assert arts['model.pt'].path == str(model)
    down = tmp_path / 'down'
    out = arts['best/model.pt'].download(str(down))
    assert out == str(down / 'best' / 'model.pt')
    assert open(out, 'rb').read() == model.read_bytes()
    out = arts['checkpoints/sub/b #1.txt'].download(str(down))
    assert open(out).read() == 'B'
    assert stored[...] == {}                      # the params stay the user's own


def test_a_missing_bucket_names_the_uri_and_leaves_the_run_as_it_was(s3_env, run, tmp_path):
    model = tmp_path / 'model.pt'
    model.write_bytes(b'weights')
    run.set_artifacts_uri('s3://team-artifacts/kept')
    run.log_artifact(str(model))
    run['hparams'] = {'lr': 0.1}
    run.set_artifacts_uri('s3://no-such-bucket/x')
    with pytest.raises(ArtifactError, match='NoSuchBucket') as caught:
        run.log_artifact(str(model), name='other.pt', block=True)
    message = str(caught.value)
    assert f's3://no-such-bucket/x/{run.hash}/other.pt' in message
    assert 'AWS_ACCESS_KEY_ID' in message and 'Nothing was logged' in message
    assert caught.value.uri == f's3://no-such-bucket/x/{run.hash}/other.pt'
    assert list(run.artifacts) == ['model.pt']    # what was logged before stays
    run.track(0.5, name='loss', step=0)           # the run goes on
    assert run['hparams'] == {'lr': 0.1}
    with pytest.raises(ArtifactError, match='no longer at'):
        from aim.sdk.artifacts import Artifact
        Artifact('gone.pt', 's3://team-artifacts/kept/nothing/gone.pt').download(str(tmp_path))
    # in the background (block=False, the default) the same failure is a warning naming
    # the artifact and the URI; the training loop goes on, close() returns
    with pytest.warns(RuntimeWarning, match="artifact 'later.pt' .*NoSuchBucket"):
        run.log_artifact(str(model), name='later.pt')
        run.track(0.6, name='loss', step=1)
        run.close()
    stored = Repo(run.repo.root_path).get_run(run.hash)
    assert list(stored.artifacts) == ['model.pt']
    assert list(stored.get_metric('loss', {}).values.values_numpy()) == [0.5, 0.6]


def test_block_false_uploads_in_the_background(repo_dir, tmp_path, monkeypatch):
    """log_artifact's default (block=False) returns while the store does not answer (a
    moto server frozen with SIGSTOP); close() waits for the upload, in logging order."""
    import signal
    proc, url = _moto()
    try:
        boto3.client('s3', endpoint_url=url, **_client_keys(TEST_KEYS)).create_bucket(
            Bucket='slow')
        for key in [k for k in os.environ if k.startswith('AWS_')]:
            monkeypatch.delenv(key)
        for key, value in TEST_KEYS.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv('AWS_ENDPOINT_URL', url)
        first, second = tmp_path / 'first.pt', tmp_path / 'second.pt'
        first.write_bytes(b'1' * 1000)
        second.write_bytes(b'2' * 1000)
        run = Run(repo=repo_dir, system_tracking_interval=None, capture_terminal_logs=False)
        run.set_artifacts_uri('s3://slow/p')
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            run.log_artifact(str(first))        # returns: the upload waits in the background
            run.log_artifact(str(second), name='model.pt')
            run.log_artifact(str(first), name='model.pt')    # logged last: the one kept
            with pytest.raises(ArtifactError, match='No file at'):
                run.log_artifact(str(tmp_path / 'missing.pt'))   # bad input: raised here
            run.track(1.0, name='loss', step=0)
            assert run.artifacts == {}          # listed once stored
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        run.close()
        arts = Repo(repo_dir).get_run(run.hash).artifacts
        assert sorted(arts) == ['first.pt', 'model.pt']
        body = boto3.client('s3', endpoint_url=url, **_client_keys(TEST_KEYS)).get_object(
            Bucket='slow', Key=f'p/{run.hash}/model.pt')['Body'].read()
        assert body == b'1' * 1000

        # a store that stops answering holds close() for AIM_ARTIFACTS_CLOSE_TIMEOUT_S
        monkeypatch.setenv('AIM_ARTIFACTS_CLOSE_TIMEOUT_S', '1')
        run = Run(repo=repo_dir, system_tracking_interval=None, capture_terminal_logs=False)
        run.set_artifacts_uri('s3://slow/q')
        run.track(2.0, name='loss', step=0)
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            run.log_artifact(str(first))
            with pytest.warns(RuntimeWarning, match='were not all stored within 1 s'):
                run.close()
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        closed = Repo(repo_dir).get_run(run.hash)
        assert closed.end_time is not None
        assert list(closed.get_metric('loss', {}).values.values_numpy()) == [2.0]
        # the upload goes on once the store answers, and is listed with the closed run
        import threading
        for thread in threading.enumerate():
            if thread.name == f'aim-artifacts-{run.hash}':
                thread.join(60)
        assert list(Repo(repo_dir).get_run(run.hash).artifacts) == ['first.pt']
    finally:
        _stop(proc)


def test_a_store_that_denies_the_write_is_an_artifact_error(repo_dir, tmp_path, monkeypatch):
    """A moto server that checks IAM: a user allowed only to read the bucket."""
    # the first four requests (bucket, user, policy, key) are made before auth is checked
    proc, url = _moto({'INITIAL_NO_AUTH_ACTION_COUNT': '4'})
    try:
        keys = _client_keys(TEST_KEYS)
        boto3.client('s3', endpoint_url=url, **keys).create_bucket(Bucket='locked')
        iam = boto3.client('iam', endpoint_url=url, **keys)
        iam.create_user(UserName='reader')
        iam.put_user_policy(UserName='reader', PolicyName='read', PolicyDocument=json.dumps({
            'Version': '2012-10-17', 'Statement': [{
                'Effect': 'Allow', 'Action': ['s3:GetObject', 's3:ListBucket'],
                'Resource': ['arn:aws:s3:::locked', 'arn:aws:s3:::locked/*']}]}))
        key = iam.create_access_key(UserName='reader')['AccessKey']
        for name in [k for k in os.environ if k.startswith('AWS_')]:
            monkeypatch.delenv(name)
        monkeypatch.setenv('AWS_ACCESS_KEY_ID', key['AccessKeyId'])
        monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', key['SecretAccessKey'])
        monkeypatch.setenv('AWS_DEFAULT_REGION', 'us-east-1')
        monkeypatch.setenv('AWS_ENDPOINT_URL', url)
        model = tmp_path / 'model.pt'
        model.write_bytes(b'weights')
        run = Run(repo=repo_dir, system_tracking_interval=None, capture_terminal_logs=False)
        try:
            run.set_artifacts_uri('s3://locked/p')
            with pytest.raises(ArtifactError, match='AccessDenied') as caught:
                run.log_artifact(str(model), block=True)
            assert 's3://locked/p/' in str(caught.value)
            assert run.artifacts == {}
        finally:
            run.close()
    finally:
        _stop(proc)


def test_without_boto3_the_error_says_what_to_install(run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'boto3', None)        # import boto3 -> ImportError
    monkeypatch.setattr(artifacts_module, '_clients', {})
    with pytest.raises(ArtifactError, match=r'pip install "aimkit\[s3\]"'):
        run.set_artifacts_uri('s3://bucket/prefix')
    from aim.sdk.artifacts import Artifact
    with pytest.raises(ArtifactError, match=r'pip install "aimkit\[s3\]"'):
        Artifact('m.pt', 's3://bucket/prefix/h/m.pt').download(str(tmp_path))
    with pytest.raises(ArtifactError, match='file:// and s3://'):
        run.set_artifacts_uri('gs://bucket/prefix')
    with pytest.raises(ArtifactError, match='names its bucket'):
        run.set_artifacts_uri('s3:///prefix')


def test_boto3_is_imported_only_when_an_artifact_moves(child_env):
    code = ('import sys, aim, aim.sdk.artifacts as a; a.check_uri("s3://b/p"); '
            'print("boto3" in sys.modules)')
    res = subprocess.run([sys.executable, '-c', code], env=child_env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == 'False'
