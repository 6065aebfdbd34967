"""
CPU microseconds per request, in process, of bare twisted.web and of our Site with each part of
the pipeline added in turn; the same request bytes through the same HTTP machinery.

    .venv/bin/python -m bench.request_cost [--requests 20000] [--rounds 15]

The wrk benchmark (``bench.http_throughput``) measures what a user sees, but on this shared
two-core machine its rounds move by ±15%: too coarse to tell which part of the pipeline costs
what. Here every request goes through a real ``HTTPChannel`` on an in-memory transport, no
sockets, so the difference between two servers is only their Python work per request:

- ``bare``: stock ``twisted.web.server.Site`` (the baseline), requests without cookies;
- ``bare, same cookies``: the same, receiving the same Cookie header as ours (what parsing a
  returning visitor's cookies costs Twisted itself);
- ``tracking``: our Site as ``twistd -n sessions`` builds it (web session and visitor, the stats
  tree mounted), no observer;
- ``clusterer``: plus the ``SessionClusterer``;
- ``counting``: plus the built-in ``requests`` metrica kicked per request into the
  ``CounterWriter``;
- ``pipeline, no streams``: plus the ``active`` activity mark per request;
- ``pipeline, no metrics``: plus the ``requests`` stream, each request appended to the stream
  writer and marshalled into its batches every 1,000 requests, as the flush does;
- ``pipeline``: plus the ``/stats/metrics`` request tally (an append per request, folded
  every 1,000 requests): ``twistd -n sessions`` as wired by ``tap.build_server``, every
  feature on, minus the socket and Redis;
- ``pipeline, new visitors``: the same server, every request without cookies (a client that
  never returns them: a new web session, visitor id and visit each time; past the caps, the
  oldest are evicted as each new one comes).

Each configuration is timed ``--rounds`` times, interleaved. The fastest round is reported
(on a shared machine, noise only ever adds time; the median is printed too), and the ratio
``bare / configuration`` is the throughput a CPU-bound server keeps.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

from twisted.internet.testing import StringTransport
from twisted.web import server

from bench.pages import QuietSite, make_page
from twisted_sessions.stats.metrics import RequestTally
from twisted_sessions.tap import Options, build_server, tune_garbage_collector


def returning_request(cookie: bytes) -> bytes:
    """
    The request wrk sends for a returning visitor (no Cookie header if ``cookie`` is empty).
    """
    header = b"Cookie: " + cookie + b"\r\n" if cookie else b""
    return b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n" + header + b"\r\n"


#: Cookies of the size and shape of ours, for the baseline that receives the same requests.
SAME_COOKIES = b"TWISTED_SESSION=" + b"5e" * 32 + b"; TWISTED_VISITOR=" + b"7a" * 16


def request_for(configuration: str, site: server.Site) -> bytes:
    """
    The request one configuration serves: a returning visitor's (its own cookies); bare
    twisted.web gets none, or the same Cookie header as ours (``bare, same cookies``).
    """
    if configuration in ("bare", "pipeline, new visitors"):
        return returning_request(b"")
    if configuration == "bare, same cookies":
        return returning_request(SAME_COOKIES)
    return returning_request(cookie_of(site))


def drive(site: server.Site, request: bytes, count: int) -> float:
    """
    CPU seconds to serve ``count`` requests on one keep-alive connection.
    """
    channel = site.buildProtocol(None)
    assert channel is not None
    transport = StringTransport()
    channel.makeConnection(transport)
    writer = getattr(getattr(site, "streams", None), "writer", None)
    tally = tally_of(site)
    started = time.process_time()
    for done in range(count):
        channel.dataReceived(request)
        transport.clear()
        if done % STREAM_BATCH == STREAM_BATCH - 1:
            if writer is not None:
                batch_requests(writer)
            if tally is not None:
                tally.fold()  # What the tally's once-a-second fold does.
    elapsed = time.process_time() - started
    channel.connectionLost(None)
    return elapsed


#: Requests between two batchings of the ``requests`` stream (its 100 ms flush at 10,000
#: requests a second).
STREAM_BATCH = 1_000


def batch_requests(writer: Any) -> None:
    """
    What the stream writer's flush does in this process for the request events (marshal them
    into batches), minus the Redis call; the batches are then dropped.
    """
    writer._batch()
    writer._batches.clear()
    writer._in_batches = 0


def tally_of(site: server.Site) -> RequestTally | None:
    """
    The /stats/metrics request tally among the site's observers, if any.
    """
    observers = getattr(site, "observers", None)
    found = [o for o in getattr(observers, "request_observers", []) if isinstance(o, RequestTally)]
    return found[0] if found else None


def our_site(reactor: Any, data_dir: Path, extra: list[str]) -> server.Site:
    options = Options()
    options.parseOptions(
        ["--redis", "unix:/nonexistent/redis.sock", "--data-dir", str(data_dir), *extra]
    )
    options["resource"] = make_page()
    site = build_server(reactor, options).site
    return site


def cookie_of(site: server.Site) -> bytes:
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    lines = transport.value().split(b"\r\n")
    pairs = [ln.split(b": ", 1)[1].split(b";", 1)[0] for ln in lines if ln.startswith(b"Set-C")]
    return b"; ".join(pairs)


def configurations(reactor: Any, data_dir: Path) -> dict[str, Callable[[], server.Site]]:
    """
    How to build each server measured, on ``reactor`` (which need not be running).
    """

    def tracking() -> server.Site:
        site = our_site(
            reactor, data_dir, ["--no-count-requests", "--no-count-sessions", "--no-activity"]
        )
        for observer in site.observers.request_observers:  # type: ignore[attr-defined]
            site.remove_observer(observer)  # type: ignore[attr-defined]
        return site

    def no_metrics() -> server.Site:
        site = our_site(reactor, data_dir, [])
        site.remove_observer(tally_of(site))  # type: ignore[attr-defined]
        return site

    return {
        "bare": lambda: QuietSite(make_page()),
        "bare, same cookies": lambda: QuietSite(make_page()),
        "tracking": tracking,
        "clusterer": lambda: our_site(
            reactor, data_dir, ["--no-count-requests", "--no-count-sessions", "--no-activity"]
        ),
        "counting": lambda: our_site(reactor, data_dir, ["--no-activity", "--no-streams"]),
        "pipeline, no streams": lambda: our_site(reactor, data_dir, ["--no-streams"]),
        "pipeline, no metrics": no_metrics,
        "pipeline": lambda: our_site(reactor, data_dir, []),
        "pipeline, new visitors": lambda: our_site(reactor, data_dir, []),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    # The composition root: the real reactor (its timers are what a server pays for), never
    # run: nothing here needs the network, and the writer never flushes.
    from twisted.internet import reactor

    tune_garbage_collector()
    data_dir = Path(mkdtemp(prefix="ts-bench-"))
    sites = {name: make() for name, make in configurations(reactor, data_dir).items()}
    requests = {name: request_for(name, site) for name, site in sites.items()}
    timings: dict[str, list[float]] = {name: [] for name in sites}
    for _ in range(args.rounds):
        for name, site in sites.items():
            gc.collect()
            elapsed = drive(site, requests[name], args.requests)
            timings[name].append(elapsed / args.requests * 1e6)
    base = min(timings["bare"])
    print(f"{'configuration':<22} {'us/request':>10} {'+us':>6} {'bare/this':>9} {'median':>7}")
    for name, values in timings.items():
        cost = min(values)
        median = statistics.median(values)
        print(f"{name:<22} {cost:10.1f} {cost - base:6.1f} {base / cost:9.2f} {median:7.1f}")


if __name__ == "__main__":
    main()
