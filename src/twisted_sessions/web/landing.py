"""
The page at ``/`` when the server runs without ``--app``: proof that it tracks you.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING

from twisted.web.resource import Resource

if TYPE_CHECKING:
    from .request import Request

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twisted-sessions</title></head>
<body>
<h1>twisted-sessions is running</h1>
<p>Your web session has served {requests} request(s); it started {age:.0f} s ago and expires
after {timeout:.0f} s without a request.</p>
<p>You are visitor <code>{user}</code>.</p>
<p>Live web sessions on this server: {live}.</p>
<p>Redis ({where}): {redis}.</p>
{stats}
</body></html>
"""

#: What the page says of the statistics, by who may read them (``StatsAccess.mode``).
_STATS = {
    "loopback": "Open from this machine only (a loopback client); to read them from elsewhere, "
    "start the server with <code>--stats-token-file</code> (then send "
    "<code>Authorization: Bearer TOKEN</code>) or, on a trusted network, "
    "<code>--stats-public</code>.",
    "token": "Protected: send <code>Authorization: Bearer TOKEN</code> with the token of "
    "<code>--stats-token-file</code>.",
    "public": "Open to every client (<code>--stats-public</code>).",
}


class LandingPage(Resource):
    """
    A small HTML page about the visitor's own session and the server's state.

    :param redis_where: where the server's Redis is, as shown to people.
    :param redis_connected: whether the server is connected to its Redis now. (A callable
        rather than the link itself: the web layer does not know the storage layer.)
    :param stats_path: where the stats tree is mounted, to link to; ``None`` without one.
    :param stats_mode: who may read it (``loopback``, ``token`` or ``public``), to say how to
        reach it.
    """

    isLeaf = True

    def __init__(
        self,
        redis_where: str,
        redis_connected: Callable[[], bool],
        stats_path: str | None = None,
        stats_mode: str = "loopback",
    ) -> None:
        super().__init__()
        self._redis_where = redis_where
        self._redis_connected = redis_connected
        self._stats = ""
        if stats_path is not None:
            base = "/" + escape(stats_path)
            self._stats = (
                f'<p>Statistics: <a href="{base}/dashboard/">the dashboard</a>, '
                f'<a href="{base}">{base}</a> (JSON; its OpenAPI document at '
                f'<a href="{base}/openapi.json">{base}/openapi.json</a>), '
                f'<a href="{base}/metrics">{base}/metrics</a> for Prometheus. '
                f"{_STATS.get(stats_mode, '')}</p>"
            )

    def render_GET(self, request: Request) -> bytes:
        """
        Render the page; it never waits on Redis, it only reports the connection's state.

        It does not ask for the session (``getSession`` would make one for a first request):
        a client's session starts to exist when its cookie comes back, and this page, the
        server's default, shows what a client that never keeps cookies costs: nothing.
        """
        session = request.tracked_session
        tracker = request.tracker
        site = tracker.site
        now = site.reactor.seconds()
        state = (
            "connected" if self._redis_connected() else "not connected (retrying in the background)"
        )
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        user = tracker.user_of(request, request.session_key or "")
        return _PAGE.format(
            requests=session.request_count if session is not None else 1,
            age=now - session.started if session is not None else 0.0,
            timeout=(
                session.sessionTimeout if session is not None else site.timeout_of_new_sessions()
            ),
            user=escape(str(user)),
            live=len(site.sessions),
            where=escape(self._redis_where),
            redis=state,
            stats=self._stats,
        ).encode("utf-8")
