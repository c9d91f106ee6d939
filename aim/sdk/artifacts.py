"""Run artifacts (``run.set_artifacts_uri``, ``log_artifact``, ``log_artifacts``), as in
Aim 3.29.

A logged file is copied to ``<artifacts URI>/<run hash>/<name>``; the run keeps, in its
``artifacts`` prop, each artifact's name, the URI of the copy and the path it came from,
so ``run.artifacts`` (also on a read-only run) lists them and ``Artifact.download()``
copies one back.

Two kinds of URI:

- ``file:///path``: a folder (local, or a shared mount);
- ``s3://BUCKET[/PREFIX]``: an S3 bucket or an S3-compatible store, through boto3 (the
  ``s3`` extra, imported only when an artifact is stored or fetched). Credentials, region
  and endpoint come from the environment as for any S3 client (``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, ``AWS_REGION``,
  ``AWS_ENDPOINT_URL`` for MinIO, Ceph, ...); aimkit never stores them.

A copy that fails (no bucket, access denied, no credentials, unreachable endpoint) raises
:class:`ArtifactError` naming the URI and the cause; the run's list of artifacts is
changed only after the copy is stored, so nothing already logged is affected.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import threading
import urllib.parse
import warnings
from typing import Any

from aim.errors import AimError

ARTIFACTS_PROP = 'artifacts'
ARTIFACTS_URI_PROP = 'artifacts_uri'
S3_INSTALL = 'pip install "aimkit[s3]"'
# what the S3 client is made from: a change (a test, a script switching accounts) makes a
# new client instead of reusing one with other credentials
_S3_ENVIRONMENT = ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
                   'AWS_PROFILE', 'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ENDPOINT_URL',
                   'AWS_ENDPOINT_URL_S3', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE')
_S3_HINT = ('Check the bucket and its permissions, and the credentials and endpoint in the '
            'environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE; '
            'AWS_ENDPOINT_URL for an S3-compatible store).')


class ArtifactError(AimError):
    """An artifact could not be stored or read (unsupported URI, missing file, an S3 store
    that refused or could not be reached); ``uri`` is the location concerned, if any."""

    def __init__(self, message: str, uri: str | None = None):
        super().__init__(message)
        self.uri = uri


def check_uri(uri: str) -> str:
    if not isinstance(uri, str) or not uri:
        raise TypeError('the artifacts URI must be a non-empty str such as file:///data/artifacts '
                        'or s3://bucket/prefix')
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == 's3':
        if not parsed.netloc:
            raise ArtifactError(f'Artifacts URI {uri!r}: an S3 URI names its bucket, '
                                f's3://BUCKET[/PREFIX].', uri)
        if importlib.util.find_spec('boto3') is None:
            raise _no_boto3(uri)
        return 's3://' + uri.split('://', 1)[1].rstrip('/')   # 'S3://' too
    if parsed.scheme != 'file':
        raise ArtifactError(f'Artifacts URI {uri!r}: aimkit stores artifacts at file:// and '
                            f's3:// URIs; use file:///path/to/artifacts or '
                            f's3://bucket/prefix.', uri)
    return uri.rstrip('/')


def uri_path(uri: str) -> str:
    parsed = urllib.parse.urlparse(uri)
    return urllib.parse.unquote(parsed.netloc + parsed.path) if parsed.netloc else \
        urllib.parse.unquote(parsed.path)


def path_uri(path: str) -> str:
    return 'file://' + urllib.parse.quote(os.path.abspath(path))


def check_name(name: str) -> str:
    parts = name.replace('\\', '/').split('/')
    if not name or name.startswith('/') or any(p in ('', '.', '..') for p in parts):
        raise ValueError(f'artifact name {name!r} must be a relative path without "." or ".." '
                         f'parts (e.g. "model.pt" or "checkpoints/last.pt")')
    return '/'.join(parts)


def store_file(base_uri: str, run_hash: str, path: str, name: str) -> str:
    """Copy ``path`` into the artifact store; returns the URI of the copy."""
    if not os.path.isfile(path):
        raise ArtifactError(f'No file at {path!r} to log as an artifact.')
    if base_uri.startswith('s3://'):
        bucket, _, prefix = base_uri[len('s3://'):].partition('/')
        key = '/'.join(p for p in (prefix.strip('/'), run_hash, name) if p)
        return _S3Location(f's3://{bucket}/{key}').upload(path)
    dest = os.path.join(uri_path(base_uri), run_hash, *name.split('/'))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copyfile(path, dest)
    return path_uri(dest)


class ArtifactUploader:
    """The run's side channel for ``log_artifact(..., block=False)``: one thread copies
    (or uploads) the files in the order they were logged, so the training loop does not
    wait for them. ``stop()`` (at ``run.close()``) waits for every file logged before, for
    at most ``AIM_ARTIFACTS_CLOSE_TIMEOUT_S`` seconds (default 600: a store that stopped
    answering cannot hold the process forever). A file that cannot be stored is reported
    as a warning; it never raises in the training loop."""

    def __init__(self, name: str):
        import queue
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, job) -> None:
        self._queue.put(job)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                job()
            except Exception as e:   # a side channel never fails the run
                warnings.warn(f'aim: {e}', RuntimeWarning, stacklevel=1)
            finally:
                self._queue.task_done()

    def stop(self) -> None:
        timeout = float(os.environ.get('AIM_ARTIFACTS_CLOSE_TIMEOUT_S') or 600)
        left = self._queue.qsize()
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            warnings.warn(f'aim: {left} artifact(s) logged with block=False were not all '
                          f'stored within {timeout:g} s (AIM_ARTIFACTS_CLOSE_TIMEOUT_S); '
                          f'the run closes without them.', RuntimeWarning, stacklevel=2)


class Artifact:
    """A logged artifact: ``name``, ``uri`` (where the copy is), ``path`` (where it came
    from); ``download(dest_dir)`` copies it there and returns the new path."""

    def __init__(self, name: str, uri: str, path: str | None = None):
        self.name = name
        self.uri = uri
        self.path = path

    def download(self, dest_dir: str | None = None) -> str:
        dest = os.path.join(dest_dir or os.getcwd(), *check_name(self.name).split('/'))
        if self.uri.startswith('s3://'):
            _S3Location(self.uri).download(dest, self.name)
            return dest
        source = uri_path(self.uri)
        if not os.path.isfile(source):
            raise ArtifactError(f'Artifact {self.name!r} is no longer at {self.uri}.', self.uri)
        os.makedirs(os.path.dirname(dest) or '.', exist_ok=True)
        shutil.copyfile(source, dest)
        return dest

    def json(self) -> dict[str, Any]:
        return {'name': self.name, 'uri': self.uri, 'path': self.path}

    def __repr__(self) -> str:
        return f'<Artifact {self.name!r} at {self.uri}>'


# -- S3 ---------------------------------------------------------------------------------------
def _no_boto3(uri: str) -> ArtifactError:
    return ArtifactError(f'Artifacts URI {uri!r}: S3 artifacts need boto3, the S3 client, '
                         f'which is not installed: {S3_INSTALL}.', uri)


_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


def _s3_client(uri: str):
    """One client per process and environment (boto3 clients are thread-safe; making one
    takes tens of milliseconds, too long to repeat for each file of ``log_artifacts``)."""
    key = (os.getpid(), *(os.environ.get(k) for k in _S3_ENVIRONMENT))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise _no_boto3(uri) from None
            # bounded waits: a wrong endpoint fails in seconds, not after minutes of retries
            config = Config(connect_timeout=10, read_timeout=60,
                            retries={'max_attempts': 3, 'mode': 'standard'})
            endpoint = os.environ.get('AWS_ENDPOINT_URL_S3') or \
                os.environ.get('AWS_ENDPOINT_URL') or None
            try:
                client = boto3.session.Session().client('s3', endpoint_url=endpoint,
                                                        config=config)
            except Exception as exc:   # a bad profile, region or endpoint in the environment
                raise ArtifactError(f'Artifacts URI {uri!r}: cannot make an S3 client: '
                                    f'{_cause(exc)}. {_S3_HINT}', uri) from None
            _clients.clear()           # the environment changed: the old one is stale
            _clients[key] = client
        return client


def _cause(exc: BaseException) -> str:
    response = getattr(exc, 'response', None)
    if isinstance(response, dict):
        error = response.get('Error') or {}
        code = error.get('Code') or response.get('ResponseMetadata', {}).get('HTTPStatusCode')
        message = error.get('Message')
        if code and message:
            return f'{code} ({message})'
        if code:
            return str({'404': 'NotFound', '403': 'Forbidden'}.get(str(code), code))
    return str(exc) or type(exc).__name__


class _S3Location:
    """One object: ``s3://BUCKET/KEY``."""

    def __init__(self, uri: str):
        # split by hand: an artifact name may hold '#', '?' or '%', which are not URL syntax
        # here (the key is the name as given, as Aim stores it)
        self.uri = uri
        self.bucket, _, self.key = uri[len('s3://'):].partition('/')

    def upload(self, path: str) -> str:
        client = _s3_client(self.uri)
        try:
            client.upload_file(path, self.bucket, self.key)
        except Exception as exc:
            raise ArtifactError(f'Could not store artifact {path!r} at {self.uri}: '
                                f'{_cause(exc)}. Nothing was logged. {_S3_HINT}',
                                self.uri) from None
        return self.uri

    def download(self, dest: str, name: str) -> None:
        client = _s3_client(self.uri)
        os.makedirs(os.path.dirname(dest) or '.', exist_ok=True)
        try:
            client.download_file(self.bucket, self.key, dest)
        except Exception as exc:
            cause = _cause(exc)
            if cause.startswith(('404', 'NotFound', 'NoSuchKey')):
                raise ArtifactError(f'Artifact {name!r} is no longer at {self.uri}.',
                                    self.uri) from None
            raise ArtifactError(f'Could not download artifact {name!r} from {self.uri}: '
                                f'{cause}. {_S3_HINT}', self.uri) from None


__all__ = ['Artifact', 'ArtifactError', 'check_name', 'check_uri', 'store_file']
