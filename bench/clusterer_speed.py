"""
Events per second of our clusterer against mwsessions and mw.lib.sessions, same stream, same
run; and memory per active session.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python -m bench.clusterer_speed [--events 1000000] [--users 50000] [--rounds 5]

The streams: ``--events`` events with sorted whole-second timestamps, users drawn at random
(fixed seed) from ``--users``; the event data is the event number. Two rates, because the
issue's stream does not say: 10 events/s (28 h; a user's events are 5000 s apart on average,
so about half the events start a session: the clusterer's hardest case) and 100 events/s
(2.8 h; long sessions, about one per user). Each implementation clusters the whole
stream; the outputs are checked to be the same sessions.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any

from twisted_sessions.clustering import Cache, cluster

Stream = list[tuple[int, int, int]]


def make_stream(events: int, users: int, per_second: float = 10.0, seed: int = 1) -> Stream:
    rng = random.Random(seed)
    now = 1_400_000_000.0
    stream = []
    for number in range(events):
        now += rng.expovariate(per_second)
        # Whole seconds: mwsessions and mw.lib.sessions truncate fractions, and the outputs are
        # compared.
        stream.append((rng.randrange(users), int(now), number))
    return stream


def ours(stream: Stream) -> Iterable[Any]:
    return cluster(stream, cutoff=3600)


def ours_placing(stream: Stream) -> Iterable[Any]:
    return cluster(stream, cutoff=3600, late="place")


def mwsessions_sessionize(stream: Stream) -> Iterable[Any]:
    import mwsessions

    return mwsessions.sessionize(stream, cutoff=3600)  # type: ignore[no-any-return]


def mw_lib_cluster(stream: Stream) -> Iterable[Any]:
    from mw.lib import sessions

    return sessions.cluster(stream, cutoff=3600)  # type: ignore[no-any-return]


def timed(function: Callable[[Stream], Iterable[Any]], stream: Stream) -> tuple[float, int, int]:
    """
    Seconds to cluster the stream, consuming sessions as a streaming user would (counting
    them, not keeping them: keeping half a million sessions makes the timing about the
    garbage collector, for every implementation alike).
    """
    gc.collect()
    started = time.perf_counter()
    sessions = events = 0
    for _, session_events in function(stream):
        sessions += 1
        events += len(session_events)
    return time.perf_counter() - started, sessions, events


def canonical(sessions: Iterable[Any]) -> list[tuple[Any, tuple[int, ...]]]:
    return sorted((user, tuple(events)) for user, events in sessions)


def memory_per_active_session(users: int) -> float:
    """
    Bytes per open session of one event each (what the server holds between events).
    """
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cache = Cache(cutoff=3600)
    for user in range(users):
        cache.process(user, 1_400_000_000.0 + user * 0.001, user)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(cache) == users
    return (after - before) / users


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--per-second",
        type=float,
        action="append",
        help="events per second of the stream (repeatable; default: 10 then 100)",
    )
    args = parser.parse_args()
    for per_second in args.per_second or [10.0, 100.0]:
        compare(make_stream(args.events, args.users, per_second), args.users, args.rounds)
        print()
    per_session = memory_per_active_session(100_000)
    print(f"memory per active session (one event each, 100,000 open): {per_session:.0f} bytes")


def compare(stream: Stream, users: int, rounds: int) -> None:
    """
    Check that the three agree on ``stream``, then time them, alternating, ``rounds`` times.
    """
    implementations = {
        "twisted_sessions.clustering.cluster": ours,
        "  the same, late='place'": ours_placing,
        "mwsessions.sessionize": mwsessions_sessionize,
        "mw.lib.sessions.cluster": mw_lib_cluster,
    }
    reference = canonical(ours(stream))
    for name, function in implementations.items():
        assert canonical(function(stream)) == reference, f"{name} disagrees with ours"
    span = (stream[-1][1] - stream[0][1]) / 3600
    print(
        f"{len(stream):,} events, {users:,} users over {span:.1f} h: all three give the "
        f"same {len(reference):,} sessions"
    )
    del reference
    rates: dict[str, list[float]] = {name: [] for name in implementations}
    for round_number in range(rounds):
        for name, function in implementations.items():
            seconds, _, events = timed(function, stream)
            assert events == len(stream)
            rate = len(stream) / seconds
            rates[name].append(rate)
            print(f"round {round_number}: {name:<36} {rate:>10,.0f} events/s")
    # Ratios are taken round by round (each against mwsessions in the same round), then the
    # median: on a shared machine that is steadier than a ratio of medians.
    base = rates["mwsessions.sessionize"]
    for name, values in rates.items():
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        print(
            f"median {name:<36} {statistics.median(values):>10,.0f} events/s, "
            f"{ratio:5.1f} x mwsessions"
        )


if __name__ == "__main__":
    main()
