"""
The seams of twisted-sessions, as zope interfaces.

The web layer reports to :class:`IRequestObserver` and :class:`ISessionObserver`; the
session clusterer and the counters plug in there. Anything that must be written out before the
process exits provides :class:`IFlushable` and is flushed during the ordered shutdown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .clusterer import Session
    from .events import RequestEvent, SessionSummary


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

    def session_finished(session: Session) -> None:
        """
        Called in the reactor thread; ``session.events`` are the session's RequestEvents.
        """
