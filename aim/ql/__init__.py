"""The query language: parse -> check -> plan (push-down to the index) -> evaluate.

See docs/query-language.md. The SDK's collections (aim.sdk.collections) are the public
entry points; this package is usable on its own over an index connection.
"""
from aim.errors import QueryError
from aim.ql.errors import QueryLimitError, QuerySyntaxError, QueryTypeError, UnsafeQueryError
from aim.ql.plan import Query
from aim.ql.source import IndexSource
from aim.ql.undefined import UNDEFINED

__all__ = ['UNDEFINED', 'IndexSource', 'Query', 'QueryError', 'QueryLimitError',
           'QuerySyntaxError', 'QueryTypeError', 'UnsafeQueryError']
