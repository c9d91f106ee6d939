"""Blobs (aim/storage/blobs.py): content-addressed in the repository database of either
backend, or in an S3-compatible object store (a real ``moto_server`` subprocess speaking
the S3 protocol on a loopback port)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from aim import Repo
from aim.errors import RepositoryError
from aim.storage.blobs import digest_of
from tests.remote.server_process import aim_command

pytestmark = pytest.mark.backends


def test_database_blobs_are_stored_once_and_read_back(repo):
    blobs = repo._store.blobs
    image = os.urandom(50_000)
    digest = blobs.put(image)
    assert digest == digest_of(image)
    assert blobs.put(image) == digest                       # the same bytes: one blob
    assert list(blobs.digests()) == [digest]
    assert blobs.get(digest) == image
    assert blobs.exists(digest) and not blobs.exists('0' * 64)
    with pytest.raises(RepositoryError, match='not in'):
        blobs.get('0' * 64)
    with pytest.raises(TypeError, match='bytes'):
        blobs.put('text')
    assert blobs.delete([digest]) == 1
    assert not blobs.exists(digest)


def test_a_damaged_blob_is_named(repo):
    blobs = repo._store.blobs
    digest = blobs.put(b'payload')
    with repo._store.db.write() as conn:
        conn.execute('UPDATE blobs SET data=? WHERE digest=?', (b'other', digest))
    with pytest.raises(RepositoryError, match='damaged'):
        blobs.get(digest)


@pytest.fixture
def s3_server(tmp_path):
    """A real S3-compatible server on a free loopback port, with test credentials."""
    moto = shutil.which('moto_server') or os.path.join(os.path.dirname(sys.executable),
                                                       'moto_server')
    from tests.pg.cluster import free_port
    port = free_port()
    proc = subprocess.Popen([moto, '-H', '127.0.0.1', '-p', str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {'AWS_ACCESS_KEY_ID': 'testing', 'AWS_SECRET_ACCESS_KEY': 'testing',
           'AWS_DEFAULT_REGION': 'us-east-1'}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    url = f'http://127.0.0.1:{port}'
    import boto3
    client = boto3.client('s3', endpoint_url=url)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket='aim-blobs')
            break
        except Exception:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.2)
    yield url
    proc.kill()
    proc.wait()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_blobs_move_to_an_s3_bucket_and_every_process_finds_them(repo, s3_server, tmp_path):
    where = repo.root_path
    before = repo._store.blobs.put(b'kept in the database first')
    moved = subprocess.run([*aim_command(), 'storage', 'blobs', '--repo', where, '--s3',
                            's3://aim-blobs/team', '--endpoint-url', s3_server, '--copy'],
                           capture_output=True, text=True, env=os.environ.copy())
    assert moved.returncode == 0, moved.stderr
    assert 'Copied 1 blobs' in moved.stdout
    blobs = Repo(where)._store.blobs          # the location is recorded in the repository
    assert 's3://aim-blobs/team' in blobs.location
    assert blobs.get(before) == b'kept in the database first'
    audio = os.urandom(300_000)
    digest = blobs.put(audio)
    assert blobs.put(audio) == digest
    assert sorted(blobs.digests()) == sorted([before, digest])
    import boto3
    keys = [o['Key'] for o in boto3.client('s3', endpoint_url=s3_server).list_objects_v2(
        Bucket='aim-blobs')['Contents']]
    assert f'team/{digest[:2]}/{digest}' in keys
    shown = subprocess.run([*aim_command(), 'storage', 'blobs', '--repo', where],
                           capture_output=True, text=True, env=os.environ.copy())
    assert '(2 blobs)' in shown.stdout
    assert blobs.delete([digest]) == 1 and not blobs.exists(digest)


def test_a_wrong_bucket_is_refused_when_configured(repo, s3_server):
    from aim.storage.blobs import configure
    with pytest.raises(RepositoryError, match='failed to'):
        configure(repo._store.db, 's3://no-such-bucket/x', s3_server)
    assert 'database' in repo._store.blobs.location      # nothing recorded
