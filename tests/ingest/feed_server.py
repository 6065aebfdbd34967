"""
A test feed on a real port: replays the fixture as EventStreams does, and misbehaves on
purpose.

``python -m tests.ingest.feed_server --count 2000 [--cut-every N] [--stall-after N]
[--batch B --interval S]`` prints ``listening on URL`` and serves ``/v2/stream/recentchange``:

- ``Last-Event-ID`` (EventStreams' JSON array of topic, partition, offset) resumes after that
  offset; else ``since`` (ISO 8601) starts at the first event at or after it;
- ``retry: 200`` first, then ``B`` items every ``S`` seconds (some framed with ``\\r\\n``);
- ``--cut-every N``: each connection sends N items, then half of the next, and is cut;
- ``--stall-after N``: the first connection goes silent (not even heartbeats) after N items;
- once every item is sent, a heartbeat comment every second.

``GET /log`` lists the connections (their ``Last-Event-ID`` and ``since``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from twisted.internet import reactor as global_reactor
from twisted.internet.task import LoopingCall
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from .fixture import Item, items


def frame(item: Item, crlf: bool) -> bytes:
    end = "\r\n" if crlf else "\n"
    kind = "error" if item.kind == "error" else "message"
    lines = [f"event: {kind}", f"id: {item.event_id}"]
    lines += [f"data: {line}" for line in item.data.split("\n")]
    return (end.join(lines) + end + end).encode()


class Stream(Resource):
    isLeaf = True

    def __init__(self, reactor: Any, all_items: list[Item], options: argparse.Namespace) -> None:
        super().__init__()
        self.reactor = reactor
        self.items = all_items
        self.options = options
        self.log: list[dict[str, Any]] = []
        self.stalled = False
        # Framed once: the feed is not what a benchmark of its consumer measures.
        self.frames = [frame(item, crlf=item.offset % 3 == 0) for item in all_items]

    def render_GET(self, request: Any) -> Any:
        last = request.getHeader("last-event-id")
        since = request.args.get(b"since", [b""])[0].decode() or None
        self.log.append({"last_event_id": last, "since": since})
        position = 0
        if last:
            position = json.loads(last)[0]["offset"] + 1
        elif since:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp()
            position = next(
                (
                    index
                    for index, item in enumerate(self.items)
                    if item.kind in ("event", "canary")
                    and datetime.fromisoformat(
                        json.loads(item.data)["meta"]["dt"].replace("Z", "+00:00")
                    ).timestamp()
                    >= moment
                ),
                len(self.items),
            )
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        request.write(b"retry: 200\n\n")
        Connection(self, request, position).start()
        return NOT_DONE_YET


class Connection:
    def __init__(self, stream: Stream, request: Any, position: int) -> None:
        self.stream = stream
        self.request = request
        self.position = position
        self.sent = 0
        self.stall = not stream.stalled and stream.options.stall_after is not None
        if self.stall:
            stream.stalled = True
        self.loop = LoopingCall(self.tick)
        self.loop.clock = stream.reactor
        self.done = False
        self.last_heartbeat = 0.0
        request.notifyFinish().addBoth(lambda _: self.stop())

    def start(self) -> None:
        self.loop.start(self.stream.options.interval, now=True)

    def stop(self) -> None:
        self.done = True
        if self.loop.running:
            self.loop.stop()

    def tick(self) -> None:
        if self.done:
            return
        options, all_items = self.stream.options, self.stream.items
        if self.position >= len(all_items):
            now = self.stream.reactor.seconds()
            if now - self.last_heartbeat >= 1.0:
                self.last_heartbeat = now
                self.request.write(b":\n\n")
            return
        chunk = b""
        if not options.cut_every and not self.stall:
            # The plain case in one slice (what a benchmark reads from).
            chunk = b"".join(self.stream.frames[self.position : self.position + options.batch])
            self.position = min(self.position + options.batch, len(all_items))
            self.request.write(chunk)
            return
        for _ in range(options.batch):
            if self.position >= len(all_items):
                break
            if self.stall and self.sent >= options.stall_after:
                self.loop.stop()  # Silent from now on, connection open.
                break
            framed = self.stream.frames[self.position]
            if options.cut_every and self.sent >= options.cut_every:
                self.request.write(chunk + framed[: len(framed) // 2])
                self.stop()
                self.request.transport.loseConnection()  # After what was written.
                return
            chunk += framed
            self.position += 1
            self.sent += 1
        if chunk:
            self.request.write(chunk)


class Log(Resource):
    isLeaf = True

    def __init__(self, stream: Stream) -> None:
        super().__init__()
        self.stream = stream

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(self.stream.log).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--gap", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--cut-every", type=int, default=0)
    parser.add_argument("--stall-after", type=int, default=None)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.01)
    options = parser.parse_args()
    reactor: Any = global_reactor
    fixture = items(options.count, options.seed, options.gap, options.users)
    stream = Stream(reactor, fixture, options)
    root = Resource()
    v2 = Resource()
    streams = Resource()
    root.putChild(b"v2", v2)
    v2.putChild(b"stream", streams)
    streams.putChild(b"recentchange", stream)
    root.putChild(b"log", Log(stream))
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    sys.stdout.write(f"listening on http://127.0.0.1:{port.getHost().port}/\n")
    sys.stdout.flush()
    reactor.run()


if __name__ == "__main__":
    main()
