r"""
The seams of twisted-sessions, as zope interfaces (and one typing protocol).

The web layer reports to :class:`IRequestObserver` and :class:`ISessionObserver`; the
session clusterer and the counters plug in there. The clusterer hands finished visits, each a
:class:`ClusteredSession`, to :class:`IClusteredSessionSink`\ s: the built-in counting is one,
and knows the clusterer only through these two. Anything that must be written out before the
process exits provides :class:`IFlushable` and is flushed during the ordered shutdown.

This module and :mod:`twisted_sessions.events` are the bottom of the import layers: they
import no other module of the package at run time.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Protocol

from zope.interface import Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .events import RequestEvent, SessionSummary


class ClusteredSession(Protocol):
    """
    A finished clustered session (a visit), as its sinks see it: what
    :class:`twisted_sessions.clustering.Session` provides.
    """

    @property
    def user(self) -> Hashable:
        """
        The user whose events these are.
        """

    @property
    def events(self) -> list[Any]:
        """
        The events' data in timestamp order (for the server: its RequestEvents), at most the
        clusterer's ``max_events`` of them.
        """

    @property
    def start(self) -> float:
        """
        The first event's timestamp (UNIX seconds).
        """

    @property
    def end(self) -> float:
        """
        The last event's timestamp.
        """

    @property
    def duration(self) -> float:
        """
        Seconds from the first event to the last.
        """

    @property
    def event_count(self) -> int:
        """
        How many events the session had, kept or not.
        """

    @property
    def user_index(self) -> int:
        """
        Which of the user's sessions this is: 0 for the first the clusterer saw.
        """

    @property
    def end_reason(self) -> str:
        """
        Why it ended: ``cutoff``, ``evicted``, ``logout`` or ``shutdown``.
        """


class IRequestObserver(Interface):
    """
    Receives every finished request of a Site.
    """

    def request_finished(event: RequestEvent) -> None:
        """
        Called in the reactor thread once the response is complete (or the client went away).
        It must return quickly: it runs on the request path.
        """


class ISessionObserver(Interface):
    """
    Receives every web session that ends, whatever the reason.
    """

    def session_ended(summary: SessionSummary) -> None:
        """
        Called in the reactor thread after the session's own ``notifyOnExpire`` hooks ran.
        """


class IAccountObserver(Interface):
    """
    Hears when a web session gets an account, and when a session with one ends on the
    application's request (a logout): what Flask-Login's signals tell Flask-Bitmapist.
    """

    def logged_in(user: Hashable, session_key: str, when: float) -> None:
        """
        A web session got its first account, through ``request.set_user(user)``.
        """

    def logged_out(user: Hashable, session_key: str, when: float) -> None:
        """
        The application expired (``session.expire()``) a web session that had an account.
        """


class IFlushable(Interface):
    """
    Something holding data that must reach storage before the process exits.
    """

    def flush() -> Deferred[None]:
        """
        Write out everything pending.  The caller bounds how long it waits.
        """


class IClusteredSessionSink(Interface):
    """
    Receives every clustered session (a user's requests less than ``cutoff`` apart) that ends.
    """

    def session_finished(session: ClusteredSession) -> None:
        """
        Called in the reactor thread; ``session.events`` are the session's RequestEvents.
        """
