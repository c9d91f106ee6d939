"""The value of a missing key.

`UNDEFINED` is falsy, every ordering with it is false, and attributes, items, calls and
arithmetic on it give `UNDEFINED` again, so a query over runs that lack a param quietly
does not match them. The query evaluator (`py_compare` in evaluate.py) treats it as `None`
for `==`, `!=`, `is` and `is not`: `x == None` and `x is None` both ask "is this param
missing or null?" (docs/query-language.md). Python's own `==` on the object itself, used
only inside containers (`[run.missing] == [None]`), stays false.
"""
from __future__ import annotations


class Undefined:
    __slots__ = ()
    _instance: Undefined | None = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return 'UNDEFINED'

    # Python's own comparisons (inside sorted(), min(), `in` on lists) must agree with the
    # evaluator's rules for undefined values.
    def __eq__(self, other) -> bool:
        return False

    def __ne__(self, other) -> bool:
        return True

    def __lt__(self, other) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __hash__(self) -> int:
        return 0x5AFE


UNDEFINED = Undefined()
