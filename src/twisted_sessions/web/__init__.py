"""
The web layer: a Twisted ``Site`` whose every request is tracked to a web session and a user.

- :mod:`.site`: the ``Site`` (mounts, the session cap, eviction order, ``expire_all``).
- :mod:`.request`: the ``Request`` and the tracker that gives it a session and a user, and
  reports the ``RequestEvent`` when it ends.
- :mod:`.session`: our ``Session``: an inactivity timeout that really is one, reliable hooks.
- :mod:`.sweeper`: one timer for the idle expiry of every session that shares a timeout.
- :mod:`.cookies`: the session and visitor cookies.
- :mod:`.channel`: the HTTP channel: 414 and 431 for requests over Twisted's limits.
- :mod:`.observers`: fan-out of requests and ended sessions to whatever is attached.
- :mod:`.landing`: the page at ``/`` when the server runs without ``--app``.

It imports only the plain values and seams (``twisted_sessions.events``, ``.interfaces``,
``.eviction``) of the package: whatever consumes traffic attaches to it, never the reverse.
"""

from .cookies import CookiePolicy
from .request import Request, RequestTracker, UserIdentifier
from .session import Session
from .site import Site

__all__ = ["CookiePolicy", "Request", "RequestTracker", "Session", "Site", "UserIdentifier"]
