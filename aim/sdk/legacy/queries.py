"""The Aim 2 query functions, answered by the Aim 3 query API."""
from __future__ import annotations

from aim.sdk.legacy.deprecation import deprecated


def _repo(repo_path: str | None):
    from aim.sdk.repo import Repo

    return Repo.from_path(repo_path) if repo_path else Repo.default_repo()


@deprecated
def select_runs(expression: str | None = None, repo_path: str | None = None):
    """Runs matching ``expression`` (all runs when it is empty): ``Repo.query_runs``."""
    return _repo(repo_path).query_runs(expression or '')


@deprecated
def select_metrics(search_statement: str, repo_path: str | None = None):
    """Metrics matching ``search_statement``: ``Repo.query_metrics``."""
    return _repo(repo_path).query_metrics(search_statement)
