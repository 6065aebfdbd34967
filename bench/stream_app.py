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
        per_tick = max(rate // TICKS, 1)
        counter = [0]
        ends = clock.seconds() + seconds

        def tick() -> None:
            if clock.seconds() >= ends:
                loop.stop()
                return
            for _ in range(per_tick):
                counter[0] += 1
                self._publish(request.site, stream, {"sent": time.time(), "n": counter[0]})

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
    reactor.listenTCP(port, server.Site(root), interface="127.0.0.1")  # type: ignore[attr-defined]
    print(f"naive SSE server listening on {port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    if sys.argv[1:2] == ["naive"]:
        naive(int(sys.argv[2]))
