"""
Who may read the stats tree: Redis's protected mode, for analytics.

- With a token (``--stats-token-file``): any client that sends ``Authorization: Bearer TOKEN``;
  anyone else gets a 401.
- Without a token, by default: loopback clients only (127.0.0.0/8, ``::1``, a unix socket).
  A request that carries ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP`` came through a
  proxy and is not a loopback client, wherever the proxy runs: behind nginx on the same host
  every client would otherwise look local. Anyone else gets a 403 that says how to allow them.
- Explicitly public (``--stats-public``): everyone.

A browser's ``EventSource`` cannot send an ``Authorization`` header. With a token, a page's
script exchanges it once (``POST {stats}/auth`` with the header) for a cookie that the tree then
accepts too: HttpOnly (no script reads it), ``SameSite=Strict`` (no other site's page sends it),
scoped to the stats path, valid 12 hours, and made from the token by HMAC, so that every server
sharing the token accepts it and none stores it. ``DELETE {stats}/auth`` removes it.

Everything under the stats tree (and what later issues add there: dashboard, metrics, streams)
goes through the same :class:`StatsAccess`.
"""

from __future__ import annotations

import hashlib
import hmac
from ipaddress import ip_address
from typing import Any

import attrs
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.web.resource import Resource

from .responses import ErrorLeaf, send_json

#: The cookie a browser gets for the token (see the module's docstring), and its lifetime.
COOKIE_NAME = b"twisted_sessions_stats"
COOKIE_AGE = 12 * 3600

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

    def has_bearer(self, request: Any) -> bool:
        """
        Whether the request carries the token in its ``Authorization`` header.
        """
        if not self.token:
            return False
        given = request.getHeader(b"authorization") or b""
        scheme, _, credential = given.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(
            credential, self.token.encode("utf-8")
        )

    def cookie_value(self, now: float) -> bytes:
        """
        The cookie that stands for the token until ``now`` + 12 hours.
        """
        expires = int(now) + COOKIE_AGE
        return b"%d.%s" % (expires, self._mac(expires).encode("ascii"))

    def _mac(self, expires: int) -> str:
        assert self.token
        message = b"twisted-sessions stats cookie %d" % expires
        return hmac.new(self.token.encode("utf-8"), message, hashlib.sha256).hexdigest()

    def has_cookie(self, request: Any, now: float) -> bool:
        """
        Whether the request carries a cookie of :meth:`cookie_value` that has not expired.
        """
        if not self.token:
            return False
        value = request.received_cookies.get(COOKIE_NAME)
        if not value:
            return False
        expires, _, mac = value.partition(b".")
        if not expires.isdigit() or int(expires) <= now:
            return False
        return hmac.compare_digest(mac, self._mac(int(expires)).encode("ascii"))

    def refusal(self, request: Any, now: float = 0.0) -> ErrorLeaf | None:
        """
        ``None`` if the request may read the tree, else the error resource to answer with.

        :param now: the time (the token's cookie expires).
        """
        if self.token:
            if self.has_bearer(request) or self.has_cookie(request, now):
                return None
            return ErrorLeaf(
                401,
                "a valid bearer token is required",
                {b"WWW-Authenticate": b'Bearer realm="stats"'},
            )
        if self.public or is_loopback_client(request):
            return None
        return ErrorLeaf(403, _FORBIDDEN.format(client=_client(request)))


class CookieExchange(Resource):
    """
    ``POST {stats}/auth`` (with the bearer token): a 204 that sets the token's cookie;
    ``DELETE {stats}/auth``: a 204 that removes it.

    :param access: the tree's access rule.
    :param clock: the reactor clock (the cookie's expiry).
    """

    isLeaf = True

    def __init__(self, access: StatsAccess, clock: Any) -> None:
        super().__init__()
        self._access = access
        self._clock = clock

    def render(self, request: Any) -> bytes:
        if request.method not in (b"POST", b"DELETE"):
            request.setHeader(b"Allow", b"POST, DELETE")
            return send_json(request, 405, {"error": "POST (or DELETE) only"})
        if not self._access.token:
            return send_json(
                request,
                400,
                {"error": "this stats tree has no token (--stats-token-file): no cookie needed"},
            )
        if request.method == b"POST" and not self._access.has_bearer(request):
            # The cookie alone does not renew itself: a stolen one expires.
            return send_json(
                request, 401, {"error": "send the token as 'Authorization: Bearer TOKEN'"}
            )
        path = "/" + "/".join(p.decode("utf-8", "replace") for p in request.prepath[:-1] if p)
        secure = b"; Secure" if request.isSecure() else b""
        if request.method == b"POST":
            value = self._access.cookie_value(self._clock.seconds())
            age = COOKIE_AGE
        else:
            value, age = b"", 0
        request.cookies.append(
            COOKIE_NAME
            + b"="
            + value
            + b"; Path="
            + path.encode("utf-8")
            + b"; Max-Age=%d; HttpOnly; SameSite=Strict" % age
            + secure
        )
        request.setResponseCode(204)
        request.setHeader(b"Cache-Control", b"no-store")
        return b""
