"""
``GET /stats/stream/{streams}``: live events as Wikimedia EventStreams serves them.

- ``{streams}`` is one stream or several, comma-separated (``visits,signups``); an unknown one
  is a 400 naming it.
- Server-Sent Events by default; ``Accept: application/json`` gets newline-delimited JSON.
- ``Last-Event-ID`` (what an ``EventSource`` sends when it reconnects) resumes after that event;
  ``?since=`` (ISO 8601, or milliseconds since the epoch) starts at a time in the history;
  ``Last-Event-ID`` wins over ``since``.
- Every other query parameter filters (see :mod:`twisted_sessions.streams.filters`).
- Too many connections, in all or from one address: a 429 with a JSON body.

``GET /stats/stream`` lists the streams this server knows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ..storage.keys import check_stream
from ..storage.link import RedisTimeout, RedisUnavailable
from ..streams.filters import EventFilter
from ..streams.frames import MAX_SEQUENCE, StreamId, parse_event_id, parse_since
from .responses import RETRY_AFTER, send_json

if TYPE_CHECKING:
    from ..streams.hub import Streams

#: Milliseconds an EventSource waits before it reconnects after the stream ends.
RETRY_MS = 2000


class StreamsResource(Resource):
    """
    ``/stats/stream``: the list of streams, and each subscription below it.
    """

    def __init__(self, streams: Streams) -> None:
        super().__init__()
        self._streams = streams

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self
        return _Subscription(self._streams, path)

    def render(self, request: Any) -> bytes:
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"Allow", b"GET, HEAD")
            return send_json(request, 405, {"error": "only GET and HEAD are allowed"})
        base = "/" + "/".join(p.decode("utf-8", "replace") for p in request.prepath if p)
        return send_json(
            request,
            200,
            {
                "streams": sorted(self._streams.declared),
                "links": {"stream": f"{base}/{{streams}}"},
            },
        )


class _Subscription(Resource):
    """
    One ``GET /stats/stream/{streams}``.
    """

    isLeaf = True
    _log = Logger()

    def __init__(self, streams: Streams, path: bytes) -> None:
        super().__init__()
        self._streams = streams
        self._path = path

    def render(self, request: Any) -> Any:
        if any(request.postpath):
            return send_json(request, 404, {"error": "nothing below a stream"})
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"Allow", b"GET, HEAD")
            return send_json(request, 405, {"error": "only GET and HEAD are allowed"})
        try:
            names, start, event_filter = self._parse(request)
        except ValueError as error:
            return send_json(request, 400, {"error": str(error)})
        accept = request.getHeader(b"accept") or b""
        sse = not (b"application/json" in accept and b"text/event-stream" not in accept)
        Deferred.fromCoroutine(self._open(request, names, start, event_filter, sse)).addErrback(
            lambda failure: self._log.failure("opening a stream failed", failure)
        )
        return NOT_DONE_YET

    def _parse(self, request: Any) -> tuple[tuple[str, ...], dict[str, StreamId], EventFilter]:
        """
        The streams, where to start in each, and the filter.

        :raises ValueError: naming the bad part of the request.
        """
        text = self._path.decode("utf-8", "replace")
        names: list[str] = []
        for name in text.split(","):
            check_stream(name)
            if name not in names:
                names.append(name)
        streams = tuple(names)
        conditions: dict[str, list[str]] = {}
        since: str | None = None
        for raw_key, raw_values in request.args.items():
            key = raw_key.decode("utf-8", "replace")
            values = [value.decode("utf-8", "replace") for value in raw_values]
            if key == "since":
                if len(values) != 1:
                    raise ValueError("give since once")
                since = values[0]
            else:
                conditions[key] = values
        start: dict[str, StreamId] = {}
        # A bad since is an error even when Last-Event-ID wins over it.
        millis = parse_since(since) if since is not None else None
        last_id = request.getHeader(b"last-event-id")
        if last_id:
            start = parse_event_id(last_id.decode("utf-8", "replace"), streams)
        elif millis is not None:
            before = (millis - 1, MAX_SEQUENCE, 0) if millis > 0 else (0, 0, 0)
            start = dict.fromkeys(streams, before)
        return streams, start, EventFilter(conditions)

    async def _open(
        self,
        request: Any,
        names: tuple[str, ...],
        start: dict[str, StreamId],
        event_filter: EventFilter,
        sse: bool,
    ) -> None:
        finished = [False]
        request.notifyFinish().addBoth(lambda _: finished.__setitem__(0, True))
        client_ip = str(getattr(request.getClientAddress(), "host", "unix"))
        try:
            refusal = await self._refusal(names, client_ip)
        except (RedisUnavailable, RedisTimeout) as error:
            refusal = (503, f"Redis is unreachable: {error}", RETRY_AFTER)
        if finished[0]:
            return
        if refusal is not None:
            code, message, retry_after = refusal
            if retry_after:
                request.setHeader(b"Retry-After", retry_after)
            request.write(send_json(request, code, {"error": message}))
            request.finish()
            return
        request.setResponseCode(200)
        if sse:
            request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        else:
            request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-cache, no-store")
        request.setHeader(b"X-Accel-Buffering", b"no")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        if request.method == b"HEAD":
            request.finish()
            return
        # The headers go now (an EventSource opens on them); the comment and retry lines join
        # the first event (a blank line would make sseclient yield an empty event).
        request.write(b":ok\nretry: %d\n" % RETRY_MS if sse else b"")
        self._streams.connect(request, client_ip, names, start, event_filter, sse)

    async def _refusal(
        self, names: tuple[str, ...], client_ip: str
    ) -> tuple[int, str, bytes | None] | None:
        """
        Why the stream cannot be opened (a status, the problem, a Retry-After), or ``None``:
        an unknown stream (which may take asking Redis), or a connection cap. The caps are
        looked at after Redis answered, in the reactor turn that connects the client.
        """
        unknown = await self._streams.unknown(names)
        if unknown:
            known = ", ".join(sorted(self._streams.declared)) or "none yet"
            return 400, f"no such stream: {', '.join(unknown)} (streams: {known})", None
        refusal = self._streams.refusal(client_ip)
        if refusal is not None:
            return 429, refusal, b"10"
        return None
