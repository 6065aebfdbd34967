"""
The page at ``/`` when the server runs without ``--app``: proof that it tracks you.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from twisted.web.resource import Resource

if TYPE_CHECKING:
    from .redis_link import RedisLink
    from .site import Request

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twisted-sessions</title></head>
<body>
<h1>twisted-sessions is running</h1>
<p>Your web session has served {requests} request(s); it started {age:.0f} s ago and expires
after {timeout:.0f} s without a request.</p>
<p>You are visitor <code>{user}</code>.</p>
<p>Live web sessions on this server: {live}.</p>
<p>Redis ({where}): {redis}.</p>
</body></html>
"""


class LandingPage(Resource):
    """
    A small HTML page about the visitor's own session and the server's state.
    """

    isLeaf = True

    def __init__(self, redis: RedisLink) -> None:
        super().__init__()
        self._redis = redis

    def render_GET(self, request: Request) -> bytes:
        """
        Render the page; it never waits on Redis, it only reports the connection's state.
        """
        session = request.getSession()
        site = request.site
        now = site.reactor.seconds()
        redis = self._redis
        state = "connected" if redis.connected else "not connected (retrying in the background)"
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        user = site.tracker.user_of(request, session.key)
        return _PAGE.format(
            requests=session.request_count,
            age=now - session.started,
            timeout=session.sessionTimeout,
            user=escape(str(user)),
            live=len(site.sessions),
            where=escape(redis.address.describe()),
            redis=state,
        ).encode("utf-8")
