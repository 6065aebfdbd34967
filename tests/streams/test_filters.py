"""
Server-side filters match as Pywikibot's register_filter matches its keyword filters.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twisted_sessions.streams.filters import EventFilter

EVENT: dict[str, Any] = {"type": "edit", "bot": True, "ns": 0, "count": 1, "title": "true"}


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        ({"type": ["edit"]}, True),
        ({"type": ["log"]}, False),
        ({"type": ["log", "edit"]}, True),
        ({"bot": ["true"]}, True),
        ({"bot": ["1"]}, False),  # 1 == True in Python; Pywikibot compares bools with "is".
        ({"count": ["true"]}, False),  # ...and the other way round.
        ({"count": ["1"]}, True),
        ({"ns": ["0"]}, True),
        ({"ns": ["false"]}, False),
        ({"title": ["true"]}, False),  # true is the boolean; the text needs quotes:
        ({"title": ['"true"']}, True),
        ({"missing": ["null"]}, False),  # A missing key never matches, not even null.
        ({"type": ["edit"], "bot": ["false"]}, False),  # All must match.
        ({}, True),
    ],
)
def test_query_filters(query: dict[str, list[str]], matches: bool) -> None:
    """
    Each case is what Pywikibot's register_filter(**kwargs) decides for the same values.
    """
    assert EventFilter(query).matches(EVENT) is matches


def test_a_bad_quoted_value_is_named() -> None:
    with pytest.raises(ValueError, match="filter value"):
        EventFilter({"title": ['"unterminated']})


scalars = st.one_of(
    st.booleans(), st.none(), st.integers(-5, 5), st.sampled_from(["edit", "log", "1", "true"])
)
#: Values as Pywikibot's register_filter takes them, and as a query string writes them.
VALUES: list[tuple[Any, str]] = [
    (True, "true"),
    (False, "false"),
    (None, "null"),
    (0, "0"),
    (1, "1"),
    (3, "3"),
    ("edit", '"edit"'),
    ("1", '"1"'),
    ("true", '"true"'),
]


@pytest.fixture(scope="module")
def pywikibot_filters() -> dict[tuple[str, str], Any]:
    """
    The filter of one Pywikibot EventStreams per key and value, with that keyword filter
    registered (the functions only: an EventStreams' repr would look its site up online).
    """
    from pywikibot.comms.eventstreams import EventStreams

    made = {}
    for key in ("a", "b"):
        for value, text in VALUES:
            stream = EventStreams(url="http://127.0.0.1:9/none", site=None)
            stream.register_filter(**{key: value})
            made[(key, text)] = (value, _plain(stream.streamfilter))
    return made


def _plain(function: Any) -> Any:
    def call(data: dict[str, Any]) -> bool:
        return bool(function(data))

    return call


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), scalars), st.sampled_from(["a", "b"]))
def test_same_decision_as_pywikibot(
    pywikibot_filters: dict[tuple[str, str], Any], data: dict[str, Any], key: str
) -> None:
    """
    For any event and any scalar value Pywikibot would be given, the query-string form of
    that value filters the same events as Pywikibot's own filter, with one difference on
    purpose: Pywikibot compares a number with ``==``, so its ``a=0`` keeps ``"a": false``
    (and ``a=1`` keeps ``true``); the issue's rule is exact equality, and a number never
    matches a boolean here. And a query string has no types: unquoted, ``a=1`` is also the
    text "1", and matches it (``a="1"`` is the text only).
    """
    for value, text in VALUES:
        wanted, pywikibot_filter = pywikibot_filters[(key, text)]
        theirs = pywikibot_filter(data)
        if isinstance(wanted, int) and not isinstance(wanted, bool):
            found = data.get(key)
            theirs = (theirs and not isinstance(found, bool)) or found == text
        assert EventFilter({key: [text]}).matches(data) is theirs, (data, key, value)
