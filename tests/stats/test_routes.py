"""
The route table's patterns say exactly which dates exist: what the OpenAPI document promises
a client is what the server accepts.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from hypothesis import given
from hypothesis import strategies as st

from twisted_sessions.stats.routes import MOMENT_PATTERN, TIMESPAN_PATTERN


def exists(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


@given(st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.none() | st.integers(0, 24))
def test_timespan_pattern_is_the_calendar(
    year: int, month: int, day: int, hour: int | None
) -> None:
    """
    ``YYYY-MM-DD[THH]`` matches the pattern exactly when that day (and hour) exists, leap
    years included; so do ``YYYY`` and ``YYYY-MM``.
    """
    text = f"{year:04d}-{month:02d}-{day:02d}" + ("" if hour is None else f"T{hour:02d}")
    valid = year >= 1 and exists(year, month, day) and (hour is None or hour <= 23)
    assert bool(re.fullmatch(TIMESPAN_PATTERN, text)) == valid, text
    assert bool(re.fullmatch(TIMESPAN_PATTERN, f"{year:04d}")) == (year >= 1)
    assert bool(re.fullmatch(TIMESPAN_PATTERN, f"{year:04d}-{month:02d}")) == (
        year >= 1 and 1 <= month <= 12
    )


def test_leap_days() -> None:
    for year, leap in ((2024, True), (2023, False), (1900, False), (2000, True), (400, True)):
        assert bool(re.fullmatch(TIMESPAN_PATTERN, f"{year:04d}-02-29")) == leap, year


@given(st.from_regex(MOMENT_PATTERN, fullmatch=True))
def test_every_moment_the_pattern_allows_is_read(text: str) -> None:
    """
    Whatever the ``since``/``until`` pattern allows, Python reads as a moment.
    """
    datetime.fromisoformat(text)
