"""Fixtures of the ecosystem tests: a fresh repository, every Run closed."""
import pytest


@pytest.fixture
def new_repo(tmp_path):
    from aim import Repo
    return Repo(str(tmp_path / 'repo'), init=True)


def needs(module: str):
    """Skip unless ``module`` imports (the ecosystem packages come from
    scripts/install_ecosystem.sh)."""
    return pytest.importorskip(module, reason=f'{module} is not installed; run '
                                              f'scripts/install_ecosystem.sh')
