"""Fixtures for the adapter tests: each trains a tiny model with a real framework."""
from __future__ import annotations

import importlib.util
import os

import pytest

# Keras 3 picks its backend at first import: torch, so that CI needs no TensorFlow (an
# environment with TensorFlow and no torch, for the opt-in test, gets TensorFlow).
# Nothing may reach a model hub.
if importlib.util.find_spec('torch') is not None:
    os.environ.setdefault('KERAS_BACKEND', 'torch')
elif importlib.util.find_spec('tensorflow') is not None:
    os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')

RANK_VARIABLES = ('RANK', 'LOCAL_RANK', 'NODE_RANK', 'GROUP_RANK', 'PMI_RANK',
                  'OMPI_COMM_WORLD_RANK', 'SLURM_PROCID', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE')


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    """Tests run as a lone process unless they set a rank themselves."""
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def quiet():
    """Adapter arguments that turn the side channels off, for fast tests."""
    return dict(system_tracking_interval=None, log_system_params=False,
                capture_terminal_logs=False)


@pytest.fixture
def metrics_of():
    return read_metrics


class RunMetrics(dict):
    """{(name, sorted context items): Metric}; ``metrics('loss', subset='val')`` picks one."""

    def __call__(self, name: str, **context):
        key = (name, tuple(sorted(context.items())))
        assert key in self, f'no metric {key}; the run has {sorted(self)}'
        return self[key]


def read_metrics(repo_path: str, run_hash: str) -> RunMetrics:
    """The metrics of one run, read through ``Repo.query_metrics`` when the query API is
    there, else through the run. System metrics (``__system__*``) are left out."""
    from aim import Repo

    repo = Repo.from_path(repo_path)
    try:
        import aim.sdk.collections  # noqa: F401
    except ModuleNotFoundError:
        metrics = repo.get_run(run_hash).metrics()
    else:
        metrics = list(repo.query_metrics(f"run.hash == '{run_hash}'"))
    return RunMetrics(((m.name, tuple(sorted(m.context.items()))), m) for m in metrics
                      if not m.name.startswith('__'))


@pytest.fixture
def only_run(repo_dir):
    """The hash of the single run in the test repository (fails if there are more)."""
    def find() -> str:
        from aim import Repo

        hashes = Repo.from_path(repo_dir).list_all_runs()
        assert len(hashes) == 1, f'expected one run, found {hashes}'
        return hashes[0]
    return find
