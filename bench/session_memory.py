"""
Memory of live sessions, through the real request path, on the real (running) reactor.

    .venv/bin/python -m bench.session_memory [--sessions 100000] [--flood 300000] [--cap 30000]

1. RSS growth per live session: ``--sessions`` cookieless requests to a Site without a useful
   cap, each creating a web session and a visitor id; RSS (from /proc) before and after.
2. A flood of ``--flood`` requests that never send the cookie back, to a Site with
   ``max_sessions=--cap``: RSS sampled along the way, to show it stays flat once the cap is hit.

The baseline is the same process before any session exists.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
from collections.abc import Callable

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from bench.pages import make_page
from twisted_sessions import Site

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def one_request(site: Site) -> None:
    channel = site.buildProtocol(None)
    channel.makeConnection(StringTransport())
    channel.dataReceived(REQUEST)
    channel.connectionLost(None)


def drive(site: Site, count: int, every: int, sample: Callable[[int], None]) -> Deferred[None]:
    """
    Send ``count`` requests in batches, letting the reactor run between batches (so that
    cancelled timers are cleaned up as in a real server), calling ``sample`` every ``every``.
    """
    done = 0
    finished: Deferred[None] = Deferred()

    def batch() -> None:
        nonlocal done
        for _ in range(min(1000, count - done)):
            one_request(site)
            done += 1
            if done % every == 0:
                sample(done)
        if done < count:
            reactor.callLater(0, batch)  # type: ignore[attr-defined]
        else:
            finished.callback(None)

    reactor.callLater(0, batch)  # type: ignore[attr-defined]
    return finished


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--flood", type=int, default=300_000)
    parser.add_argument("--cap", type=int, default=30_000)
    parser.add_argument("--phase", choices=["growth", "flood"], help="run one phase only")
    args = parser.parse_args()
    if args.phase is None:
        # Each phase in a fresh process, so that one's memory does not colour the other's.
        for phase in ("growth", "flood"):
            subprocess.run(
                [sys.executable, "-m", "bench.session_memory", *sys.argv[1:], "--phase", phase],
                check=True,
            )
        return

    from twisted_sessions.tap import tune_garbage_collector

    tune_garbage_collector()
    result: list[Failure] = []
    phase = growth(args.sessions) if args.phase == "growth" else flood(args.flood, args.cap)
    run = Deferred.fromCoroutine(phase)
    run.addErrback(result.append).addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if result:
        result[0].raiseException()


async def growth(sessions: int) -> None:
    site = Site(make_page(), reactor=reactor, max_sessions=10 * sessions)
    await drive(site, 1_000, 1_000, lambda done: None)
    site.expire_all()
    gc.collect()
    before = rss_bytes()
    await drive(site, sessions, sessions, lambda done: None)
    gc.collect()
    after = rss_bytes()
    per_session = (after - before) / sessions
    print(f"baseline RSS: {before / 2**20:.1f} MiB")
    print(
        f"{len(site.sessions)} live sessions: RSS {after / 2**20:.1f} MiB, "
        f"+{(after - before) / 2**20:.1f} MiB = {per_session:.0f} bytes per session "
        f"({per_session * 100_000 / 2**20:.1f} MiB per 100k)"
    )
    site.expire_all()
    del site
    gc.collect()
    print(f"after expiring them all: RSS {rss_bytes() / 2**20:.1f} MiB (freed memory is reused)")


async def flood(flood: int, cap: int) -> None:
    print(f"baseline RSS: {rss_bytes() / 2**20:.1f} MiB")
    samples: list[tuple[int, int]] = []
    flood_site = Site(make_page(), reactor=reactor, max_sessions=cap)
    await drive(flood_site, flood, flood // 10, lambda done: samples.append((done, rss_bytes())))
    print(f"flood of {flood} cookieless requests, max_sessions={cap}:")
    for done, rss in samples:
        print(f"  after {done:>7} requests: RSS {rss / 2**20:.1f} MiB")
    print(
        f"  live sessions at the end: {len(flood_site.sessions)}, "
        f"evicted: {flood_site.sessions_evicted}"
    )


if __name__ == "__main__":
    main()
