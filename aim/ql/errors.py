"""Errors of the query language.

::

    QueryError (aim.errors)          base: every query problem, with .position and .hint
    ├── QuerySyntaxError (SyntaxError) the text is not a query (bad token, `&&`, brackets)
    ├── UnsafeQueryError             the query uses something the sandbox does not allow
    ├── QueryLimitError              the query ran past its CPU budget or built a huge value
    └── QueryTypeError               an operation the query's own objects do not support
                                     (`metric.values > 0`, `metric.mean()`, `len(run)`)

``position`` is a 0-based character offset into the query text the user wrote (``None``
when the problem has no single place), ``hint`` says what to write instead.
"""
from __future__ import annotations

from typing import Any, TypeVar, cast

from aim.errors import QueryError

E = TypeVar('E', bound=QueryError)


class QuerySyntaxError(QueryError, SyntaxError):
    """Also a SyntaxError, which is what Aim raised: `except SyntaxError` keeps working."""


class UnsafeQueryError(QueryError):
    pass


class QueryLimitError(QueryError):
    pass


class QueryTypeError(QueryError):
    """The query uses `run`, `metric`, `run.metrics` or a series' values in a way they
    do not support. Unlike a type error on a param (undefined, so the item does not match),
    this is wrong for every item, so it is an error rather than an empty result."""


def format_query_error(message: str, query: str | None, position: int | None,
                       hint: str | None) -> str:
    """The message shown to the user: what went wrong, where, and what to do."""
    parts = [message]
    if query is not None and position is not None:
        line_start = query.rfind('\n', 0, position) + 1
        line_end = query.find('\n', position)
        line = query[line_start:line_end if line_end >= 0 else len(query)]
        parts.append(f'at position {position}:')
        parts.append('    ' + line)
        parts.append('    ' + ' ' * (position - line_start) + '^')
    if hint:
        parts.append(hint)
    return '\n'.join(parts)


def query_error(cls: type[E], message: str, query: str | None = None,
                position: int | None = None, hint: str | None = None) -> E:
    """An error of class `cls`; `.reason` keeps the message without position and hint."""
    err = cls(format_query_error(message, query, position, hint), position=position,
              hint=hint, query=query)
    cast(Any, err).reason = message
    return err
