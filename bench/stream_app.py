"""
The servers of ``bench.stream_fanout``: a publisher for ``twistd -n sessions --app``, and the
baseline, a plain twisted.web SSE server that writes each event to each client as it comes.

    twistd -n sessions --app bench.stream_app.publisher   # GET /start?rate=1000&seconds=20
    python -m bench.stream_app naive PORT                  # GET /stream, /start?rate=...
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from twisted.internet.task import LoopingCall
from twisted.web import server
from twisted.web.resource import Resource

#: Publishing ticks a second (the rate is spread over them).
TICKS = 100


class _Start(Resource):
    """
    ``/start?rate=R&seconds=S&stream=NAME``: publish R events a second for S seconds, each
    ``{"sent": <UNIX time>, "n": <number>}``.
    """

    isLeaf = True

    def __init__(self, publish: Any) -> None:
        super().__init__()
        self._publish = publish

    def render_GET(self, request: Any) -> bytes:
        rate = int(request.args.get(b"rate", [b"1000"])[0])
        seconds = float(request.args.get(b"seconds", [b"10"])[0])
        stream = request.args.get(b"stream", [b"bench"])[0].decode()
        clock = request.site.reactor
        counter = [0]
        started = clock.seconds()
        total = int(rate * seconds)

        def tick() -> None:
            # As many as are due by now: a late tick (a busy reactor) catches up, so the rate
            # holds (LoopingCall skips the ticks it missed).
            due = min(int((clock.seconds() - started) * rate), total)
            while counter[0] < due:
                counter[0] += 1
                self._publish(request.site, stream, {"sent": time.time(), "n": counter[0]})
            if counter[0] >= total:
                loop.stop()

        loop = LoopingCall(tick)
        loop.clock = clock
        loop.start(1 / TICKS)
        return b"started"


class _Declare(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.site.streams.declare(request.args.get(b"stream", [b"bench"])[0].decode())
        return b"declared"


def publisher() -> Resource:
    """
    For ``twistd -n sessions --app``: ``/declare`` and ``/start`` publish through
    ``site.streams``.
    """
    root = Resource()
    root.putChild(b"declare", _Declare())
    root.putChild(b"start", _Start(lambda site, stream, event: site.streams.publish(stream, event)))
    return root


class _NaiveStream(Resource):
    """
    The baseline's ``/stream``: each client's request kept; every event written to every
    client, one ``write`` each, as it is published (what a first SSE server does).
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.clients: list[Any] = []

    def render_GET(self, request: Any) -> Any:
        request.setHeader(b"Content-Type", b"text/event-stream")
        request.write(b":ok\n")
        self.clients.append(request)
        request.notifyFinish().addBoth(lambda _: self.clients.remove(request))
        return server.NOT_DONE_YET

    def publish(self, site: Any, stream: str, event: dict[str, Any]) -> None:
        data = b"event: message\ndata: " + json.dumps(event).encode() + b"\n\n"
        for client in self.clients:
            client.write(data)


def naive(port: int) -> None:
    from twisted.internet import reactor

    root = Resource()
    stream = _NaiveStream()
    root.putChild(b"stream", stream)
    root.putChild(b"start", _Start(stream.publish))
    reactor.listenTCP(  # type: ignore[attr-defined]
        port, server.Site(root), backlog=4096, interface="127.0.0.1"
    )
    print(f"naive SSE server listening on {port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    if sys.argv[1:2] == ["naive"]:
        naive(int(sys.argv[2]))
