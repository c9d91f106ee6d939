"""Fixtures of the ecosystem tests: a fresh repository, every Run closed."""
import os

import pytest

# Keras (KerasTuner) on the torch backend, as the adapter tests; nothing reaches a hub
os.environ.setdefault('KERAS_BACKEND', 'torch')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

RANK_VARIABLES = ('RANK', 'LOCAL_RANK', 'NODE_RANK', 'GROUP_RANK', 'PMI_RANK',
                  'OMPI_COMM_WORLD_RANK', 'SLURM_PROCID', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE')


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def new_repo(tmp_path):
    from aim import Repo
    return Repo(str(tmp_path / 'repo'), init=True)


def needs(module: str):
    """Skip unless ``module`` imports (the ecosystem packages come from
    scripts/install_ecosystem.sh)."""
    return pytest.importorskip(module, reason=f'{module} is not installed; run '
                                              f'scripts/install_ecosystem.sh')
