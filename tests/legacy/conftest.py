"""Fixtures for the legacy API tests: fresh warning state and no leftover sessions."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_legacy_state():
    from aim.sdk.legacy import deprecation, session

    deprecation._warned.clear()
    yield
    session._close_open_sessions()
    session._default_session = None


@pytest.fixture
def metrics_of():
    return read_metrics


def read_metrics(repo_path: str, run_hash: str) -> dict:
    """{(name, sorted context items): Metric} of one run, read through the query API when
    it is there, else through the run."""
    from aim import Repo

    repo = Repo.from_path(repo_path)
    try:
        import aim.sdk.collections  # noqa: F401
    except ModuleNotFoundError:
        metrics = repo.get_run(run_hash).metrics()
    else:
        metrics = list(repo.query_metrics(f"run.hash == '{run_hash}'"))
    return {(m.name, tuple(sorted(m.context.items()))): m for m in metrics}
