"""
Events per second ingested from a local SSE feed, against ``sessionize`` over the same events
from a file, measured in the same run.

    .venv/bin/python -m bench.ingest_rate [--events 100000] [--rounds 3]

The events are the tests' EventStreams-shaped fixture (``tests.ingest.fixture``: recentchange
events on 4 wikis, canary, bad and error events among them), in two shapes: ``live`` as
Wikipedia's feed is (40 events a second of event time, 2,000 users: the counts of an hour
coalesce) and ``sparse`` (an event every 30 s of 40 users: 100,000 events span 35 days, and
nearly every event is a count of its own to expand into its buckets, the counters' worst
case). They are served as fast as it
can by the tests' feed server (``tests.ingest.feed_server``, frames built once, 1000 a write)
in a process of its own. Each measurement runs in a fresh process of its own (a reactor runs
once per process) and times its first event to its last:

- ``file``: the baseline, ``python -m twisted_sessions sessionize`` over the kept events in a
  JSON lines file, in feed order (parse, cluster with late events placed, write the sessions
  to /dev/null);
- ``sse``: ``sessionize --sse`` over the feed (the Twisted client, the parser, the filters,
  sessions by event time, sessions written to /dev/null);
- ``server``: the server's pipeline, a :class:`twisted_sessions.ingest.Feed` on a real Redis
  (started here): every event counted by 4 axes, its user marked in the activity bitmaps,
  sessions by event time counted, checkpoints with the counts. ``ingested`` stops the clock
  at the last event handled, ``written`` when Redis has all the counts and marks.

Wikipedia's live edit rate is tens of events a second (recentchange, all wikis: ~30-50/s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.ingest.feed_process import FeedProcess
from tests.ingest.fixture import items, kept
from tests.redis_process import RedisProcess

PROJECT = Path(__file__).resolve().parent.parent
SINCE = "2026-01-01T00:00:00Z"


def child(mode: str, *args: str) -> dict[str, Any]:
    """
    Run one measurement in a fresh process; its JSON result.
    """
    result = subprocess.run(
        [sys.executable, "-m", "bench.ingest_rate", "--child", mode, *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{result.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def run_file(path: str, count: int) -> dict[str, Any]:
    from twisted_sessions.clustering import sessionize

    started = time.perf_counter()
    with open(os.devnull, "w") as sink:
        status = sessionize.main(
            [path, "--timestamp", "dt", "--no-progress"], stdout=sink, stderr=sink
        )
    elapsed = time.perf_counter() - started
    assert status == 0
    return {"events": count, "seconds": elapsed}


def run_sse(url: str, count: int) -> dict[str, Any]:
    from twisted.internet import reactor

    from twisted_sessions.ingest.eventstreams import EventStreams
    from twisted_sessions.ingest.eventtime import EventTimeSessions
    from twisted_sessions.ingest.mapping import FieldMapping

    # The command's own loop (ingest.command), timed from the first event to the last.
    mapping = FieldMapping("user", "meta.dt", ())
    sessions = EventTimeSessions(3600, 60)
    stream = EventStreams(reactor, url=url, since=SINCE)
    stream.set_maximum_items(count)
    sink = open(os.devnull, "w")  # noqa: SIM115
    clock: dict[str, float] = {}
    number = 0

    def item(data: dict[str, Any]) -> None:
        nonlocal number
        clock.setdefault("first", time.perf_counter())
        user, when, _ = mapping(data)
        number += 1
        for session in sessions.add(user, when, number, data):
            sink.write(json.dumps({"user": session.user, "events": session.events}) + "\n")

    def done(_: object) -> None:
        for session in sessions.finish():
            sink.write(json.dumps({"user": session.user, "events": session.events}) + "\n")
        clock["last"] = time.perf_counter()
        reactor.stop()

    stream.start(item).addBoth(done)
    reactor.run()
    return {"events": number, "seconds": clock["last"] - clock["first"]}


def run_server(url: str, count: int, socket: str) -> dict[str, Any]:
    from twisted.internet import reactor
    from twisted.internet.task import LoopingCall

    from twisted_sessions.activity import Activity
    from twisted_sessions.counters import CounterStore, CounterWriter
    from twisted_sessions.ingest import Feed
    from twisted_sessions.storage import RedisAddress, RedisLink

    address = RedisAddress(path=socket)
    link = RedisLink(reactor, address, deadline=5)
    binary = RedisLink(reactor, address, deadline=5, binary=True)
    writer = CounterWriter(reactor, link)
    store = CounterStore(reactor, link, writer)
    activity = Activity(reactor, binary)
    feed = Feed(reactor, "rc", url, store=store, activity=activity, since=SINCE)
    clock: dict[str, float] = {}
    original = feed._item

    def timed(data: dict[str, Any]) -> None:
        clock.setdefault("first", time.perf_counter())
        original(data)
        if feed.number == count:
            clock["ingested"] = time.perf_counter()

    feed._item = timed  # type: ignore[method-assign]

    def check() -> None:
        if "ingested" in clock and not writer.backlog and not activity.writer.backlog:
            clock["written"] = time.perf_counter()
            feed.stop()
            reactor.stop()

    def start() -> None:
        link.connect()
        binary.connect()
        writer.start()
        activity.writer.start()
        feed.start()
        LoopingCall(check).start(0.05)

    reactor.callWhenRunning(start)
    reactor.run()
    return {
        "events": feed.number,
        "seconds": clock["ingested"] - clock["first"],
        "written_seconds": clock["written"] - clock["first"],
        "dropped": writer.dropped + activity.writer.dropped,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        runs = {"file": run_file, "sse": run_sse, "server": run_server}
        target, count, *more = args.rest
        print(json.dumps(runs[args.child](target, int(count), *more)))
        return
    for shape, gap, users in (("live", 0.025, 2000), ("sparse", 30.0, 40)):
        measure(shape, args.events, args.rounds, gap, users)


def measure(shape: str, count: int, rounds: int, gap: float, users: int) -> None:
    """
    Alternate the three measurements ``rounds`` times on one shape of events; print rates.
    """
    events = kept(items(count, gap=gap, users=users))
    feed_args = ("--count", str(count), "--gap", str(gap), "--users", str(users))
    work = Path(tempfile.mkdtemp(prefix="ts-ingest-"))
    path = work / "events.jsonl"
    # The file's reader takes top-level fields: meta.dt is copied up as dt (ISO 8601 for
    # both, so that both parse the same times).
    path.write_text("".join(json.dumps({**e, "dt": e["meta"]["dt"]}) + "\n" for e in events))
    rates: dict[str, list[float]] = {"file": [], "sse": [], "server": [], "server written": []}
    for round_ in range(rounds):
        rates["file"].append(len(events) / child("file", str(path), str(len(events)))["seconds"])
        feed = FeedProcess(*feed_args, "--batch", "1000", "--interval", "0").start()
        try:
            result = child("sse", feed.stream_url, str(len(events)))
            assert result["events"] == len(events), result
            rates["sse"].append(len(events) / result["seconds"])
        finally:
            feed.stop()
        redis = RedisProcess().start()
        feed = FeedProcess(*feed_args, "--batch", "1000", "--interval", "0").start()
        try:
            result = child("server", feed.stream_url, str(len(events)), str(redis.socket))
            assert result["events"] == len(events) and result["dropped"] == 0, result
            rates["server"].append(len(events) / result["seconds"])
            rates["server written"].append(len(events) / result["written_seconds"])
        finally:
            feed.stop()
            redis.stop()
        print(
            f"{shape} round {round_ + 1}: "
            + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()),
            flush=True,
        )
    baseline = statistics.median(rates["file"])
    print(
        f"\n{shape}: {len(events):,} events, median of {rounds} rounds (events/s, ratio to file):"
    )
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:15} {rate:10,.0f}   {rate / baseline:5.2f}")
    print(flush=True)


if __name__ == "__main__":
    main()
