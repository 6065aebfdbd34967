"""
Key and field encoding: injective, reversible, and never producing a separator.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twisted_sessions.keys import bucket_key, combination_field, decode, encode
from twisted_sessions.timebuckets import Timespan, series


@given(st.text(), st.text())
def test_encoding_is_injective_and_reversible(first: str, second: str) -> None:
    """
    Different values never encode alike, decoding gives the value back, and no encoded value
    contains a separator, a brace, a star, white space or anything outside printable ASCII.
    """
    assert decode(encode(first)) == first
    assert (encode(first) == encode(second)) == (first == second)
    encoded = encode(first)
    assert not set(encoded) & set(":,*/{}= \n\t")
    assert encoded.isascii() and encoded.isprintable()


@given(st.lists(st.text(), min_size=1, max_size=4), st.lists(st.text(), min_size=1, max_size=4))
def test_fields_of_different_combinations_differ(first: list[str], second: list[str]) -> None:
    """
    Two combinations of the same axes give the same field only if all values are equal.
    """
    if len(first) != len(second):
        return
    same = combination_field([encode(v) for v in first]) == combination_field(
        [encode(v) for v in second]
    )
    assert same == (first == second)


@given(st.text(min_size=1), st.text(min_size=1))
def test_metricas_never_share_keys(first: str, second: str) -> None:
    """
    No metrica name can produce another metrica's bucket key.
    """
    if first != second:
        assert bucket_key(first, "all") != bucket_key(second, "all")


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
