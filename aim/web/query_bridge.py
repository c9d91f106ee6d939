"""The web layer's only door to the query language.

Turns a query text into matching run hashes or metrics, through the SDK's query methods
(``Repo.query_runs`` / ``Repo.query_metrics``). Query errors (``aim.errors.QueryError`` with
a position) pass through untouched: the API's error handler reports them.
"""
from __future__ import annotations

from collections.abc import Iterator


def _items(collection) -> Iterator:
    for attr in ('iter_runs', 'iter'):
        method = getattr(collection, attr, None)
        if callable(method):
            return iter(method())
    return iter(collection)


def matching_run_hashes(repo, query: str) -> list[str]:
    """Hashes of the runs matching a run query (``run.hparams.lr < 0.01``)."""
    collection = repo.query_runs(query)
    fast = getattr(collection, 'hashes', None)
    if callable(fast):
        return list(fast())
    hashes = []
    seen = set()
    for item in _items(collection):
        h = getattr(item, 'hash', None) or item.run.hash
        if h not in seen:
            seen.add(h)
            hashes.append(h)
    return hashes


def matching_metrics(repo, query: str) -> Iterator:
    """Metric views matching a metric query (``metric.name == 'loss' and run.lr > 0.1``)."""
    collection = repo.query_metrics(query)
    method = getattr(collection, 'iter', None)
    if callable(method):
        yield from method()
        return
    for item in collection:
        # A run-grouped collection yields per-run collections of metrics.
        if hasattr(item, 'values') or hasattr(item, 'name'):
            yield item
        else:
            yield from _items(item)
