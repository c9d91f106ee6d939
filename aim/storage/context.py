"""Context: the hashable, read-only form of a series context (``{'subset': 'train'}``).

It is a dict, so it is accepted wherever a context dict is (``run.get_metric(name,
Context({...}))``, ``run.track(..., context=Context(...))``) and compares equal to the
plain dict with the same items; ``Context(None)`` is ``Context({})``. Its hash is taken
from the canonical text of the context, so equal contexts hash alike whatever the order
of their keys.
"""
from __future__ import annotations

import hashlib
from typing import Any

from aim.storage.encoding import canonical_context


def _read_only(self, *args, **kwargs):
    raise TypeError('a Context is read-only; build a new one from a dict instead: '
                    'Context({**ctx, "key": value})')


class Context(dict):
    """A series context: a read-only, hashable dict."""

    def __init__(self, context: dict | None = None):
        if context is not None and not isinstance(context, dict):
            raise TypeError(f'a Context is built from a dict (or None), got '
                            f'{type(context).__name__}: {context!r:.80}')
        super().__init__(context or {})

    @property
    def idx(self) -> int:
        """A stable signed 64-bit id of this context (the same in every process)."""
        digest = hashlib.blake2b(canonical_context(self).encode(), digest_size=8).digest()
        return int.from_bytes(digest, 'big', signed=True)

    def to_dict(self) -> dict[str, Any]:
        return dict(self)

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(canonical_context(self))

    def __repr__(self) -> str:
        return f'Context({dict.__repr__(self)})'

    def __reduce__(self):
        return Context, (dict(self),)

    def copy(self) -> Context:
        return Context(dict(self))

    __setitem__ = __delitem__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only


__all__ = ['Context']
