"""
twisted-sessions: a session-aware Twisted web server and analytics library.

The public API of the web layer::

    from twisted_sessions import Site, Session

    class ShortSession(Session):
        sessionTimeout = 60

    site = Site(root)
    site.sessionFactory = ShortSession
"""

from .cookies import CookiePolicy
from .events import EndReason, RequestEvent, SessionSummary
from .interfaces import IFlushable, IRequestObserver, ISessionObserver
from .session import Session
from .site import Request, Site

__all__ = [
    "CookiePolicy",
    "EndReason",
    "IFlushable",
    "IRequestObserver",
    "ISessionObserver",
    "Request",
    "RequestEvent",
    "Session",
    "SessionSummary",
    "Site",
]
