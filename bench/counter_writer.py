"""
Kicks per second into a 3-axis AveragedMetrica, written to a real Redis, against a Staste-style
writer (one HINCRBY per field per kick through txredisapi), same run; and the read time of a
31-day iteration.

    .venv/bin/python -m bench.counter_writer [--kicks 1000000] [--naive-kicks 2000]

Starts its own redis-server on a unix socket. The metrica: method (4 choices) x status class
(5) x resource (a stored axis, 40 values), drawn at random with a skew, dates spread over the
last 31 days: 5 time buckets x 8 axis combinations x (sum, count) = 80 counters per kick.

Kick dates move with time as in a live server, 200,000 kicks per simulated second (the goal
rate). Ours: kicks as fast as the loop goes, one flush (script calls of at most 5,000
increments) per simulated second; the time counted is kicking plus flushing, until Redis holds
everything. The read test then adds 200,000 kicks spread over a month and times
``timespan(year, month).iterate()`` (31 days). The baseline sends the 80 HINCRBYs of each kick
without waiting (txredisapi pipelines them on its connection), awaiting each kick's replies
before the next 100 kicks so that in-flight commands stay bounded.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults

from twisted_sessions.counters import (
    AveragedMetrica,
    Axis,
    CounterStore,
    StoredChoiceAxis,
    Timespan,
)
from twisted_sessions.storage import RedisLink
from twisted_sessions.storage.keys import ALL, bucket_key, count_field, encode, value_field

METHODS = ["GET", "POST", "PUT", "DELETE"]
STATUSES = ["2xx", "3xx", "4xx", "5xx", "1xx"]
RESOURCES = [f"/page/{n}" for n in range(40)]
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def make_kicks(
    count: int, per_second: float, spread_days: int = 0, seed: int = 5
) -> list[tuple[datetime, float, str, str, str]]:
    """
    Kicks as a live server makes them (``per_second``, dates moving with time), or spread at
    random over ``spread_days`` (to fill a month for the read test).
    """
    rng = random.Random(seed)
    return [
        (
            NOW - timedelta(seconds=rng.randrange(spread_days * 86400))
            if spread_days
            else NOW + timedelta(seconds=number / per_second),
            rng.expovariate(1 / 120.0),
            rng.choices(METHODS, weights=[80, 15, 3, 2])[0],
            rng.choices(STATUSES, weights=[85, 8, 5, 1, 1])[0],
            RESOURCES[min(int(rng.expovariate(1 / 8.0)), len(RESOURCES) - 1)],
        )
        for number in range(count)
    ]


def request_metrica(name: str, store: CounterStore) -> AveragedMetrica:
    """
    The benchmarks' metrica: method x status class x a stored resource, averaged.
    """
    return AveragedMetrica(
        name,
        axes=[
            ("method", Axis(METHODS)),
            ("status", Axis(STATUSES)),
            ("resource", StoredChoiceAxis()),
        ],
        multiplier=1000,
        store=store,
    )


async def ours(link: RedisLink, kicks: list[Any], per_flush: int) -> dict[str, float]:
    await link.execute("FLUSHDB")
    store = CounterStore(reactor, link)
    metrica = request_metrica("requests", store)
    kick = metrica.kick
    flushes = 0
    started = time.perf_counter()
    for start in range(0, len(kicks), per_flush):
        for date, value, method, status, resource in kicks[start : start + per_flush]:
            kick(date=date, value=value, method=method, status=status, resource=resource)
        await store.flush()
        flushes += 1
    seconds = time.perf_counter() - started
    writer = store.writer
    assert writer.backlog == 0
    commands_per_flush, bytes_per_flush = (
        writer.commands_sent / flushes,
        writer.bytes_sent / flushes,
    )
    count = await metrica.count()
    assert count == len(kicks), (count, len(kicks))
    # The read test wants a month of data: 200,000 more kicks spread over October.
    for date, value, method, status, resource in make_kicks(200_000, 1, spread_days=31):
        kick(
            date=date - timedelta(days=21),
            value=value,
            method=method,
            status=status,
            resource=resource,
        )
    await store.flush()
    read_times = []
    for _ in range(20):
        began = time.perf_counter()
        days = await metrica.timespan(year=2026, month=10).iterate()
        read_times.append(time.perf_counter() - began)
        assert len(days) == 31
    return {
        "kicks_per_second": len(kicks) / seconds,
        "flushes": flushes,
        "commands_per_flush": commands_per_flush,
        "bytes_per_flush": bytes_per_flush,
        "read_31_days_ms": statistics.median(read_times) * 1000,
    }


def naive_fields(date: datetime, method: str, status: str, resource: str) -> list[tuple[str, str]]:
    spans = Timespan.of(date, "hour").parents()
    options = [[ALL, encode(method)], [ALL, encode(status)], [ALL, encode(resource)]]
    fields = [",".join(combo) for combo in product(*options)]
    return [(bucket_key("naive", span.code), f) for span in spans for f in fields]


async def naive(link: RedisLink, kicks: list[Any]) -> dict[str, float]:
    """
    Staste's way: for each kick, every bucket x combination, HINCRBY sum and count.
    """
    await link.execute("FLUSHDB")
    # Plain txredisapi, without our per-call deadline, so that the baseline is not slowed by it.
    send = link._factory.handler.execute_command
    started = time.perf_counter()
    commands = 0
    for start in range(0, len(kicks), 100):
        replies = []
        for date, value, method, status, resource in kicks[start : start + 100]:
            for key, field in naive_fields(date, method, status, resource):
                replies.append(send("HINCRBY", key, value_field(field), int(value * 1000)))
                replies.append(send("HINCRBY", key, count_field(field), 1))
                commands += 2
        await gatherResults(replies, consumeErrors=True)
    seconds = time.perf_counter() - started
    check = await link.execute("HGET", bucket_key("naive", "all"), count_field("*,*,*"))
    assert int(check) == len(kicks)
    return {"kicks_per_second": len(kicks) / seconds, "commands_per_kick": commands / len(kicks)}


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kicks", type=int, default=1_000_000)
    parser.add_argument("--naive-kicks", type=int, default=2_000)
    parser.add_argument("--per-flush", type=int, default=200_000)
    args = parser.parse_args(argv)
    from tests.redis_process import RedisProcess

    redis = RedisProcess().start()
    link = RedisLink(reactor, redis.address, deadline=30)
    link.connect()
    try:
        while not link.connected:
            await Deferred.fromCoroutine(_sleep(0.05))
        kicks = make_kicks(args.kicks, per_second=args.per_flush)
        result = await ours(link, kicks, args.per_flush)
        print(
            f"ours:  {result['kicks_per_second']:>10,.0f} kicks/s sustained "
            f"({args.kicks:,} kicks, {result['flushes']:.0f} flushes), "
            f"{result['commands_per_flush']:.1f} commands and "
            f"{result['bytes_per_flush'] / 1e6:.2f} MB per flush"
        )
        print(f"       31-day iteration read: {result['read_31_days_ms']:.2f} ms (median of 20)")
        baseline = await naive(link, kicks[: args.naive_kicks])
        print(
            f"naive: {baseline['kicks_per_second']:>10,.0f} kicks/s "
            f"({args.naive_kicks:,} kicks, {baseline['commands_per_kick']:.0f} HINCRBY each)"
        )
        print(
            f"ratio: {result['kicks_per_second'] / baseline['kicks_per_second']:.0f} x the "
            "Staste-style writer"
        )
    finally:
        await link.disconnect()
        redis.stop()


async def _sleep(seconds: float) -> None:
    from twisted.internet.task import deferLater

    await deferLater(reactor, seconds, lambda: None)


if __name__ == "__main__":
    done = Deferred.fromCoroutine(main(sys.argv[1:]))
    done.addErrback(lambda failure: failure.printTraceback())
    done.addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
