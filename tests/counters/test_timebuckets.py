"""
Time buckets: series include both ends, impossible buckets are named.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from twisted_sessions.counters.timebuckets import Timespan, series


def test_timeserie_spans_include_both_ends() -> None:
    """
    A series of days or hours includes the buckets of both ends, across month and year ends.
    """
    days = series(datetime(2011, 12, 30, 5), datetime(2012, 1, 2, 1), "day")
    assert [d.code for d in days] == ["d2011-12-30", "d2011-12-31", "d2012-01-01", "d2012-01-02"]
    hours = series(datetime(2012, 2, 29, 22), datetime(2012, 3, 1, 0, 30), "hour")
    assert [h.code for h in hours] == ["h2012-02-29T22", "h2012-02-29T23", "h2012-03-01T00"]
    with pytest.raises(ValueError, match="before"):
        series(datetime(2012, 1, 2), datetime(2012, 1, 1), "day")
    with pytest.raises(ValueError, match="scale"):
        series(datetime(2012, 1, 1), datetime(2012, 1, 2), "week")


@pytest.mark.parametrize(
    "parts, message",
    [
        ((2010, 13), "month 13"),
        ((2010, 2, 29), "day 29 does not exist"),
        ((2010, 1, 1, 24), "hour 24"),
        ((None, 2), "finer part"),
    ],
)
def test_impossible_timespans_are_named(parts: tuple[int | None, ...], message: str) -> None:
    """
    An impossible or incomplete bucket is a ValueError saying what is wrong.
    """
    with pytest.raises(ValueError, match=message):
        Timespan(*parts)
