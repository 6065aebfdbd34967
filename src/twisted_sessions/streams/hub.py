"""
:class:`Streams`: publishing live events, and the clients that read them.

In the application (``twistd sessions`` puts one at ``site.streams``)::

    site.streams.publish("signups", {"plan": "pro", "user": account_id})

and anyone allowed to read the stats tree reads ``GET /stats/stream/signups,visits`` (SSE, as
Wikimedia EventStreams serves it). Built in (each can be turned off): ``visits`` (each finished
clustered session), ``requests`` (each tracked request) and ``activity`` (each activity mark).
No stream carries a session id or a cookie value: visitors appear as ``v-`` and a hash of their
id (:func:`~.frames.public_user`), accounts the application set as they are.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IClusteredSessionSink, IRequestObserver
from ..storage.keys import STREAM_NAMES, check_stream
from .client import StreamClient
from .frames import StreamId, public_user
from .reader import StreamReader
from .writer import StreamWriter

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ..events import RequestEvent
    from ..interfaces import ClusteredSession
    from ..storage.link import Link
    from .filters import EventFilter

#: The built-in streams, each of which can be turned off.
BUILTIN_STREAMS = ("visits", "requests", "activity")
#: The largest event a publisher may publish (its JSON), in bytes.
MAX_EVENT_BYTES = 64 * 1024
#: Seconds between the comment lines that keep an idle stream open through proxies.
DEFAULT_HEARTBEAT = 15.0


@implementer(IRequestObserver, IClusteredSessionSink)
class Streams:
    """
    The live streams of a server: what it publishes, and who reads them.

    :param clock: the reactor clock.
    :param link: a binary Redis link for writing and for the history.
    :param blocking: a binary Redis link of its own for the reader's ``XREAD BLOCK``.
    :param builtin: the built-in streams to publish (see :data:`BUILTIN_STREAMS`).
    :param history: seconds of events each stream keeps (``since`` and ``Last-Event-ID`` reach
        that far back).
    :param max_length: the most events each stream keeps, whatever their age.
    :param domain: the events' ``meta.domain``.
    :param heartbeat: seconds between keep-alive comments to each client.
    :param max_clients: the most clients connected at once (more get a 429).
    :param max_clients_per_ip: the most clients connected at once from one address.
    :param client_buffer: the most bytes held back for a client that does not read; past
        them it is disconnected.
    :param flush_interval: seconds between the writer's flushes (most of the latency).
    :param spool_path: where unwritten events go at shutdown.
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        link: Link,
        blocking: Link,
        builtin: tuple[str, ...] = BUILTIN_STREAMS,
        history: float = 7 * 86_400,
        max_length: int = 100_000,
        domain: str = "localhost",
        heartbeat: float = DEFAULT_HEARTBEAT,
        max_clients: int = 1_000,
        max_clients_per_ip: int = 100,
        client_buffer: int = 1024 * 1024,
        flush_interval: float = 0.1,
        spool_path: Path | None = None,
        max_pending: int = 100_000,
    ) -> None:
        unknown = set(builtin) - set(BUILTIN_STREAMS)
        if unknown:
            raise ValueError(
                f"unknown built-in streams: {', '.join(sorted(unknown))}; they are "
                f"{', '.join(BUILTIN_STREAMS)}"
            )
        if not heartbeat > 0:
            raise ValueError(f"heartbeat must be a positive number of seconds, not {heartbeat!r}")
        self._clock = clock
        self.link = link
        self.blocking = blocking
        self.builtin = tuple(builtin)
        self.writer = StreamWriter(
            clock,
            link,
            history=history,
            max_length=max_length,
            flush_interval=flush_interval,
            max_pending=max_pending,
            spool_path=spool_path,
        )
        self.reader = StreamReader(clock, link, blocking, domain)
        self.heartbeat = heartbeat
        self.max_clients = max_clients
        self.max_clients_per_ip = max_clients_per_ip
        self.client_buffer = client_buffer
        #: The streams this server knows without asking Redis: its built-in ones and those
        #: it published or declared.
        self.declared: set[str] = set(builtin)
        self._clients: set[StreamClient] = set()
        self._per_ip: Counter[str] = Counter()
        #: Clients ever connected, and those disconnected for reading too slowly.
        self.connections_total = 0
        self.slow_disconnects = 0
        self._heartbeat: LoopingCall | None = None
        if "requests" in self.builtin:
            # Observers are bound once (web.observers): the request path calls the list's
            # own append, with no frame of ours in between (the writer keeps the list object,
            # and its bound at each flush, 100 ms apart). 1,500 instructions a request less
            # than a method of ours (bench.instructions).
            self.request_finished = self.writer.requests.append  # type: ignore[method-assign, assignment]

    # -- publishing ------------------------------------------------------------------------

    def declare(self, name: str) -> None:
        """
        Make ``name`` a stream clients may ask for before anything is published to it.

        :raises ValueError: a bad name.
        """
        self.declared.add(check_stream(name))

    def publish(self, stream: str, data: Mapping[str, Any], when: float | None = None) -> None:
        """
        Publish one event (a JSON object's fields) on ``stream``: written to Redis at the next
        flush (within 100 ms), then to every client of the stream, on every server.

        ``$schema``, if given, is the event's schema URI; ``meta`` is the server's to set.

        :raises ValueError: a bad stream name, a built-in stream's name, data that is not a
            JSON object, or an event over 64 KiB.
        """
        check_stream(stream)
        if stream in BUILTIN_STREAMS:
            raise ValueError(f"{stream!r} is a built-in stream; publish to a stream of your own")
        self._publish(stream, data, self._clock.seconds() if when is None else when)

    def _publish(self, stream: str, data: Mapping[str, Any], when: float) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"an event is a mapping of fields, not {type(data).__name__}")
        if "meta" in data:
            raise ValueError("'meta' is set by the server (stream, dt, id, domain)")
        fields = dict(data)
        schema = fields.pop("$schema", "")
        if not isinstance(schema, str):
            raise ValueError(f"$schema must be a string, not {schema!r}")
        try:
            body = json.dumps(fields, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"event for {stream!r} is not JSON: {error}") from None
        if len(body) > MAX_EVENT_BYTES:
            raise ValueError(f"event for {stream!r} is {len(body)} bytes; the most is 64 KiB")
        self.declared.add(stream)
        self.writer.add(stream, when, body, schema)

    def request_finished(self, event: RequestEvent) -> None:
        """
        (Replaced by the writer's append when the ``requests`` stream is on.)
        """

    def session_finished(self, session: ClusteredSession, feed: str | None = None) -> None:
        """
        A visit ended: an event of the ``visits`` stream (with ``feed``, a session of that
        consumed feed's events, which have no resources).
        """
        if "visits" not in self.builtin:
            return
        events = session.events
        first, last = (events[0], events[-1]) if events else (None, None)
        fields = {
            "user": public_user(session.user),
            "start": round(session.start, 3),
            "end": round(session.end, 3),
            "duration": round(session.duration, 3),
            "requests": session.event_count,
            "entry": getattr(first, "resource", None),
            "exit": getattr(last, "resource", None),
            "end_reason": session.end_reason,
            "user_index": session.user_index,
        }
        if feed is not None:
            fields["feed"] = feed
        self._publish("visits", fields, session.end)

    def marked(self, event: str, user: Hashable, when: float) -> None:
        """
        An activity mark: an event of the ``activity`` stream.
        """
        if "activity" in self.builtin:
            self._publish("activity", {"event": event, "user": public_user(user)}, when)

    async def unknown(self, names: tuple[str, ...]) -> list[str]:
        """
        The names of ``names`` that no server has published or declared.
        """
        missing = [name for name in names if name not in self.declared]
        if not missing:
            return []
        found = await self.link.execute("SMISMEMBER", STREAM_NAMES, *missing)
        # Known from now on without asking again (a stream's name is never forgotten).
        self.declared.update(name for name, there in zip(missing, found, strict=True) if there)
        return [name for name, there in zip(missing, found, strict=True) if not there]

    # -- clients ---------------------------------------------------------------------------

    def refusal(self, client_ip: str) -> str | None:
        """
        Why a new client from ``client_ip`` may not connect now (the connection caps), or
        ``None``.
        """
        if len(self._clients) >= self.max_clients:
            return f"the server has its most stream clients ({self.max_clients}); retry later"
        if self._per_ip[client_ip] >= self.max_clients_per_ip:
            return (
                f"{client_ip} has its most stream connections ({self.max_clients_per_ip}); "
                "close one or retry later"
            )
        return None

    def connect(
        self,
        request: Any,
        client_ip: str,
        streams: tuple[str, ...],
        start: dict[str, StreamId],
        event_filter: EventFilter,
        sse: bool,
    ) -> StreamClient:
        """
        Serve ``streams`` on ``request`` (its headers are sent), from ``start``.
        """

        def closed(client: StreamClient, slow: bool) -> None:
            self._clients.discard(client)
            self._per_ip[client_ip] -= 1
            if self._per_ip[client_ip] <= 0:
                del self._per_ip[client_ip]
            self.reader.unsubscribe(client)
            if slow:
                self.slow_disconnects += 1
                self._log.info(
                    "stream client {ip} disconnected: it read slower than its events came "
                    "(more than {limit} bytes held back); it can resume with Last-Event-ID",
                    ip=client_ip,
                    limit=self.client_buffer,
                )

        client = StreamClient(request, streams, {}, event_filter, sse, self.client_buffer, closed)
        self._clients.add(client)
        self._per_ip[client_ip] += 1
        self.connections_total += 1
        self.reader.start()
        Deferred.fromCoroutine(self.reader.subscribe(client, start)).addErrback(
            lambda failure: self._log.failure("stream subscription failed", failure)
        )
        return client

    def gauges(self) -> dict[str, Any]:
        """
        The numbers ``/stats`` shows (the names of EventStreams' own metrics).
        """
        return {
            "connected_clients": {
                stream: self.reader.clients_of(stream) for stream in self.reader.streams_read
            },
            "client_connections_total": self.connections_total,
            "slow_client_disconnects": self.slow_disconnects,
            "stream_events_written": self.writer.events_written,
            "stream_events_read": self.reader.events_read,
            "stream_backlog": self.writer.backlog,
            "dropped_stream_events": self.writer.dropped,
        }

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """
        Start the writer (replaying its spools) and the keep-alive comments.
        """
        self.writer.start()
        heartbeat = LoopingCall(self._beat)
        heartbeat.clock = self._clock
        self._heartbeat = heartbeat
        heartbeat.start(self.heartbeat, now=False).addErrback(
            lambda failure: self._log.failure("stream heartbeat stopped", failure)
        )

    def _beat(self) -> None:
        for client in list(self._clients):
            client.send(b":\n")

    def stop(self) -> None:
        """
        End every client's stream (they resume elsewhere, or here after the restart) and stop
        reading; the writer's last flush is the server's to run.
        """
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        self.writer.stop()
        self.reader.stop()
        for client in list(self._clients):
            client.close()
