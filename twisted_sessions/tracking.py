"""
Per-request tracking: which web session and which user a request belongs to, and the event
it produces when it ends.

The Site's ``Request`` subclass is a thin adapter over this module: it calls
:meth:`RequestTracker.request_started` before the resource renders and
:meth:`RequestTracker.request_ended` when the response is done or the client went away.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from .events import RequestEvent

if TYPE_CHECKING:
    from .cookies import CookiePolicy
    from .observers import TrafficObservers
    from .site import Request

#: Computes the application's own user identity for a request, or ``None`` to fall back to
#: the visitor cookie.  It runs when the request ends, so it may look at what the resource did.
UserIdentifier = Callable[["Request"], Hashable | None]


def new_visitor_id() -> str:
    """
    A fresh random visitor id (16 random bytes, hex).
    """
    return os.urandom(16).hex()


def resource_name(path: bytes) -> str:
    """
    The first segment of a path, as a bounded resource name: ``/page/3`` gives ``/page``.
    """
    first = path.split(b"?", 1)[0].lstrip(b"/").split(b"/", 1)[0][:64]
    return "/" + first.decode("utf-8", "replace")


class RequestTracker:
    """
    Attaches sessions and users to requests and reports finished requests.
    """

    def __init__(
        self,
        cookies: CookiePolicy,
        observers: TrafficObservers,
        identify_user: UserIdentifier | None = None,
    ) -> None:
        self._cookies = cookies
        self._observers = observers
        self._identify_user = identify_user

    @property
    def cookies(self) -> CookiePolicy:
        """
        The cookie policy requests are tracked with.
        """
        return self._cookies

    def request_started(self, request: Request) -> None:
        """
        Give the request its web session (touched, or new) and its visitor id, before any
        response header is written.
        """
        request.arrived = request.site.reactor.seconds()
        session = request.getSession()
        session.request_count += 1
        cookies = self._cookies
        if cookies.tracks_visitors:
            visitor = cookies.read_visitor_id(request)
            if visitor is None:
                visitor = new_visitor_id()
                cookies.set_visitor_cookie(request, visitor, request.isSecure())
            request.visitor_id = visitor

    def request_ended(self, request: Request, aborted: bool) -> None:
        """
        Report the request once, with the user it belongs to.
        """
        if request.reported or request.arrived is None:
            return
        request.reported = True
        session = request.tracked_session
        if session is None:
            return
        user = self.user_of(request, session.key)
        session.user = user
        event = RequestEvent(
            user=user,
            timestamp=request.arrived,
            method=request.method.decode("ascii", "replace"),
            path=request.path.decode("utf-8", "replace"),
            status=request.code,
            duration=request.site.reactor.seconds() - request.arrived,
            session_key=session.key,
            aborted=aborted,
            resource=request.resource_name or resource_name(request.path),
        )
        self._observers.request_finished(event)

    def user_of(self, request: Request, session_key: str) -> Hashable:
        """
        Who made the request: the identity the application set, else the one its
        ``identify_user`` computes, else the visitor id, else the web session's key.
        """
        if request.app_user is not None:
            return request.app_user
        if self._identify_user is not None:
            user = self._identify_user(request)
            if user is not None:
                return user
        if request.visitor_id is not None:
            return request.visitor_id
        return session_key
