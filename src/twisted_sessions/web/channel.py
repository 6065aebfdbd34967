"""
Our HTTP channel: Twisted's, with a status code a client understands when a request is larger
than the channel's limits.

Twisted answers a header block over ``totalHeadersSize`` (16 KB) with a bare ``400 Bad
Request`` and closes the connection without a word when one line exceeds ``MAX_LENGTH`` (also
16 KB). Clients, proxies and people debugging deserve the codes HTTP has for these: ``414 URI
Too Long`` for the request line, ``431 Request Header Fields Too Large`` for the headers. Only
the error paths are overridden: the request path costs nothing more.
"""

from __future__ import annotations

from typing import Any

from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol


def _answer(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(text) + text
    )


_URI_TOO_LONG = _answer(b"414 URI Too Long", b"The request line is too long.\n")
_HEADERS_TOO_LARGE = _answer(
    b"431 Request Header Fields Too Large", b"The request headers are too large.\n"
)


class TrackedChannel(HTTPChannel):
    """
    An ``HTTPChannel`` that answers 414 and 431 where Twisted closes or answers 400.
    """

    def _in_request_line(self) -> bool:
        # HTTPChannel keeps "the next line is a request line" in a name-mangled attribute.
        return bool(getattr(self, "_HTTPChannel__first_line", False))

    def lineLengthExceeded(self, line: bytes) -> Any:
        """
        One line over ``MAX_LENGTH``: 414 if it is the request line, else 431; then close.
        """
        self._refuse()

    def _refuse(self) -> None:
        transport = self.transport
        assert transport is not None, "only called on a connected channel"
        transport.write(_URI_TOO_LONG if self._in_request_line() else _HEADERS_TOO_LARGE)
        self.loseConnection()

    def _respondToBadRequestAndDisconnect(self) -> None:
        if self._receivedHeaderSize > self.totalHeadersSize:
            self._refuse()
            return
        super()._respondToBadRequestAndDisconnect()


def tracked_channel_protocol(factory: Any) -> _GenericHTTPChannelProtocol:
    """
    What ``Site.protocol`` builds: our channel in the wrapper Twisted puts every channel in
    (``_genericHTTPChannelProtocolFactory`` does the same with ``HTTPChannel``; the wrapper is
    private, but replacing it would change the request path that the benchmarks compare).
    """
    return _GenericHTTPChannelProtocol(TrackedChannel())
