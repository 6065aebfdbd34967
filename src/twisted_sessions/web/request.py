"""
A tracked request: which web session and which user it belongs to, and the event it produces
when it ends.

:class:`Request` is the Site's ``requestFactory``, a thin adapter over Twisted's: it calls
:meth:`RequestTracker.request_started` before the resource renders and
:meth:`RequestTracker.request_ended` when the response is done or the client went away. The
tracker reaches its Site only through :class:`TrackingSite`, what it needs of one, so that this
module does not import the Site that imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from twisted.web import server

from ..events import RequestEvent
from .session import session_key

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime
    from twisted.python.failure import Failure

    from .cookies import CookiePolicy
    from .observers import TrafficObservers
    from .session import Session

#: Computes the application's own user identity for a request, or ``None`` to fall back to
#: the visitor cookie.  It runs when the request ends, so it may look at what the resource did.
UserIdentifier = Callable[["Request"], Hashable | None]


def new_visitor_id() -> str:
    """
    A fresh random visitor id (16 random bytes, hex).
    """
    return os.urandom(16).hex()


def path_names(path: bytes) -> tuple[str, str]:
    """
    The path as text, and its first segment as a bounded resource name: ``/page/3?x=1`` gives
    ``("/page/3?x=1", "/page")``. A path over :data:`MAX_EVENT_PATH` bytes is cut there (and
    ends with ``…``): visits keep their events' paths, and a flood of 16 KB URLs must not
    make every kept visit 16 KB larger.
    """
    names = _path_names.get(path)
    if names is None:
        first = path.split(b"?", 1)[0].lstrip(b"/").split(b"/", 1)[0][:64]
        text = (
            path.decode("utf-8", "replace")
            if len(path) <= MAX_EVENT_PATH
            else path[:MAX_EVENT_PATH].decode("utf-8", "replace") + "…"
        )
        names = (text, "/" + first.decode("utf-8", "replace"))
        if len(_path_names) < _REMEMBERED_PATHS and len(path) <= _REMEMBERED_LENGTH:
            _path_names[path] = names
    return names


#: The resource of every 404 the application did not name: made-up paths are one value, so
#: that a client inventing them cannot push the real pages out of the ``resource`` axis.
NOT_FOUND = "(not found)"


def routed_name(prepath: list[bytes]) -> str:
    """
    The resource name of a routed request: ``/`` and the first segment its tree consumed.
    """
    if not prepath:
        return "/"
    segment = prepath[0]
    name = _routed_names.get(segment)
    if name is None:
        name = "/" + segment[:64].decode("utf-8", "replace")
        if len(_routed_names) < _REMEMBERED_PATHS:
            _routed_names[segment] = name
    return name


#: The most bytes of a request's path (query included) kept in its RequestEvent.
MAX_EVENT_PATH = 1024
#: How many paths' names are remembered, and up to what length: a site's own pages, not what
#: a crawler makes up (past the bounds, names are computed each time, and at most a megabyte
#: or two is ever kept).
_REMEMBERED_PATHS = 4096
_REMEMBERED_LENGTH = 256
_path_names: dict[bytes, tuple[str, str]] = {}
_routed_names: dict[bytes, str] = {}
_new_tuple = tuple.__new__
#: The field order request_ended builds RequestEvents in.
_EVENT_FIELDS = (
    "user",
    "timestamp",
    "method",
    "path",
    "status",
    "duration",
    "session_key",
    "aborted",
    "resource",
    "new_user",
)
if RequestEvent._fields != _EVENT_FIELDS:  # pragma: no cover - a guard for maintainers
    raise RuntimeError(f"RequestEvent's fields changed: update request_ended ({_EVENT_FIELDS})")
#: The usual methods' names, decoded once.
_METHOD_NAMES = {
    method.encode("ascii"): method
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
}


class TrackingSite(Protocol):
    """
    What a tracked request needs of its Site (:class:`twisted_sessions.Site` provides it).
    """

    @property
    def reactor(self) -> IReactorTime:
        """
        The clock requests are timed with.
        """

    @property
    def sessions(self) -> Mapping[bytes, Session]:
        """
        The live web sessions by id.
        """

    def makeSession(self, uid: bytes | None = None, started: float | None = None) -> Session:
        """
        Create and register a new web session (with a given id and start, once that id
        came back).
        """

    def fresh_session_id(self, uid: bytes, now: float) -> float | None:
        """
        When ``uid`` was issued, if it is a fresh id of this server; else ``None``.
        """

    def new_session_id(self) -> bytes:
        """
        A new session id, issued now.
        """

    def timeout_of_new_sessions(self) -> float:
        """
        The inactivity timeout a session made now gets.
        """


class Request(server.Request):
    """
    A request of a tracked :class:`Site`.

    :ivar app_user: the application's own identity for the user, if it sets one (see
        :meth:`set_user`); ``None`` lets the Site fall back to the visitor cookie.  (Not
        ``user``: Twisted's Request already uses that name for HTTP basic auth.)
    :ivar visitor_id: the visitor cookie's id, when the visitor cookie is on.
    :ivar arrived: when the request arrived (reactor clock).
    """

    #: The tracker of the Site that serves the request (set when it is processed).
    tracker: RequestTracker
    app_user: Hashable = None
    #: A bounded name for counting this request (see RequestEvent.resource); None: the path's
    #: first segment.
    resource_name: str | None = None
    #: The first path segment the Site's resource tree consumed to find what renders the
    #: request (``/page`` for ``/page/3`` served by a ``page`` leaf; ``/`` for a leaf root),
    #: set when the request is routed.
    routed_name: str | None = None
    visitor_id: str | None = None
    #: Whether tracking gave this request's client a new identity: it sent no visitor cookie
    #: (or, without visitor cookies, no live session's cookie).
    new_identity = False
    arrived: float | None = None
    reported = False
    tracked_session: Session | None = None
    #: The session id this request's response hands out, while no session exists for it: a
    #: client's first request (see sessionids). The session starts to exist when the id comes
    #: back, or when the application asks for it (getSession, set_user) during this request.
    fresh_uid: bytes | None = None

    _fresh_key: str | None = None

    @property
    def session_key(self) -> str | None:
        """
        The non-secret key of this request's web session, existing or not yet (computed once
        per request: the page and the report both want it).
        """
        if self.tracked_session is not None:
            return self.tracked_session.key
        if self.fresh_uid is None:
            return None
        if self._fresh_key is None:
            self._fresh_key = session_key(self.fresh_uid)
        return self._fresh_key

    def set_user(self, user: Hashable) -> None:
        """
        Attribute this request (and its web session) to the application's own user identity,
        for example the logged-in account. The first account a web session gets is a login
        (account observers hear of it; see :class:`~twisted_sessions.interfaces.IAccountObserver`).
        """
        self.app_user = user
        session = self.tracked_session
        if session is None and self.fresh_uid is not None and user is not None:
            session = self.getSession()  # A login on a first request: the session must exist.
        if session is not None and session.account is None and user is not None:
            session.account = user
            site = self.channel.site  # type: ignore[attr-defined]
            site.observers.account_changed(True, user, session.key, site.reactor.seconds())

    def process(self) -> None:
        """
        Let Twisted find and render the resource; our Site tracks the request on the way
        (unless it is for an untracked mount such as the stats tree).
        """
        # The Site starts tracking once it knows the request is traffic (getResourceFor).
        site = self.channel.site  # type: ignore[attr-defined]
        self.site = site
        self.tracker = site.tracker
        # The base class by name, as Twisted itself does: super() costs a thousand CPU
        # instructions on Python 3.11, 1% of the throughput for the two calls per request.
        server.Request.process(self)

    def getSession(self, sessionInterface: Any = None, forceNotSecure: bool = False) -> Any:
        """
        This request's web session: the one its cookie names if the server issued it and it is
        alive (touched now), else a new one with a fresh cookie.

        The cookie is Secure when the request came over TLS, unless ``forceNotSecure``.
        """
        session = self.tracked_session
        if session is None or session.ended:
            session = self.tracked_session = self.tracker.session_of(
                self, self.isSecure() and not forceNotSecure
            )
        if sessionInterface is not None:
            return session.getComponent(sessionInterface)
        return session

    def finish(self) -> None:
        """
        Finish the response, then report the request.
        """
        server.Request.finish(self)  # By name: see process().
        self.tracker.request_ended(self, False)

    def connectionLost(self, reason: Failure) -> None:
        """
        The client went away: report the request as aborted if it had not finished.
        """
        super().connectionLost(reason)
        if not self.finished and self.arrived is not None:
            self.tracker.request_ended(self, aborted=True)


class RequestTracker:
    """
    Attaches sessions and users to the requests of one Site and reports finished requests.

    :param site: the Site whose sessions it looks up and creates.
    :param cookies: the cookie policy.
    :param observers: where finished requests are reported.
    :param identify_user: computes the application's own user identity for a request.
    """

    def __init__(
        self,
        site: TrackingSite,
        cookies: CookiePolicy,
        observers: TrafficObservers,
        identify_user: UserIdentifier | None = None,
    ) -> None:
        self._site = site
        self._cookies = cookies
        self._observers = observers
        self._identify_user = identify_user

    @property
    def site(self) -> TrackingSite:
        """
        The Site whose requests it tracks.
        """
        return self._site

    @property
    def cookies(self) -> CookiePolicy:
        """
        The cookie policy requests are tracked with.
        """
        return self._cookies

    def request_started(self, request: Request) -> None:
        """
        Give the request its web session (touched; or made, as the id a first response
        handed out comes back; or none yet, and an id in the response) and its visitor id,
        before any response header is written.
        """
        site = self._site
        request.arrived = now = site.reactor.seconds()
        cookies = self._cookies
        uid, visitor = cookies.read_ids(request)
        # No cookie (None) finds no session either.
        session = site.sessions.get(uid)  # type: ignore[arg-type]
        secure = None
        made = None
        if session is not None:
            session.touch(now)
        elif uid is not None and (issued := site.fresh_session_id(uid, now)) is not None:
            # The id a first response handed out came back: the session exists from now on,
            # begun with that first request.
            session = made = site.makeSession(uid, issued)
            session.request_count = 1
            session.touch(now)
        else:
            # A first request: an id in the response, and no session unless it comes back
            # (or the application asks for it). Clients that never keep cookies cost nothing.
            secure = request.isSecure()
            fresh = request.fresh_uid = site.new_session_id()
            cookies.set_session_cookie(request, fresh, secure)
            if not cookies.tracks_visitors:
                request.new_identity = True
        if session is not None:
            request.tracked_session = session
            session.request_count += 1
        if cookies.tracks_visitors:
            if visitor is None:
                request.new_identity = True
                visitor = new_visitor_id()
                if secure is None:
                    secure = request.isSecure()
                cookies.set_visitor_cookie(request, visitor, secure)
            request.visitor_id = visitor
        if made is not None:
            # Its user before this request ends: a logout in this request ends that visit.
            made.user = self.user_of(request, made.key)

    def session_of(self, request: Request, secure: bool) -> Session:
        """
        The live web session the request's cookie names, touched now; else a new one, whose
        cookie the response sets (Secure if ``secure``).
        """
        fresh = request.fresh_uid
        if fresh is not None:
            # Its id is in this response already: the session exists from this request on.
            request.fresh_uid = None
            made = self._site.makeSession(fresh)
            made.request_count = 1
            # Its user before this request ends: a logout in this request ends that visit.
            made.user = self.user_of(request, made.key)
            return made
        uid, _ = self._cookies.read_ids(request)
        session = self._site.sessions.get(uid) if uid is not None else None
        if session is None:
            return self._new_session(request, secure)
        session.touch(self._site.reactor.seconds())
        return session

    def _new_session(self, request: Request, secure: bool) -> Session:
        session = self._site.makeSession()
        self._cookies.set_session_cookie(request, session.uid, secure)
        return session

    def request_ended(self, request: Request, aborted: bool) -> None:
        """
        Report the request once, with the user it belongs to.
        """
        if request.reported or request.arrived is None:
            return
        request.reported = True
        session = request.tracked_session
        key = request.session_key
        if key is None:
            return
        # user_of, inlined for the usual cases: the application's user, else the visitor.
        user = request.app_user
        if user is None:
            user = (
                request.visitor_id
                if self._identify_user is None and request.visitor_id is not None
                else self.user_of(request, key)
            )
        if session is not None:
            session.user = user
        method, arrived = request.method, request.arrived
        path, resource = _path_names.get(request.path) or path_names(request.path)
        # tuple.__new__ with every field in RequestEvent's order is what RequestEvent(...)
        # does, without its Python-level __new__: a third of the cost, on every request.
        event: RequestEvent = _new_tuple(
            RequestEvent,
            (
                user,
                arrived,
                _METHOD_NAMES.get(method) or method.decode("ascii", "replace"),
                path,
                request.code,
                self._site.reactor.seconds() - arrived,
                key,
                aborted,
                request.resource_name
                or (NOT_FOUND if request.code == 404 else request.routed_name or resource),
                request.new_identity and request.app_user is None,
            ),
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
