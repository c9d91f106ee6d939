"""Small public types of the SDK that user code imports by their Aim 3 path."""
from __future__ import annotations

import enum


class QueryReportMode(enum.IntEnum):
    """How a query reports progress (``Repo.query_runs(q, report_mode=...)``).

    Queries here read a compact index and stream their results, so there is no long scan
    to report on: every mode is accepted and results are yielded as plain items.
    """

    DISABLED = 0
    PROGRESS_BAR = 1
    PROGRESS_TUPLE = 2


__all__ = ['QueryReportMode']
