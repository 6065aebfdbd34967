"""
Who may read the stats tree: Redis's protected mode, for analytics.

- With a token (``--stats-token-file``): any client that sends ``Authorization: Bearer TOKEN``;
  anyone else gets a 401.
- Without a token, by default: loopback clients only (127.0.0.0/8, ``::1``, a unix socket).
  A request that carries ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP`` came through a
  proxy and is not a loopback client, wherever the proxy runs: behind nginx on the same host
  every client would otherwise look local. Anyone else gets a 403 that says how to allow them.
- Explicitly public (``--stats-public``): everyone.

Everything under the stats tree (and what later issues add there: dashboard, metrics, streams)
goes through the same :class:`StatsAccess`.
"""

from __future__ import annotations

import hmac
from ipaddress import ip_address
from typing import Any

import attrs
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

from .responses import ErrorLeaf

#: Headers that say the request was relayed by a proxy.
PROXY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")

_FORBIDDEN = (
    "the stats tree answers loopback clients only (this request came from {client}); to "
    "allow remote access, start the server with --stats-token-file FILE (clients then send "
    "'Authorization: Bearer TOKEN') or, for a trusted network only, --stats-public"
)


def _relayed(request: Any) -> bool:
    """
    Whether the request carries a header that a proxy adds.
    """
    return any(request.requestHeaders.hasHeader(name) for name in PROXY_HEADERS)


def is_loopback_client(request: Any) -> bool:
    """
    Whether the request came straight from this host: a loopback address or a unix socket,
    and no proxy header.
    """
    if _relayed(request):
        return False
    address = request.getClientAddress()
    if isinstance(address, UNIXAddress):
        return True
    if not isinstance(address, IPv4Address | IPv6Address):
        return False
    try:
        ip = ip_address(address.host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def _client(request: Any) -> str:
    address = request.getClientAddress()
    host = getattr(address, "host", None)
    shown = str(host) if host is not None else type(address).__name__
    return f"{shown}, through a proxy" if _relayed(request) else shown


@attrs.frozen
class StatsAccess:
    """
    The access rule of the stats tree.

    :ivar token: the bearer token every request must carry, or ``None``.
    :ivar public: without a token, answer every client (else loopback clients only).
    """

    token: str | None = None
    public: bool = False
    #: Origins whose pages may read the tree from a browser (CORS); none by default.
    cors_origins: frozenset[str] = frozenset()

    @property
    def mode(self) -> str:
        """
        The rule in a few words, for the startup log: ``token``, ``public`` or ``loopback``.
        """
        if self.token:
            return "token"
        return "public" if self.public else "loopback"

    def allow_origin(self, request: Any) -> bool:
        """
        Add the CORS headers if the request's ``Origin`` is one of :attr:`cors_origins`.

        :return: whether it is (a preflight from it is then answered with no token check:
            browsers send none with a preflight).
        """
        if not self.cors_origins:
            return False
        origin = request.getHeader(b"origin")
        request.setHeader(b"Vary", b"Origin")
        if origin is None or origin.decode("latin-1") not in self.cors_origins:
            return False
        request.setHeader(b"Access-Control-Allow-Origin", origin)
        return True

    def refusal(self, request: Any) -> ErrorLeaf | None:
        """
        ``None`` if the request may read the tree, else the error resource to answer with.
        """
        if self.token:
            given = request.getHeader(b"authorization") or b""
            scheme, _, credential = given.partition(b" ")
            if scheme.lower() == b"bearer" and hmac.compare_digest(
                credential, self.token.encode("utf-8")
            ):
                return None
            return ErrorLeaf(
                401,
                "a valid bearer token is required",
                {b"WWW-Authenticate": b'Bearer realm="stats"'},
            )
        if self.public or is_loopback_client(request):
            return None
        return ErrorLeaf(403, _FORBIDDEN.format(client=_client(request)))
