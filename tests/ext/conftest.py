import os
import sys
from pathlib import Path

import pytest

from aim.ext.warn_once import forget_warnings

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_warnings():
    forget_warnings()
    yield
    forget_warnings()


@pytest.fixture
def child_env():
    """Environment for a child Python that must import this checkout's `aim`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('AIM_')}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get('PYTHONPATH')]))
    env['PYTHONUNBUFFERED'] = '1'
    return env


@pytest.fixture
def python():
    return sys.executable
