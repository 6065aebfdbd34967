"""
In-memory HTTP against a real Site: raw requests in, parsed responses out, no sockets.

This drives the real ``HTTPChannel``/``Request``/``Site`` code path (cookies, headers,
finish, connection loss), which a fake request object would skip.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

import attrs
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Site
from zope.interface import directlyProvides


@attrs.frozen
class Response:
    """
    A parsed HTTP/1.1 response.
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """
        The first value of header ``name``.
        """
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def set_cookies(self) -> dict[str, str]:
        """
        Each Set-Cookie header by cookie name, as the raw header value.
        """
        found = {}
        for key, value in self.headers:
            if key.lower() == "set-cookie":
                found[value.split("=", 1)[0]] = value
        return found

    def cookie(self, name: str) -> str | None:
        """
        The value the response sets for cookie ``name``.
        """
        raw = self.set_cookies.get(name)
        if raw is None:
            return None
        jar: SimpleCookie = SimpleCookie()
        jar.load(raw)
        return jar[name].value


def parse_response(raw: bytes) -> Response:
    """
    Parse one complete HTTP/1.1 response with a Content-Length.
    """
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
    return Response(status, headers, body)  # type: ignore[arg-type]


class _TLSTransport(StringTransport):
    """
    An in-memory transport that says it is TLS.
    """

    def setTcpNoDelay(self, enabled: bool) -> None:
        pass


#: The client address of in-memory connections: a client on this host, unless a test says
#: otherwise (StringTransport's own default, 192.168.1.1, is a remote client).
LOCAL_CLIENT = IPv4Address("TCP", "127.0.0.1", 50000)


def open_channel(
    site: Site, secure: bool = False, client: IPv4Address | IPv6Address = LOCAL_CLIENT
) -> tuple[HTTPChannel, StringTransport]:
    """
    A connection to ``site`` from ``client`` over an in-memory transport (TLS if ``secure``).
    """
    channel = site.buildProtocol(None)
    transport = _TLSTransport(peerAddress=client) if secure else StringTransport(peerAddress=client)
    if secure:
        directlyProvides(transport, ISSLTransport)
    channel.makeConnection(transport)
    return channel, transport


def request_bytes(
    method: str = "GET",
    path: str = "/",
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """
    The bytes of one HTTP/1.1 request.
    """
    lines = [f"{method} {path} HTTP/1.1", "Host: example.test"]
    if cookies:
        lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def get(
    site: Site,
    path: str = "/",
    cookies: dict[str, str] | None = None,
    secure: bool = False,
    method: str = "GET",
) -> Response:
    """
    Send one request to ``site`` and return its response (the resource must finish it
    synchronously).
    """
    channel, transport = open_channel(site, secure)
    channel.dataReceived(request_bytes(method, path, cookies))
    raw = transport.value()
    channel.connectionLost(Failure(ConnectionError("test done")))
    assert raw, f"no response to {method} {path}"
    return parse_response(raw)


class Browser:
    """
    A client that keeps the cookies the site sets, like a browser would.
    """

    def __init__(self, site: Site, secure: bool = False) -> None:
        self.site = site
        self.secure = secure
        self.cookies: dict[str, str] = {}

    def get(self, path: str = "/") -> Response:
        """
        Request ``path`` with the cookies kept so far, and keep the ones it sets.
        """
        response = get(self.site, path, dict(self.cookies), self.secure)
        for name in response.set_cookies:
            value = response.cookie(name)
            assert value is not None
            self.cookies[name] = value
        return response
