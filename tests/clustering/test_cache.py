"""
The clusterer's semantics: boundaries, order, timestamps, late events, and the properties every
stream must keep (hypothesis).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from math import inf, nextafter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twisted_sessions.clustering import Cache, LateEventError, Session, cluster
from twisted_sessions.clustering.timestamps import to_seconds

CUTOFF = 10

# Users of mixed, mutually non-comparable types, to prove users are never compared.
USERS = st.sampled_from([1, "1", (1,), frozenset({2}), None, 2.5, "walter"])


@st.composite
def in_order_streams(draw: st.DrawFn) -> list[tuple[Any, float, int]]:
    """
    Streams of (user, timestamp, event id) with non-decreasing timestamps; gaps cluster
    around the cutoff so that the exact boundary is exercised.
    """
    gaps = draw(
        st.lists(
            st.one_of(
                st.sampled_from([0, 0, 1, CUTOFF - 1, CUTOFF, CUTOFF + 1, 2 * CUTOFF]),
                st.floats(min_value=0, max_value=3 * CUTOFF, allow_nan=False),
            ),
            max_size=80,
        )
    )
    users = draw(st.lists(USERS, min_size=len(gaps), max_size=len(gaps)))
    stream, now = [], 1_000.0
    for number, (gap, user) in enumerate(zip(gaps, users, strict=True)):
        now += gap
        stream.append((user, now, number))
    return stream


def reference_sessions(stream: list[tuple[Any, float, int]]) -> list[tuple[Any, list[int]]]:
    """
    The obvious model: per user, split the events wherever the gap is at least the cutoff.
    """
    by_user: dict[Any, list[tuple[float, int]]] = {}
    order: list[Any] = []
    for user, timestamp, number in stream:
        key = (type(user), user)
        if key not in by_user:
            by_user[key] = []
            order.append(key)
        by_user[key].append((timestamp, number))
    sessions = []
    for key in order:
        current: list[int] = []
        last = None
        for timestamp, number in by_user[key]:
            if last is not None and timestamp - last >= CUTOFF:
                sessions.append((key[1], current))
                current = []
            current.append(number)
            last = timestamp
        sessions.append((key[1], current))
    return sessions


@settings(max_examples=300, deadline=None)
@given(in_order_streams())
def test_properties_of_in_order_streams(stream: list[tuple[Any, float, int]]) -> None:
    """
    Every event lands in exactly one session (none lost or duplicated), order is kept inside a
    session, gaps inside a session are below the cutoff and between a user's sessions at least
    the cutoff; sessions equal the obvious model's, come out in the order they end, and carry
    start, end and the user's session index.
    """
    timestamps = {number: timestamp for _, timestamp, number in stream}
    sessions = list(cluster(stream, cutoff=CUTOFF))
    emitted = [number for session in sessions for number in session.events]
    assert sorted(emitted) == [number for _, _, number in stream]
    expected = reference_sessions(stream)
    as_keys = sorted((repr(s.user), type(s.user).__name__, s.events) for s in sessions)
    assert as_keys == sorted((repr(u), type(u).__name__, e) for u, e in expected)
    per_user: dict[Any, list[Session]] = {}
    for session in sessions:
        times = [timestamps[number] for number in session.events]
        assert session.events == sorted(session.events), "arrival order kept"
        assert all(b - a < CUTOFF for a, b in itertools.pairwise(times))
        assert (session.start, session.end) == (times[0], times[-1])
        assert session.duration == times[-1] - times[0]
        assert session.event_count == len(times)
        per_user.setdefault((type(session.user), session.user), []).append(session)
    for user_sessions in per_user.values():
        ordered = sorted(user_sessions, key=lambda s: s.start)
        assert [s.user_index for s in ordered] == list(range(len(ordered)))
        for before, after in itertools.pairwise(ordered):
            assert after.start - before.end >= CUTOFF
    ends = [(s.end, max(s.events)) for s in sessions]
    assert ends == sorted(ends), "sessions come out in the order they end"


def test_gap_of_exactly_cutoff_starts_a_new_session() -> None:
    """
    The boundary is >=: a gap of exactly the cutoff ends the session, a hair less does not.
    """
    assert [len(s.events) for s in cluster([("u", 0, 1), ("u", 3600, 2)])] == [1, 1]
    assert [len(s.events) for s in cluster([("u", 0, 1), ("u", 3599.999, 2)])] == [2]


def test_float_gaps_follow_the_subtraction() -> None:
    """
    With float timestamps the rule is exactly ``t - last >= cutoff``, however
    ``last + cutoff`` rounds.
    """
    for last in (0.1, 1014.0650829271495, 1e9 + 0.7):
        for delta in (0.2, 0.30000000000000004, 10.0):
            for ts in (last + delta, nextafter(last + delta, inf), nextafter(last + delta, -inf)):
                expected = 2 if ts - last >= delta else 1
                assert len(list(cluster([("u", last, 1), ("u", ts, 2)], cutoff=delta))) == expected


def test_gap_measured_from_last_event() -> None:
    """
    A long session keeps going as long as each gap is below the cutoff.
    """
    stream = [("u", t, t) for t in range(0, 36_000, 3_000)]
    [session] = cluster(stream)
    assert session.duration == 33_000


def test_ties_are_broken_by_arrival_order() -> None:
    """
    Sessions ending at the same time come out in the arrival order of their last events.
    """
    stream = [("b", 0, 1), ("a", 0, 2), (3, 0, 3), ("b", 100, 4)]
    assert [s.user for s in cluster(stream, cutoff=10)] == ["b", "a", 3, "b"]
    cache = Cache(cutoff=10)
    for user, timestamp, data in [("z", 4, 1), ("y", 5, 2), ("x", 5, 3), ("z", 5, 4)]:
        cache.process(user, timestamp, data)
    assert [s.user for s in cache.get_active_sessions()] == ["y", "x", "z"]


def test_late_sessions_end_after_in_order_ones_at_the_same_time() -> None:
    """
    With late events placed, sessions are still handed out by end time; at the same end an
    in-order session comes first.
    """
    cache = Cache(cutoff=10, late="place")
    cache.process("a", 100, 1)
    cache.process("b", 103, 2)
    cache.process("c", 101, 3)  # late: a session of its own, ending at 111
    cache.process("d", 101, 4)  # late too
    cache.process("e", 103, 5)
    assert [s.user for s in cache.get_active_sessions()] == ["a", "c", "d", "b", "e"]
    assert [s.user for s in cache.expire(111)] == ["a", "c", "d"]
    assert cache.next_expiry == 113
    assert [s.user for s in cache.finish_all()] == ["b", "e"]


@pytest.mark.parametrize(
    "timestamp",
    [
        1420070400,
        1420070400.0,
        datetime(2015, 1, 1, tzinfo=UTC),
        datetime(2015, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(2015, 1, 1),
        "2015-01-01T00:00:00Z",
        "2015-01-01T01:00:00+01:00",
        "2015-01-01 00:00:00",
        "20150101000000",
        20150101000000,
    ],
)
def test_timestamp_forms(timestamp: Any) -> None:
    """
    Seconds, aware or naive (UTC) datetimes, ISO 8601 and MediaWiki strings all mean the same
    instant.
    """
    assert to_seconds(timestamp) == 1420070400.0
    cache = Cache()
    cache.process("u", timestamp, "x")
    [session] = cache.finish_all()
    assert session.start == 1420070400.0


@pytest.mark.parametrize(
    "timestamp, error",
    [
        ("yesterday", ValueError),
        ("2015-13-01", ValueError),
        ("2015010100000", ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (True, TypeError),
        (None, TypeError),
        (object(), TypeError),
        (b"20150101000000", TypeError),
    ],
)
def test_bad_timestamps_are_named(timestamp: Any, error: type[Exception]) -> None:
    """
    Anything else is a TypeError or ValueError quoting the bad value, and changes nothing.
    """
    cache = Cache()
    with pytest.raises(error) as caught:
        cache.process("u", timestamp, "x")
    assert repr(timestamp)[:12] in str(caught.value)
    assert len(cache) == 0


def test_late_event_is_placed_in_its_session() -> None:
    """
    With ``late="place"`` a late event joins the user's active session in timestamp order.
    """
    cache = Cache(cutoff=10, late="place")
    cache.process("u", 100, "a")
    cache.process("v", 105, "other")
    cache.process("u", 108, "c")
    cache.process("u", 103, "b")
    cache.process("u", 95, "early")
    [session] = [s for s in cache.finish_all() if s.user == "u"]
    assert session.events == ["early", "a", "b", "c"]
    assert (session.start, session.end) == (95, 108)
    assert cache.late_events == 2


def test_late_event_of_ended_session_stands_alone() -> None:
    """
    A late event whose session already ended forms a session of its own, handed out at once.
    """
    cache = Cache(cutoff=10, late="place")
    cache.process("u", 100, "a")
    cache.process("v", 200, "b")
    [ended] = cache.process("u", 150, "late")
    assert (ended.user, ended.events, ended.start) == ("u", ["late"], 150)
    assert ended.user_index == 1
    assert cache.late_events == 1


def test_late_event_of_an_ended_session_carries_its_index() -> None:
    """
    A late event that belongs to a session already handed out comes out on its own but with
    that session's index (the user's first visit stays visit 0, not a new visit 2); one older
    than any session known gets a new index.
    """
    cache = Cache(cutoff=10, late="place")
    cache.process("u", 100, "first")
    [first] = cache.process("u", 200, "second")
    assert first.user_index == 0
    [late] = cache.process("u", 105, "late, of the first visit")
    assert (late.events, late.user_index) == (["late, of the first visit"], 0)
    [early] = cache.process("u", 95, "late, just before the first visit")
    assert early.user_index == 0
    [older] = cache.process("u", 50, "older than any visit known")
    assert older.user_index == 2
    [second] = cache.finish_all()
    assert second.user_index == 1


def test_reject_policy_refuses_late_events() -> None:
    """
    By default (``late="reject"``) a late event raises LateEventError naming it, and changes
    nothing.
    """
    cache = Cache(cutoff=10)
    cache.process("u", 100, "a")
    with pytest.raises(LateEventError, match="'u' at 99"):
        cache.process("u", 99, "b")
    [session] = cache.finish_all()
    assert session.events == ["a"]


def test_expire_ends_sessions_without_new_events() -> None:
    """
    ``expire(now)`` ends sessions whose cutoff passed, as a clock would; ``next_expiry`` says
    when to call it.
    """
    cache = Cache(cutoff=10)
    cache.process("u", 100, "a")
    cache.process("u", 105, "b")
    assert cache.next_expiry == 115
    assert cache.expire(110) == []
    assert cache.expire(114.999) == []
    [session] = cache.expire(115)
    assert session.events == ["a", "b"]
    assert cache.next_expiry is None


def test_end_user_finishes_one_session() -> None:
    """
    ``end_user`` ends one user's session now and leaves the others.
    """
    cache = Cache(cutoff=10)
    cache.process("u", 100, "a")
    cache.process("v", 101, "b")
    ended = cache.end_user("u")
    assert ended is not None and ended.events == ["a"]
    assert cache.end_user("u") is None
    assert [s.user for s in cache.expire(200)] == ["v"]


def test_session_is_a_namedtuple() -> None:
    """
    A Session unpacks, compares and prints like mw.lib.sessions' namedtuple.
    """
    session = Session("u", [1, 2], 5.0, 9.0, 3)
    user, events = session
    assert (user, events) == ("u", [1, 2])
    assert session == ("u", [1, 2])
    assert repr(session) == "Session(user='u', events=[1, 2])"
    assert (session.start, session.end, session.duration, session.user_index) == (5, 9, 4, 3)


def test_remembered_users_are_bounded() -> None:
    """
    With ``remember_users`` the per-user session counts are bounded; forgotten users start
    counting again at 0.
    """
    cache = Cache(cutoff=10, remember_users=2)
    for user in ["a", "b", "c"]:
        cache.process(user, 0, user)
    ended = cache.process("a", 20, "again")
    assert [s.user_index for s in ended] == [0, 0, 0]
    [session] = cache.finish_all()
    assert session.user_index == 0


def test_remembered_users_keep_the_recently_seen() -> None:
    """
    Past ``remember_users``, a user whose sessions keep coming is remembered however many other
    users pass; one not seen while ``remember_users`` other users started sessions is forgotten.
    """
    cache = Cache(cutoff=10, remember_users=4)
    clock = iter(range(0, 10_000, 20))  # Every event a new session: 20 s apart, cutoff 10.
    events = [("a", f"passer-by {number}") for number in range(10)]
    users = [user for pair in events for user in pair] + [f"newcomer {n}" for n in range(4)]
    sessions = [s for user in [*users, "a"] for s in cache.process(user, next(clock), user)]
    sessions += cache.finish_all()
    indexes = [s.user_index for s in sessions if s.user == "a"]
    assert indexes == [*range(10), 0]


@pytest.mark.parametrize(
    "settings_, message",
    [
        ({"cutoff": 0}, "cutoff"),
        ({"cutoff": "1h"}, "cutoff"),
        ({"late": "drop"}, "late"),
        ({"remember_users": 0}, "remember_users"),
        ({"max_events": 0}, "max_events"),
        ({"max_events": 2.5}, "max_events"),
        ({"max_open": True}, "max_open"),
    ],
)
def test_bad_settings_are_named(settings_: dict[str, Any], message: str) -> None:
    """
    A bad setting is a ValueError naming it.
    """
    with pytest.raises(ValueError, match=message):
        Cache(**settings_)


@st.composite
def jittered_streams(draw: st.DrawFn) -> list[tuple[Any, float, int]]:
    """
    Mostly ordered streams where some events arrive late by up to two cutoffs.
    """
    stream = draw(in_order_streams())
    jitters = draw(
        st.lists(
            st.sampled_from([0, 0, 0, 1, 5, CUTOFF, 2 * CUTOFF]),
            min_size=len(stream),
            max_size=len(stream),
        )
    )
    return [(u, t - j, n) for (u, t, n), j in zip(stream, jitters, strict=True)]


@settings(max_examples=300, deadline=None)
@given(jittered_streams())
def test_late_events_placed_lose_nothing(stream: list[tuple[Any, float, int]]) -> None:
    """
    With ``late="place"`` every event of a disordered stream lands in exactly one session,
    each session's events are in timestamp order with gaps below the cutoff, and the
    streaming loop (``cluster``) agrees with event-by-event ``process``.
    """
    timestamps = {number: timestamp for _, timestamp, number in stream}
    sessions = list(cluster(stream, cutoff=CUTOFF, late="place"))
    assert sorted(n for s in sessions for n in s.events) == [n for _, _, n in stream]
    for session in sessions:
        times = [timestamps[n] for n in session.events]
        assert times == sorted(times)
        assert all(b - a < CUTOFF for a, b in pairwise(times))
        assert (session.start, session.end) == (times[0], times[-1])
    cache = Cache(cutoff=CUTOFF, late="place")
    one_by_one = [s for u, t, n in stream for s in cache.process(u, t, n)]
    one_by_one += cache.finish_all()
    assert [(s.user, s.events) for s in one_by_one] == [(s.user, s.events) for s in sessions]


@settings(max_examples=200, deadline=None)
@given(in_order_streams())
def test_streaming_loop_equals_process(stream: list[tuple[Any, float, int]]) -> None:
    """
    The inlined streaming loop and ``process`` give the same sessions in the same order, with
    the same indexes, whatever the policy.
    """
    for late in ("reject", "place"):
        cache = Cache(cutoff=CUTOFF, late=late)  # type: ignore[arg-type]
        one_by_one = [s for u, t, n in stream for s in cache.process(u, t, n)]
        one_by_one += cache.finish_all()
        streamed = list(cluster(stream, cutoff=CUTOFF, late=late))  # type: ignore[arg-type]
        assert [(s.user, s.events, s.user_index, s.start, s.end) for s in streamed] == [
            (s.user, s.events, s.user_index, s.start, s.end) for s in one_by_one
        ]


@pytest.mark.parametrize("timestamp", [float("inf"), float("-inf"), float("nan"), "soon", None])
def test_streaming_loop_names_bad_timestamps(timestamp: Any) -> None:
    """
    The streaming loop's fast path lets no bad timestamp through: the same error as process.
    """
    with pytest.raises((TypeError, ValueError), match="timestamp"):
        list(cluster([("u", 1.0, 1), ("u", timestamp, 2)]))


def run_bounded(
    stream: list[tuple[Any, float, int]], late: str, **bounds: int
) -> tuple[list[Session], Cache]:
    cache = Cache(cutoff=CUTOFF, late=late, **bounds)  # type: ignore[arg-type]
    sessions = list(cache.run(stream))
    return sessions + cache.finish_all(), cache


@settings(max_examples=200, deadline=None)
@given(in_order_streams(), st.integers(min_value=1, max_value=4))
def test_max_events_keeps_the_first_events_and_counts_all(
    stream: list[tuple[Any, float, int]], max_events: int
) -> None:
    """
    With ``max_events`` the sessions are the same visits (user, start, end, count, order),
    each keeping the first ``max_events`` events' data.
    """
    unbounded = list(cluster(stream, cutoff=CUTOFF))
    bounded, _ = run_bounded(stream, "reject", max_events=max_events)
    assert [(s.user, s.start, s.end, s.event_count, s.user_index) for s in bounded] == [
        (s.user, s.start, s.end, s.event_count, s.user_index) for s in unbounded
    ]
    for short, full in zip(bounded, unbounded, strict=True):
        assert short.events == full.events[:max_events]
        assert short.untracked == max(len(full.events) - max_events, 0)


@settings(max_examples=200, deadline=None)
@given(jittered_streams(), st.integers(min_value=1, max_value=3))
def test_max_events_with_late_events_loses_no_count(
    stream: list[tuple[Any, float, int]], max_events: int
) -> None:
    """
    Late events placed into full sessions are counted, and move the session's start.
    """
    timestamps = {number: timestamp for _, timestamp, number in stream}
    unbounded = list(cluster(stream, cutoff=CUTOFF, late="place"))
    bounded, _ = run_bounded(stream, "place", max_events=max_events)
    assert [(s.user, s.start, s.end, s.event_count) for s in bounded] == [
        (s.user, s.start, s.end, s.event_count) for s in unbounded
    ]
    for session in bounded:
        assert len(session.events) <= max_events
        times = [timestamps[n] for n in session.events]
        assert times == sorted(times)


@settings(max_examples=200, deadline=None)
@given(jittered_streams(), st.integers(min_value=1, max_value=3))
def test_max_open_bounds_open_sessions_and_loses_no_event(
    stream: list[tuple[Any, float, int]], max_open: int
) -> None:
    """
    With ``max_open`` no more sessions are ever open than the bound; an evicted session is
    handed out at once, and every event is still in exactly one session.
    """
    cache = Cache(cutoff=CUTOFF, late="place", max_open=max_open)
    sessions: list[Session] = []
    for user, timestamp, number in stream:
        sessions += cache.process(user, timestamp, number)
        assert len(cache) <= max_open
    sessions += cache.finish_all()
    assert sorted(n for s in sessions for n in s.events) == [n for _, _, n in stream]
    if len({(type(u), u) for u, _, _ in stream}) <= max_open:
        assert cache.evicted == 0


def test_late_bookkeeping_does_not_grow_with_time() -> None:
    """
    A server sees late events all the time (requests finish out of order), each session
    soon back in order: what is kept for late sessions does not grow with the stream.
    """
    cache = Cache(cutoff=1800, late="place")
    for second in range(20_000):
        cache.process("a", second + 0.1, "a, in order")
        cache.process("b", second + 0.5, "b, in order")
        # Arrived before b's but finished after it: a's newest event, late for the stream.
        cache.process("a", second + 0.3, "a, late")
    assert cache.late_events == 20_000
    assert len(cache._late_heap) <= 2


def test_max_open_ends_single_event_sessions_first() -> None:
    """
    At the bound, the oldest session that still has a single event ends, even if a visit in
    progress would end before it: a flood of one-event users (a crawler without cookies) does
    not cut other users' visits in two.
    """
    cache = Cache(cutoff=100, max_open=3)
    cache.process("user", 0, "u1")
    cache.process("user", 1, "u2")
    ended = []
    for number in range(10):
        ended += cache.process(f"bot{number}", 2 + number, f"b{number}")
    assert [s.user for s in ended] == [f"bot{n}" for n in range(8)]
    assert cache.evicted == 8
    # A single-event session that takes a second event is no longer a candidate.
    cache.process("bot9", 20, "b9-2")
    ended = cache.process("late-comer", 21, "l1")
    assert [s.user for s in ended] == ["bot8"]
    # With no single-event session left, the one that would end first goes.
    cache.process("late-comer", 22, "l2")
    ended = cache.process("another", 23, "a1")
    assert [(s.user, s.events) for s in ended] == [("user", ["u1", "u2"])]


def test_max_open_keeps_few_candidates() -> None:
    """
    The single-event candidates never grow much beyond the open sessions, however many
    sessions open and end over time.
    """
    cache = Cache(cutoff=10, max_open=50)
    for number in range(5_000):
        cache.process(f"user{number % 700}", float(number), number)
        assert cache._singles is not None
        assert len(cache._singles) <= len(cache) + 1


def test_max_open_ends_the_session_that_would_end_first() -> None:
    """
    At the bound, a new user's session ends the open session with the oldest last event,
    at once, and counts it.
    """
    cache = Cache(cutoff=100, max_open=2)
    cache.process("a", 0, "a1")
    cache.process("b", 1, "b1")
    cache.process("a", 2, "a2")
    ended = cache.process("c", 3, "c1")
    assert [(s.user, s.events) for s in ended] == [("b", ["b1"])]
    assert cache.evicted == 1
    assert [(s.user, s.events) for s in cache.finish_all()] == [
        ("a", ["a1", "a2"]),
        ("c", ["c1"]),
    ]
