"""Saved views, the experiments summary and the run comparison on a PostgreSQL repository:
the same checks as tests/web/test_views_api.py, through the same store methods."""
from __future__ import annotations

from tests.web.test_views_api import check_summary_and_compare, check_views_round_trip


def test_views_round_trip_and_restart_on_postgres(pg_url):
    check_views_round_trip(pg_url)


def test_experiments_summary_and_compare_on_postgres(pg_url):
    check_summary_and_compare(pg_url)
