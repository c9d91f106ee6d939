"""aim.ext.exception_resistant: Aim's safe mode switch and exception callback."""
import logging

import pytest

from aim.ext import exception_resistant as er


@pytest.fixture(autouse=True)
def _default_mode():
    er.disable_safe_mode()
    er.set_exception_callback(None)
    er._reported.clear()
    yield
    er.disable_safe_mode()
    er.set_exception_callback(None)
    er._reported.clear()


@er.noexcept
def _fails(x):
    raise ValueError(f'bad input {x}')


@er.noexcept
def _works(x):
    return x * 2


def test_errors_propagate_by_default():
    assert not er.is_safe_mode_enabled()
    with pytest.raises(ValueError, match='bad input 1'):
        _fails(1)
    assert _works(2) == 4


def test_safe_mode_logs_once_and_goes_on(caplog):
    er.enable_safe_mode()
    assert er.is_safe_mode_enabled()
    with caplog.at_level(logging.ERROR, logger='aim'):
        assert _fails(1) is None
        assert _fails(1) is None          # the same error is reported once
        assert _fails(2) is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert 'Exception "bad input 1" raised in function "_fails"' in messages[0]
    assert _works(3) == 6
    er.disable_safe_mode()
    with pytest.raises(ValueError):
        _fails(1)


def test_custom_callback():
    seen = []
    er.set_exception_callback(lambda exc, func: seen.append((str(exc), func.__name__)))
    er.enable_safe_mode()
    _fails(5)
    assert seen == [('bad input 5', '_fails')]


def test_a_failing_callback_does_not_raise(caplog):
    def broken(exc, func):
        raise RuntimeError('callback bug')
    er.set_exception_callback(broken)
    er.enable_safe_mode()
    with caplog.at_level(logging.ERROR, logger='aim'):
        assert _fails(1) is None
    assert 'callback bug' in caplog.text


def test_callback_must_be_callable():
    with pytest.raises(TypeError, match='callable'):
        er.set_exception_callback('print')


def test_safe_mode_covers_run_track(make_run):
    # scripts switch safe mode on first, then create their runs
    seen = []
    er.set_exception_callback(lambda exc, func: seen.append(exc))
    er.enable_safe_mode()
    run = make_run()
    run.track('not a number', name='m')
    run['bad'] = object()
    assert len(seen) == 2
