"""Run artifacts (``run.set_artifacts_uri``, ``log_artifact``, ``log_artifacts``), as in
Aim 3.29.

A logged file is copied to ``<artifacts URI>/<run hash>/<name>``; the run keeps, in its
``artifacts`` prop, each artifact's name, the URI of the copy and the path it came from,
so ``run.artifacts`` (also on a read-only run) lists them and ``Artifact.download()``
copies one back. Only ``file://`` URIs are supported yet; ``s3://`` is refused with a
clear error instead of failing later.
"""
from __future__ import annotations

import os
import shutil
import urllib.parse
from typing import Any

from aim.errors import AimError

ARTIFACTS_PROP = 'artifacts'
ARTIFACTS_URI_PROP = 'artifacts_uri'


class ArtifactError(AimError):
    """An artifact could not be stored or read (unsupported URI, missing file)."""


def check_uri(uri: str) -> str:
    if not isinstance(uri, str) or not uri:
        raise TypeError('the artifacts URI must be a non-empty str such as file:///data/artifacts')
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme != 'file':
        raise ArtifactError(f'Artifacts URI {uri!r}: only file:// URIs are supported by '
                            f'aimkit yet (s3:// is not); use file:///path/to/artifacts.')
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
    dest = os.path.join(uri_path(base_uri), run_hash, *name.split('/'))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copyfile(path, dest)
    return path_uri(dest)


class Artifact:
    """A logged artifact: ``name``, ``uri`` (where the copy is), ``path`` (where it came
    from); ``download(dest_dir)`` copies it there and returns the new path."""

    def __init__(self, name: str, uri: str, path: str | None = None):
        self.name = name
        self.uri = uri
        self.path = path

    def download(self, dest_dir: str | None = None) -> str:
        source = uri_path(self.uri)
        if not os.path.isfile(source):
            raise ArtifactError(f'Artifact {self.name!r} is no longer at {self.uri}.')
        dest = os.path.join(dest_dir or os.getcwd(), *self.name.split('/'))
        os.makedirs(os.path.dirname(dest) or '.', exist_ok=True)
        shutil.copyfile(source, dest)
        return dest

    def json(self) -> dict[str, Any]:
        return {'name': self.name, 'uri': self.uri, 'path': self.path}

    def __repr__(self) -> str:
        return f'<Artifact {self.name!r} at {self.uri}>'


__all__ = ['Artifact', 'ArtifactError', 'check_name', 'check_uri', 'store_file']
