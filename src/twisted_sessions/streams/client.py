"""
One connected stream client: where its events go, and the bound on what it may hold back.

A client is a push producer of its HTTP request: Twisted pauses it when the connection's
buffer passes 64 KiB. While paused, events queue here, up to ``buffer_limit`` bytes; past it the
client is disconnected (it resumes with ``Last-Event-ID``) rather than growing the server's
memory. The socket's send buffer is set small, so that a slow reader is noticed after kilobytes,
not after the megabytes the kernel would otherwise absorb first.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

if TYPE_CHECKING:
    from .filters import EventFilter
    from .frames import StreamId

#: Bytes of the kernel's send buffer of a stream connection (Linux doubles what is asked).
SEND_BUFFER = 32 * 1024


@implementer(IPushProducer)
class StreamClient:
    """
    A connected client of some streams.

    :param request: its HTTP request (the response is the stream).
    :param streams: the streams it reads, in the order of its URL.
    :param positions: where it is in each stream (the last event it has, or the present).
    :param event_filter: the events it wants.
    :param sse: Server-Sent Events, or newline-delimited JSON.
    :param buffer_limit: the most bytes held back for it while it does not read.
    :param on_close: called once, when it is gone (for any reason).
    """

    _log = Logger()

    def __init__(
        self,
        request: Any,
        streams: tuple[str, ...],
        positions: dict[str, StreamId],
        event_filter: EventFilter,
        sse: bool,
        buffer_limit: int,
        on_close: Callable[[StreamClient, bool], None],
    ) -> None:
        self.request = request
        self.streams = streams
        self.positions = positions
        self.filter = event_filter
        self.sse = sse
        self.buffer_limit = buffer_limit
        self._on_close = on_close
        #: Whether it has everything up to the reader's positions (it then shares its
        #: group's bytes); ``False`` while it catches up from history, or is ahead.
        self.synced = False
        self.closed = False
        self._paused = False
        self._held: list[bytes] = []
        self._held_bytes = 0
        # The response's headers were sent (the first write): from now on, bytes go straight
        # to the connection (see _write); None where there is no plain one (in-memory tests).
        self._transport = getattr(request.channel, "transport", None)
        if not getattr(request, "startedWriting", False):
            self._transport = None
        # Sending at once (see _write) only on a plain TCP connection: under TLS the bytes
        # must go through the TLS layer.
        self._direct = isinstance(self._transport, tcp.Server) and not self._transport.TLS
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(lambda _: self._gone(slow=False))
        _small_send_buffer(request)

    @property
    def group(self) -> tuple[Any, ...]:
        """
        What clients that get the very same bytes share.
        """
        return (self.streams, self.filter.key, self.sse)

    def send(self, data: bytes, chunk: bytes | None = None) -> None:
        """
        Write ``data`` (one or more whole events), or hold it while the connection is full.

        :param chunk: ``data`` already framed as an HTTP/1.1 chunk (:func:`as_chunk`): a
            group's clients share one framing of the same bytes.
        """
        if self.closed or not data:
            return
        if self._paused:
            self._held.append(data)
            self._held_bytes += len(data)
            if self._held_bytes > self.buffer_limit:
                self._disconnect_slow()
            return
        self._write(data, chunk)

    def _write(self, data: bytes, chunk: bytes | None = None) -> None:
        """
        ``request.write(data)``, without its per-call bookkeeping: the headers went with the
        first bytes, so a write is the chunk framing (HTTP/1.1) and the transport's write.
        At a million deliveries a second, Request.write was 14% of the server's time.

        On a plain TCP connection whose buffer is empty (the usual case: the client keeps
        up), the bytes are sent at once; only what the socket does not take goes through the
        transport's buffer. Twisted's own write registers the socket with epoll and
        unregisters it once sent: two system calls and a reactor turn a write, a sixth of the
        server's time at a million deliveries a second (docs/benchmarks.md).
        """
        transport = self._transport
        if transport is None:
            self.request.write(data)
            return
        frame = data
        if self.request.chunked:
            frame = chunk if chunk is not None else as_chunk(data)
        if (
            self._direct
            and not transport._tempDataBuffer
            and transport.offset >= len(transport.dataBuffer)
            and transport.connected
            and not transport.disconnecting
        ):
            sent = transport.writeSomeData(frame)
            if not isinstance(sent, int):
                return  # The connection is lost: Twisted tells the request, which closes us.
            if sent >= len(frame):
                return
            frame = frame[sent:]
        transport.write(frame)

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        if self._held and not self.closed:
            held, self._held, self._held_bytes = self._held, [], 0
            self._write(b"".join(held))

    def stopProducing(self) -> None:
        self._gone(slow=False)

    def _disconnect_slow(self) -> None:
        """
        The client reads slower than its events come: drop it, and what it holds.
        """
        self._held, self._held_bytes = [], 0
        self._gone(slow=True)
        transport = getattr(self.request.channel, "transport", None)
        if transport is not None:
            # Not loseConnection: that would wait for the slow client to read what is queued.
            transport.abortConnection()

    def close(self) -> None:
        """
        End the stream (server shutdown): the client may reconnect elsewhere and resume.
        """
        if self.closed:
            return
        self._gone(slow=False)
        try:
            self.request.unregisterProducer()
            self.request.finish()
        except Exception:  # The connection went away meanwhile: nothing to finish.
            self._log.debug("stream client already gone")

    def _gone(self, slow: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self._on_close(self, slow)


def as_chunk(data: bytes) -> bytes:
    """
    ``data`` framed as one HTTP/1.1 chunk (the response of a stream has no length).
    """
    return b"%x\r\n%s\r\n" % (len(data), data)


def _small_send_buffer(request: Any) -> None:
    """
    Make the kernel hold little for this connection (see the module's docstring).
    """
    transport = getattr(getattr(request, "channel", None), "transport", None)
    handle = getattr(transport, "getHandle", None)
    if handle is None:
        return
    sock = handle()
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            return
