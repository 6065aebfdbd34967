"""
Sessions by event time: the watermark ends them, late events within the lateness are in
order, and the oldest event an open session needs is known (for checkpoints).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twisted_sessions.clustering import cluster
from twisted_sessions.ingest import EventTimeSessions


def run(
    sessions: EventTimeSessions, events: list[tuple[str, float]]
) -> list[tuple[str, list[int]]]:
    found = []
    for number, (user, when) in enumerate(events, 1):
        found += sessions.add(user, when, number, number)
    found += sessions.finish()
    return sorted((s.user, sorted(s.events)) for s in found)


@given(st.integers(0, 10_000), st.integers(2, 30))
def test_disorder_within_the_lateness_gives_clusters_sessions(seed: int, count: int) -> None:
    """
    Events shuffled by at most the lateness make the sessions cluster() makes of them in
    time order, and none is late.
    """
    rng = random.Random(seed)
    moment, events = 0.0, []
    for _ in range(count):
        moment += rng.choice([1.0, 5.0, 50.0, 200.0])
        events.append((rng.choice("abc"), moment + rng.uniform(-20, 0)))
    sessions = EventTimeSessions(cutoff=100, lateness=20)
    ours = run(sessions, events)
    numbered = sorted(
        ((user, when, number) for number, (user, when) in enumerate(events, 1)),
        key=lambda e: e[1],
    )
    expected = sorted((s.user, sorted(s.events)) for s in cluster(numbered, cutoff=100))
    assert ours == expected
    assert sessions.late == 0


def test_the_watermark_not_the_arrival_ends_sessions() -> None:
    """
    A session ends when the newest event time less the lateness is a cutoff past its end,
    however fast the events arrive.
    """
    sessions = EventTimeSessions(cutoff=100, lateness=10)
    assert sessions.add("a", 1000.0, 1, "first") == []
    assert sessions.add("b", 1105.0, 2, "x") == []  # Watermark 1095: not yet.
    assert sessions.watermark == 1095.0
    [ended] = sessions.add("b", 1111.0, 3, "y")  # Watermark 1101: a's gap is 101 >= 100.
    assert (ended.user, ended.events, ended.end_reason) == ("a", ["first"], "cutoff")


def test_an_event_later_than_the_lateness_is_placed_or_its_own_session() -> None:
    sessions = EventTimeSessions(cutoff=100, lateness=0)
    sessions.add("a", 1000.0, 1, 1)
    sessions.add("b", 1050.0, 2, 2)
    sessions.add("a", 1030.0, 3, 3)  # Late, but a's session is open: placed in it.
    assert sessions.late == 1
    [alone] = sessions.add("c", 900.0, 4, 4)  # Late, its session long gone: its own.
    assert (alone.user, alone.events) == ("c", [4])
    ended = sessions.finish()
    assert [(s.user, s.events) for s in ended] == [("a", [1, 3]), ("b", [2])]


def test_oldest_needed_follows_open_sessions_and_the_buffer() -> None:
    sessions = EventTimeSessions(cutoff=100, lateness=30)
    assert sessions.oldest_needed() is None
    sessions.add("a", 1000.0, 1, None)
    assert sessions.oldest_needed() == 1  # In the buffer.
    sessions.add("b", 1040.0, 2, None)  # a released (watermark 1010), b buffered.
    sessions.add("b", 1135.0, 3, None)  # Watermark 1105: a ended; b open since number 2.
    assert sessions.oldest_needed() == 2
    sessions.finish()
    assert sessions.oldest_needed() is None


def test_eviction_is_the_end_reason() -> None:
    sessions = EventTimeSessions(cutoff=100, max_open=2)
    sessions.add("a", 1.0, 1, 1)
    sessions.add("b", 2.0, 2, 2)
    [evicted] = sessions.add("c", 3.0, 3, 3)
    assert (evicted.user, evicted.end_reason) == ("a", "evicted")
    assert sessions.evicted == 1


@pytest.mark.parametrize("lateness", [-1, float("inf"), True])
def test_a_bad_lateness_is_named(lateness: float) -> None:
    with pytest.raises(ValueError, match="lateness"):
        EventTimeSessions(lateness=lateness)
