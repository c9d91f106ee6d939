"""Blobs: the bytes of rich objects (encoded images, audio, figure JSON), content-addressed.

A blob is stored once under the SHA-256 of its bytes, so the same sample logged twice, by
two runs or at two steps, costs nothing more; what refers to it (an object's metadata in
its series) keeps the digest. Two homes, chosen per repository:

- **the database** (default): the ``blobs`` table of the repository database, SQLite or
  PostgreSQL. Nothing to set up; backups and ``aim storage migrate`` carry it.
- **an S3-compatible object store**, for a team whose blobs outgrow the database:
  ``aim storage blobs --s3 s3://BUCKET/PREFIX [--endpoint-url URL]`` records the location
  in the repository (``meta``), so that every process and server writing it agrees.
  Credentials come from the environment as for any S3 client (``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, a profile, an instance role) and are never stored. Objects are
  ``PREFIX/ab/abcdef...`` (the digest's first two characters spread them); needs the
  ``s3`` extra (boto3).

``store.blobs`` gives the repository's blob store (:func:`blob_store`).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any, Protocol
from urllib.parse import urlsplit

from aim.errors import RepositoryError

META_KEY = 'blob_store'
MAX_BLOB_BYTES = 512 * 1024 * 1024


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore(Protocol):
    location: str

    def put(self, data: bytes) -> str: ...

    def get(self, digest: str) -> bytes: ...

    def exists(self, digest: str) -> bool: ...

    def delete(self, digests: Iterable[str]) -> int: ...

    def digests(self) -> Iterator[str]: ...


def _check(data: Any) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f'a blob is bytes, got {type(data).__name__}')
    data = bytes(data)
    if len(data) > MAX_BLOB_BYTES:
        raise ValueError(f'a blob holds at most {MAX_BLOB_BYTES // (1024 * 1024)} MiB; this one '
                         f'has {len(data) / (1024 * 1024):.0f} MiB')
    return data


def _missing(digest: str, where: str) -> RepositoryError:
    return RepositoryError(f'Blob {digest} is not in {where}; the object that refers to it '
                           f'cannot be read.', where)


class DatabaseBlobs:
    """Blobs in the repository database's ``blobs`` table."""

    def __init__(self, db):
        self.db = db
        self.location = f'the repository database ({db.path})'

    def put(self, data: bytes) -> str:
        data = _check(data)
        digest = digest_of(data)
        with self.db.write() as conn:
            conn.execute('INSERT OR IGNORE INTO blobs VALUES(?, ?, ?)', (digest, len(data), data))
        return digest

    def get(self, digest: str) -> bytes:
        rows = self.db.query('SELECT data FROM blobs WHERE digest=?', (digest,))
        if not rows:
            raise _missing(digest, self.location)
        data = bytes(rows[0][0])
        if digest_of(data) != digest:
            raise RepositoryError(f'Blob {digest} in {self.location} is damaged (its bytes no '
                                  f'longer match their digest).', self.location)
        return data

    def exists(self, digest: str) -> bool:
        return bool(self.db.query('SELECT 1 FROM blobs WHERE digest=?', (digest,)))

    def delete(self, digests: Iterable[str]) -> int:
        digests = list(digests)
        if not digests:
            return 0
        with self.db.write() as conn:
            conn.execute('DELETE FROM blobs WHERE digest IN (SELECT value FROM json_each(?))',
                         (json.dumps(digests),))
        return len(digests)

    def digests(self) -> Iterator[str]:
        for (digest,) in self.db.query('SELECT digest FROM blobs ORDER BY digest'):
            yield digest


