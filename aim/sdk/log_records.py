"""Run log records (``run.log_info`` ... ``run.get_log_records()``), as in Aim 3.29.

A record is kept with the run's terminal output (the ``logs`` table) as one line, so the
run page shows it among what the script printed (printed text comes through the capture
thread, a moment later, so the two keep their order only roughly), and the SDK reads it
back from the same lines: ``MARK + '[aim LEVEL] message'``, then, when the call had
keyword arguments, ``MARK + their JSON``. ``MARK`` (U+2063, an invisible separator) is
what no captured terminal line starts with, so records and printed text never mix up.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

MARK = '\u2063'
LEVELS = {logging.DEBUG: 'DEBUG', logging.INFO: 'INFO', logging.WARNING: 'WARNING',
          logging.ERROR: 'ERROR'}
_LINE = re.compile(MARK + r'\[aim (DEBUG|INFO|WARNING|ERROR)\] (.*?)(?:' + MARK + r'(\{.*\}))?$',
                   re.DOTALL)
_NUMBERS = {name: level for level, name in LEVELS.items()}


class LogRecord:
    """One record: ``message``, ``log_level`` (``logging.INFO`` ...), ``level_name``,
    ``timestamp`` (seconds since 1970 UTC), ``kwargs`` (the call's keyword arguments)."""

    __slots__ = ('kwargs', 'log_level', 'message', 'timestamp')

    def __init__(self, message: str, log_level: int, timestamp: float,
                 kwargs: dict[str, Any] | None = None):
        self.message = message
        self.log_level = log_level
        self.timestamp = timestamp
        self.kwargs = kwargs or {}

    @property
    def level_name(self) -> str:
        return LEVELS.get(self.log_level, str(self.log_level))

    @property
    def created_at(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.timestamp, _dt.timezone.utc).replace(tzinfo=None)

    def json(self) -> dict[str, Any]:
        return {'message': self.message, 'log_level': self.log_level,
                'level_name': self.level_name, 'timestamp': self.timestamp,
                'kwargs': self.kwargs}

    def __eq__(self, other) -> bool:
        return isinstance(other, LogRecord) and self.json() == other.json()

    def __repr__(self) -> str:
        return f'<LogRecord {self.level_name} {self.message!r}>'


class LogRecords:
    """The log records of a run, oldest first (what ``run.get_log_records()`` returns)."""

    def __init__(self, records: list[LogRecord]):
        self._records = records

    def __iter__(self) -> Iterator[LogRecord]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, i):
        return self._records[i]

    @property
    def values(self) -> LogRecords:
        return self

    def values_list(self) -> list[LogRecord]:
        return list(self._records)

    def messages(self) -> list[str]:
        return [r.message for r in self._records]

    def __repr__(self) -> str:
        return f'<LogRecords of {len(self)}>'


def format_line(message: str, level: int, kwargs: dict[str, Any]) -> str:
    line = f'{MARK}[aim {LEVELS[level]}] {message}'
    if kwargs:
        line += MARK + json.dumps(kwargs, default=repr, ensure_ascii=False, sort_keys=True)
    return line


def parse_line(time: float, line: str) -> LogRecord | None:
    if not line.startswith(MARK):
        return None
    match = _LINE.match(line)
    if match is None:
        return None
    level, message, extra = match.groups()
    kwargs = json.loads(extra) if extra else {}
    return LogRecord(message, _NUMBERS[level], time, kwargs)


def is_record_line(line: str) -> bool:
    return line.startswith(MARK + '[aim ')


def level_number(level) -> int:
    if isinstance(level, str):
        number = _NUMBERS.get(level.upper())
    else:
        number = level if level in LEVELS else None
    if number is None:
        raise ValueError(f'log level must be one of {", ".join(_NUMBERS)} (or logging.DEBUG '
                         f'... logging.ERROR), got {level!r}')
    return number


__all__ = ['LogRecord', 'LogRecords', 'format_line', 'is_record_line', 'level_number',
           'parse_line']
