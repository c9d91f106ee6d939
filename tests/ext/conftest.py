import pytest

from aim.ext.warn_once import forget_warnings


@pytest.fixture(autouse=True)
def fresh_warnings():
    forget_warnings()
    yield
    forget_warnings()