class S3Blobs:
    """Blobs in an S3-compatible bucket, under a prefix."""

    def __init__(self, url: str, endpoint_url: str | None = None):
        parts = urlsplit(url)
        if parts.scheme != 's3' or not parts.netloc:
            raise ValueError(f'an S3 location is s3://BUCKET[/PREFIX], got {url!r}')
        self.bucket = parts.netloc
        self.prefix = parts.path.strip('/')
        self.endpoint_url = endpoint_url
        self.location = url + (f' at {endpoint_url}' if endpoint_url else '')
        try:
            import boto3
        except ImportError:
            raise RepositoryError('This repository keeps its blobs in S3, which needs boto3: '
                                  'pip install "aimkit[s3]".', url) from None
        self._client = boto3.client('s3', endpoint_url=endpoint_url)

    def _key(self, digest: str) -> str:
        return '/'.join(p for p in (self.prefix, digest[:2], digest) if p)

    def _call(self, what: str, fn, **kwargs):
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except Exception as exc:
            code = getattr(exc, 'response', {}).get('Error', {}).get('Code', '')
            if code in ('404', 'NoSuchKey', 'NotFound'):
                raise KeyError(kwargs.get('Key')) from None
            raise RepositoryError(f'The blob store {self.location} failed to {what}: {exc}. '
                                  f'Check the bucket, the endpoint and the credentials in the '
                                  f'environment (AWS_ACCESS_KEY_ID, ...).', self.location) from None

    def check(self) -> None:
        """Reach the bucket once: RepositoryError naming what is wrong."""
        try:
            self._call('reach the bucket', self._client.head_bucket)
        except KeyError:
            raise RepositoryError(f'The blob store {self.location} failed to reach the '
                                  f'bucket: bucket {self.bucket!r} does not exist.',
                                  self.location) from None

    def put(self, data: bytes) -> str:
        data = _check(data)
        digest = digest_of(data)
        if not self.exists(digest):
            self._call('store a blob', self._client.put_object, Key=self._key(digest), Body=data)
        return digest

    def get(self, digest: str) -> bytes:
        try:
            body = self._call('read a blob', self._client.get_object, Key=self._key(digest))
        except KeyError:
            raise _missing(digest, self.location) from None
        data = body['Body'].read()
        if digest_of(data) != digest:
            raise RepositoryError(f'Blob {digest} in {self.location} is damaged (its bytes no '
                                  f'longer match their digest).', self.location)
        return data

    def exists(self, digest: str) -> bool:
        try:
            self._call('look a blob up', self._client.head_object, Key=self._key(digest))
            return True
        except KeyError:
            return False

    def delete(self, digests: Iterable[str]) -> int:
        keys = [{'Key': self._key(d)} for d in digests]
        for i in range(0, len(keys), 1000):
            self._call('delete blobs', self._client.delete_objects,
                       Delete={'Objects': keys[i:i + 1000], 'Quiet': True})
        return len(keys)

    def digests(self) -> Iterator[str]:
        paginator = self._client.get_paginator('list_objects_v2')
        prefix = (self.prefix + '/') if self.prefix else ''
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get('Contents', []):
                    yield item['Key'].rsplit('/', 1)[-1]
        except Exception as exc:
            raise RepositoryError(f'The blob store {self.location} failed to list blobs: '
                                  f'{exc}', self.location) from None


def configured(db) -> dict | None:
    """The blob store recorded in the repository (None: the database)."""
    rows = db.query('SELECT value FROM meta WHERE key=?', (META_KEY,))
    return json.loads(rows[0][0]) if rows else None


def blob_store(db) -> BlobStore:
    """The blob store of the repository whose database is ``db``."""
    config = configured(db)
    if config is None or config.get('kind') == 'database':
        return DatabaseBlobs(db)
    if config.get('kind') == 's3':
        return S3Blobs(config['url'], config.get('endpoint_url'))
    raise RepositoryError(f'Unknown blob store {config!r} recorded in {db.path}; this aimkit '
                          f'knows "database" and "s3".', db.path)


def configure(db, url: str | None, endpoint_url: str | None = None) -> BlobStore:
    """Record where the repository keeps blobs from now on: ``s3://BUCKET/PREFIX``, or None
    for the database. The store is reached once first, so a wrong bucket or endpoint fails
    here, not at the first tracked object. Blobs already stored stay where they are
    (``aim storage blobs --copy`` moves them)."""
    store: BlobStore
    config: dict[str, Any]
    if url is None:
        config = {'kind': 'database'}
        store = DatabaseBlobs(db)
    else:
        s3 = S3Blobs(url, endpoint_url)
        s3.check()                            # reach it: RepositoryError with the reason
        store = s3
        config = {'kind': 's3', 'url': url, 'endpoint_url': endpoint_url}
    with db.write() as conn:
        conn.execute('INSERT OR REPLACE INTO meta VALUES(?, ?)', (META_KEY, json.dumps(config)))
    return store


def copy_blobs(source: BlobStore, dest: BlobStore, digests: Iterable[str] | None = None) -> int:
    """Copy blobs (all of ``source``'s, or ``digests``) that ``dest`` lacks; how many."""
    n = 0
    for digest in (source.digests() if digests is None else digests):
        if not dest.exists(digest):
            dest.put(source.get(digest))
            n += 1
    return n
