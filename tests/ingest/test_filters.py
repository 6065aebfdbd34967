"""
Our consumer keeps and drops exactly the events Pywikibot's ``EventStreams.streamfilter``
keeps and drops, for the same registered filters (Pywikibot itself is the reference).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pywikibot.comms.eventstreams import EventStreams as PywikibotEventStreams

from twisted_sessions.ingest.eventstreams import EventStreams
from twisted_sessions.ingest.filters import parse_filter
from twisted_sessions.ingest.mapping import path_predicate

KEYS = ("type", "bot", "ns", "title")
scalars = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(-2, 3),
    st.sampled_from(["edit", "log", "1", "true", ""]),
)
# What register_filter takes: a scalar, or a collection to match by membership.
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.lists(scalars, max_size=3).map(tuple),
    st.frozensets(st.sampled_from(["edit", "log", 0, 1, True, None]), max_size=3),
)
events = st.builds(
    lambda fields, canary: {
        **fields,
        "meta": {"domain": "canary" if canary else "en.wikipedia.org"},
    },
    st.dictionaries(st.sampled_from(KEYS), scalars, max_size=4),
    st.booleans(),
)
registrations = st.lists(
    st.tuples(
        st.sampled_from(["all", "any", "none"]),
        st.dictionaries(st.sampled_from(KEYS), values, min_size=1, max_size=2),
        st.booleans(),  # with a function filter too
    ),
    max_size=4,
)


def has_title(data: dict[str, Any]) -> bool:
    return "title" in data


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(registrations, st.booleans(), st.lists(events, min_size=1, max_size=8))
def test_the_same_events_are_kept_as_pywikibot_keeps(
    filters: list[tuple[Any, dict[str, Any], bool]],
    canary: bool,
    sample: list[dict[str, Any]],
) -> None:
    """
    ``none`` filters, then ``all``, then ``any``; bools and ``None`` by identity, strings
    and ints by equality, collections by membership; a missing key never matches; canary
    events dropped unless asked for.
    """
    reference = PywikibotEventStreams(url="http://127.0.0.1:9/none", site=None, canary=canary)
    ours = EventStreams(None, url="http://127.0.0.1:9/none", canary=canary)
    for ftype, key_values, with_function in filters:
        functions = (has_title,) if with_function else ()
        reference.register_filter(*functions, ftype=ftype, **key_values)
        ours.register_filter(*functions, ftype=ftype, **key_values)
    for event in sample:
        assert ours.streamfilter(event) is reference.streamfilter(event), event


def test_a_float_value_is_compared_where_pywikibot_raises() -> None:
    """
    Pywikibot registers a float as a membership test (``data[key] in 1.5``), which raises
    TypeError on the first event; ours compares it.
    """
    reference = PywikibotEventStreams(url="http://127.0.0.1:9/none", site=None)
    reference.register_filter(rate=1.5)
    with pytest.raises(TypeError):
        reference.streamfilter({"rate": 1.5, "meta": {}})
    ours = EventStreams(None, url="http://127.0.0.1:9/none")
    ours.register_filter(rate=1.5)
    assert ours.streamfilter({"rate": 1.5, "meta": {}})
    assert not ours.streamfilter({"rate": 2, "meta": {}})


def test_a_bad_filter_type_or_function_is_named() -> None:
    ours = EventStreams(None, url="http://127.0.0.1:9/none")
    with pytest.raises(ValueError, match="'every'"):
        ours.register_filter(ftype="every", type="edit")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a callable"):
        ours.register_filter("type")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "event", "kept"),
    [
        ("type=edit", {"type": "edit"}, True),
        ("type=edit,new", {"type": "new"}, True),
        ("type=edit,new", {"type": "log"}, False),
        ("bot=false", {"bot": False}, True),
        ("bot=false", {"bot": 0}, False),
        ("namespace=0", {"namespace": 0}, True),
        ("namespace=0", {"namespace": "0"}, False),
        ("meta.domain=fr.wikipedia.org", {"meta": {"domain": "fr.wikipedia.org"}}, True),
        ("meta.domain=fr.wikipedia.org", {"meta": "fr.wikipedia.org"}, False),
        ("length.new=null", {"length": {"new": None}}, True),
        ("length.new=null", {"length": {}}, False),
    ],
)
def test_command_line_filters(text: str, event: dict[str, Any], kept: bool) -> None:
    """
    ``--ingest-filter`` values: JSON's words, integers, alternatives joined by commas, and
    dotted paths into nested objects.
    """
    path, value = parse_filter(text)
    assert path_predicate(path, value)(event) is kept


def test_a_filter_without_a_value_is_named() -> None:
    with pytest.raises(ValueError, match="'type'"):
        parse_filter("type")
