"""
Our ``Site``: Twisted's, with every request tracked to a web session and a user (its
``requestFactory`` is :class:`twisted_sessions.web.request.Request`).

Use it exactly as Twisted's (``site.sessionFactory = ShortSession``), plus the settings below;
its sessions are :class:`twisted_sessions.Session` or a subclass (stock Twisted's Session has
neither the expiry nor the touch this Site relies on).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from twisted.web import server
from twisted.web.resource import getChildForRequest

from ..events import EndReason, SessionSummary
from ..eviction import Candidates
from .channel import tracked_channel_protocol
from .cookies import CookiePolicy
from .observers import TrafficObservers
from .request import Request, RequestTracker, UserIdentifier, routed_name
from .session import Session
from .sessionids import SessionIds
from .sweeper import IdleSweeper

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime
    from twisted.web.resource import IResource

#: Default cap on live web sessions (about 1 kB each: see docs/benchmarks.md).
DEFAULT_MAX_SESSIONS = 100_000


class Site(server.Site):
    """
    A Twisted ``Site`` that tracks every request to a web session and a user.

    :param resource: the root resource.
    :param reactor: the reactor (clock) sessions and timestamps use; tests pass a ``Clock``.
    :param session_timeout: if given, the inactivity timeout of every session of this Site,
        overriding the session class's ``sessionTimeout``.
    :param max_session_age: if given, an absolute lifetime for every session of this Site,
        overriding the session class's ``max_session_age``.
    :param max_sessions: the most live sessions; at the cap, one is expired (its hooks run) to
        make room: the oldest of those whose cookie never came back (crawlers, health checks,
        clients without cookies: one session per request), else the least recently active.
    :param cookies: cookie names and the visitor cookie setting.
    :param identify_user: computes the application's own user identity for a request.
    :param access_log: write Twisted's per-request access log line; off by default because it
        costs about 40% of the throughput (see DESIGN.md).
    """

    sessionFactory: type[Session] = Session
    requestFactory = Request
    #: Our channel: 414 and 431 for requests over Twisted's limits (see web/channel.py).
    protocol = tracked_channel_protocol

    def __init__(
        self,
        resource: IResource,
        *,
        reactor: IReactorTime | None = None,
        session_timeout: float | None = None,
        max_session_age: float | None = None,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        cookies: CookiePolicy | None = None,
        identify_user: UserIdentifier | None = None,
        access_log: bool = False,
        **kwargs: Any,
    ) -> None:
        for name, value in (
            ("session_timeout", session_timeout),
            ("max_session_age", max_session_age),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError(f"max_sessions must be a positive integer, not {max_sessions!r}")
        super().__init__(resource, reactor=reactor, **kwargs)
        # Least recently active first: touch() moves a session to the end.
        self.sessions: OrderedDict[bytes, Session] = OrderedDict()
        # The sessions whose cookie has not come back yet, oldest first: evicted before any
        # other, so that a flood of cookieless clients does not cut returning users' sessions
        # short.
        self._unreturned: Candidates[Session] = Candidates(self._never_came_back)
        self.session_timeout = session_timeout
        self.max_session_age = max_session_age
        self.max_sessions = max_sessions
        self.observers = TrafficObservers()
        self.tracker = RequestTracker(
            self, cookies or CookiePolicy(), self.observers, identify_user
        )
        self.sessions_evicted = 0
        self.access_log = access_log
        #: The server's metricas (built-in and the application's), when it counts:
        #: ``twistd sessions`` sets it (see twisted_sessions.counters.Counting).
        self.counting: Any = None
        #: The activity marks (an ``Activity``), when the server has them.
        self.activity: Any = None
        #: The live streams (a ``Streams``: ``site.streams.publish(...)``), when the server
        #: has them.
        self.streams: Any = None
        self._mounts: dict[bytes, IResource] = {}
        # The mounts whose requests are not traffic (the stats tree).
        self._untracked: set[bytes] = set()
        # One timer for the idle expiry of the sessions that share a timeout.
        self._sweeper = IdleSweeper(self.reactor)
        #: Issues the session ids, and recognises those that come back (see sessionids).
        self.ids = SessionIds()
        # The ids of sessions that ended while their id would still be taken back as fresh
        # (issued less than a timeout ago), until then: a logged-out cookie replayed does not
        # start a session again. Oldest deadline first.
        self._ended_ids: OrderedDict[bytes, float] = OrderedDict()

    def mount(self, segment: bytes, resource: IResource, tracked: bool = True) -> None:
        """
        Serve ``resource`` at ``/segment`` and below, in front of the root resource (whose
        own ``/segment``, if any, is hidden): how ``twistd sessions`` serves ``/stats``.

        :param tracked: whether requests to it are traffic. An untracked mount (the stats
            tree) gets no web session, sets no cookie and is reported to no observer: it is
            not counted in any metrica nor in any visit.

        (To mount in a tree of your own instead, see ``twisted_sessions.stats.Mounted``.)
        """
        if not isinstance(segment, bytes) or not segment or b"/" in segment:
            raise ValueError(f"segment must be one non-empty path segment, not {segment!r}")
        self._mounts[segment] = resource
        if tracked:
            self._untracked.discard(segment)
        else:
            self._untracked.add(segment)

    def getResourceFor(self, request: Any) -> IResource:
        """
        The resource for the request: a mounted one, else what the root resource's tree
        gives, as in Twisted. The request is tracked (a web session, a visitor, reported when
        it ends) unless it is for an untracked mount.
        """
        # Twisted's getResourceFor, with the mounts first (and list() rather than its
        # copy.copy(), which costs a microsecond on every request).
        request.site = self
        request.sitepath = list(request.prepath)
        postpath = request.postpath
        root = self.resource
        if self._mounts and postpath:
            segment = postpath[0]
            mounted = self._mounts.get(segment)
            if mounted is not None:
                request.prepath.append(postpath.pop(0))
                if segment in self._untracked:
                    return getChildForRequest(mounted, request)  # type: ignore[no-any-return]
                root = mounted
        # Here, not in Request.process: only now is it known whether the request is traffic.
        self.tracker.request_started(request)
        resource = getChildForRequest(root, request)
        request.routed_name = routed_name(request.prepath)
        return resource  # type: ignore[no-any-return]

    def log(self, request: Any) -> None:
        """
        Write the access log line, only if ``access_log`` is on.
        """
        if self.access_log:
            super().log(request)

    def add_observer(self, observer: object) -> None:
        """
        Attach an :class:`IRequestObserver` and/or :class:`ISessionObserver`.
        """
        self.observers.add(observer)

    def remove_observer(self, observer: object) -> None:
        """
        Detach an observer.
        """
        self.observers.remove(observer)

    def _mkuid(self) -> bytes:
        return self.new_session_id()

    def new_session_id(self) -> bytes:
        """
        A new session id, issued now: signed and timestamped (see sessionids).
        """
        return self.ids.issue(self.reactor.seconds())

    def timeout_of_new_sessions(self) -> float:
        """
        The inactivity timeout a session made now gets.
        """
        if self.session_timeout is not None:
            return self.session_timeout
        return float(self.sessionFactory.sessionTimeout)

    def fresh_session_id(self, uid: bytes, now: float) -> float | None:
        """
        When ``uid`` was issued, if it is an id of this server whose session would still be
        alive had it existed from then (its first request) until now; else ``None``.
        """
        issued = self.ids.issued_at(uid)
        if issued is None or issued > now + 1 or now - issued >= self.timeout_of_new_sessions():
            return None
        age = self.max_session_age
        if age is None:
            age = self.sessionFactory.max_session_age
        if age is not None and now - issued >= age:
            return None
        if uid in self._ended_ids:
            return None
        return issued

    def session_forgotten(self, session: Session) -> None:
        """
        Called by a session as it ends: if its id could still be taken for a fresh one,
        remember that it ended until it could not.
        """
        issued = self.ids.issued_at(session.uid) if isinstance(session.uid, bytes) else None
        if issued is None:
            return
        deadline = issued + self.timeout_of_new_sessions()
        now = self.reactor.seconds()
        ended = self._ended_ids
        while ended:
            oldest_uid, oldest_deadline = next(iter(ended.items()))
            if oldest_deadline > now:
                break
            del ended[oldest_uid]
        if deadline > now:
            ended[session.uid] = deadline

    def makeSession(self, uid: bytes | None = None, started: float | None = None) -> Session:
        """
        Create, register and start a new session, first evicting the least recently active
        one(s) if the Site is at ``max_sessions``.

        :param uid: the id (by default a new one): the id the first response handed out, when
            the session starts to exist as it comes back.
        :param started: when the session began (by default now): its first request.
        """
        sessions = self.sessions
        while len(sessions) >= self.max_sessions:
            victim = self._unreturned.oldest()
            if victim is None:
                victim = next(iter(sessions.values()))
            else:
                self._unreturned.forget_oldest()
            self.sessions_evicted += 1
            victim.end(EndReason.EVICTED)
            # A subclass whose expire() does not unregister must not make this loop forever.
            sessions.pop(victim.uid, None)
        if uid is None:
            uid = self._mkuid()
        session = self.sessionFactory(self, uid)
        if started is not None:
            session.started = started
        if self.session_timeout is not None:
            session.sessionTimeout = self.session_timeout
        if self.max_session_age is not None:
            session.max_session_age = self.max_session_age
        sessions[uid] = session
        # Every touch moves it to the end: the front is the least recently active.
        session._activity_order = sessions
        # Until a request brings its cookie back (touch() says so).
        session._came_back = False
        self._unreturned.add(session, len(sessions))
        if not self._sweeper.admit(session):
            session.startCheckingExpiration()
        return session

    def _never_came_back(self, session: Session) -> bool:
        """
        Whether ``session`` is live and its cookie never came back: evicted first at the cap.
        """
        return not session._came_back and self.sessions.get(session.uid) is session

    def session_ended(self, summary: SessionSummary) -> None:
        """
        Called by a session once it expired and its hooks ran.
        """
        self.observers.session_ended(summary)

    def expire_all(self, reason: EndReason = EndReason.SHUTDOWN) -> int:
        """
        Expire every live session, least recently active first, through the normal path.

        :return: how many sessions were expired.
        """
        count = 0
        while self.sessions:
            session = next(iter(self.sessions.values()))
            session.end(reason)
            self.sessions.pop(session.uid, None)
            count += 1
        self._unreturned.clear()
        self._sweeper.stop()
        return count
