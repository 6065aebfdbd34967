"""
What the Site reports about its traffic: one value per finished request, one per ended session.

These are the only things that cross the seam between the web layer and whatever consumes
traffic (the clusterer, counters, tests). They are immutable so that one observer cannot change
what the next one sees. A RequestEvent is a NamedTuple: one is made per request, and that is
twice as fast as a frozen attrs class.
"""

from __future__ import annotations

from collections.abc import Hashable
from enum import Enum
from typing import NamedTuple

import attrs


class EndReason(Enum):
    """
    Why a web session ended.  Every reason goes through the same expiry path (hooks run).
    """

    #: No request carried the session cookie for ``sessionTimeout`` seconds.
    IDLE = "idle"
    #: The session reached its absolute lifetime (``max_session_age``).
    MAX_AGE = "max_age"
    #: The Site was at ``max_sessions`` and this was the oldest session whose cookie never came
    #: back, or, if every session had come back, the least recently active one.
    EVICTED = "evicted"
    #: The server is stopping.
    SHUTDOWN = "shutdown"
    #: Application code called ``session.expire()``, for example on logout.
    EXPLICIT = "explicit"


class RequestEvent(NamedTuple):
    """
    One finished (or aborted) HTTP request.

    :ivar user: who made it: the application's own identity when it set one, else the visitor
        cookie's id, else (visitor cookie off) the web session's key.
    :ivar timestamp: when the request arrived, in UNIX seconds from the Site's reactor clock.
    :ivar method: the HTTP method, e.g. ``"GET"``.
    :ivar path: the request path without its query string, decoded as UTF-8 (invalid bytes
        replaced), cut after 1,024 bytes (with a trailing ``…``).
    :ivar status: the response status code.
    :ivar duration: seconds from arrival to the end of the response.
    :ivar session_key: a non-secret key of the web session (never the cookie value itself).
    :ivar aborted: the client went away before the response was finished.
    :ivar resource: a bounded name for what was requested, for counting: what the application
        set (``request.resource_name``), else ``"(not found)"`` for a 404, else the first path
        segment the resource tree consumed to find what rendered it (``/page/3`` served by a
        ``page`` leaf is ``/page``; every path of a leaf root is ``/``), so that neither raw
        paths nor made-up ones explode the counters.
    :ivar new_user: the user was made by this request: it carried no visitor cookie (without
        visitor cookies: no live session's cookie) and the application set no account. A
        client that never returns cookies (a bot, a link checker) makes every request new.
    """

    user: Hashable
    timestamp: float
    method: str
    path: str
    status: int
    duration: float
    session_key: str
    aborted: bool = False
    resource: str = "/"
    new_user: bool = False


@attrs.frozen(slots=True)
class SessionSummary:
    """
    What an ended web session reports about itself.

    :ivar session_key: the same non-secret key that the session's request events carry.
    :ivar user: the user of the session's last request (see :class:`RequestEvent`).
    :ivar started: when the session was created (UNIX seconds, reactor clock).
    :ivar last_active: when a request last touched it.
    :ivar ended: when it expired.
    :ivar request_count: how many requests it served.
    :ivar reason: why it ended.
    """

    session_key: str
    user: Hashable
    started: float
    last_active: float
    ended: float
    request_count: int
    reason: EndReason
