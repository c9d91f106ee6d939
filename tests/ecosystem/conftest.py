"""Fixtures of the ecosystem tests: a fresh repository, every Run closed."""
import os

import pytest

# Keras (KerasTuner) on the torch backend, as the adapter tests; nothing reaches a hub
os.environ.setdefault('KERAS_BACKEND', 'torch')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

# tests run as a lone process unless they set a rank themselves (the adapters' fixture)
from tests.adapters.conftest import _single_process  # noqa: E402, F401


@pytest.fixture
def new_repo(tmp_path):
    from aim import Repo
    return Repo(str(tmp_path / 'repo'), init=True)


def needs(module: str):
    """Skip unless ``module`` imports (the ecosystem packages come from
    scripts/install_ecosystem.sh)."""
    return pytest.importorskip(module, reason=f'{module} is not installed; run '
                                              f'scripts/install_ecosystem.sh')
