"""
Resident memory of the whole server (``twistd sessions`` as ``tap.build_server`` wires it, at
the default caps) under a flood of clients that never send a cookie back, optionally with long
URLs.

    .venv/bin/python -m bench.flood_memory [--requests 1000000] [--path-bytes 0] [--every 100000]

Every request is a new web session, a new visitor and a new visit (one event each), counted by
the built-in metricas: the worst case for memory. Requests go through a real ``HTTPChannel``
on an in-memory transport, on one keep-alive connection, in batches of 1,000 with the real
reactor running between batches (so that its timers and deferred work run as in a server).
Sessions leave by the caps (``--max-sessions``, ``--max-clustered-sessions``) long before their
timeouts, as in a real flood. The baseline is the same process right after the server was
built (the idle server); RSS is read from ``/proc/self/statm`` after each ``--every`` requests.
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path
from tempfile import mkdtemp

from twisted.internet.testing import StringTransport

from bench.request_cost import our_site
from bench.session_memory import rss_bytes
from twisted_sessions.tap import tune_garbage_collector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--path-bytes", type=int, default=0, help="extra bytes in each URL")
    parser.add_argument("--every", type=int, default=100_000)
    args = parser.parse_args()
    from twisted.internet import reactor

    site = our_site(reactor, Path(mkdtemp(prefix="ts-flood-")), [])
    tune_garbage_collector()
    gc.collect()
    idle = rss_bytes()
    print(f"idle server: RSS {idle / 2**20:.1f} MiB; URL path {1 + args.path_bytes} bytes")
    channel = site.buildProtocol(None)
    assert channel is not None
    transport = StringTransport()
    channel.makeConnection(transport)
    # Distinct URLs, as a crawler's are (a fixed one would be remembered once).
    padding = b"p" * max(args.path_bytes - 8, 0)
    done = 0

    def batch() -> None:
        nonlocal done
        for _ in range(min(1000, args.requests - done)):
            done += 1
            path = b"/%d/" % done + padding if args.path_bytes else b"/"
            channel.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            transport.clear()
            if done % args.every == 0:
                rss = rss_bytes()
                print(
                    f"after {done:>8} requests: RSS {rss / 2**20:.1f} MiB "
                    f"(+{(rss - idle) / 2**20:.1f} over idle); live sessions "
                    f"{len(site.sessions)}",
                    flush=True,
                )
        if done < args.requests:
            reactor.callLater(0, batch)
        else:
            reactor.stop()

    reactor.callLater(0, batch)
    reactor.run()


if __name__ == "__main__":
    main()
