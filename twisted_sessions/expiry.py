"""
Idle expiry of a Site's web sessions with one timer for all of them.

A timer per session (stock Twisted's way) costs a ``DelayedCall`` and three bound methods per
session, all objects the garbage collector scans again and again, and a reactor heap as large
as the number of sessions, rebuilt as sessions come and go: with a hundred thousand sessions
these stalled the server for hundreds of milliseconds under a flood of cookieless clients
(docs/benchmarks.md). Sessions that share one inactivity timeout expire in the order of their
last activity, so one timer at the least recently active session's deadline is enough.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from .events import EndReason

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime

    from .session import Session

#: Seconds of float rounding tolerated when a deadline is reached.
EARLY = 1e-6


class IdleSweeper:
    """
    Expires the sessions it was given when they have been idle for its ``timeout``.

    Sessions with an absolute lifetime (``max_session_age``), or whose timeout differs from
    the one the sweeper's current sessions share, are refused: they keep a timer of their own.
    A session whose timeout changes later leaves the sweeper for a timer of its own (see
    ``Session.touch``).

    :ivar sessions: the swept sessions by id, least recently active first (a touch moves a
        session to the end).
    :ivar timeout: the inactivity timeout the swept sessions share.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self.sessions: OrderedDict[bytes, Session] = OrderedDict()
        self.timeout: float | None = None
        self._call: IDelayedCall | None = None

    def admit(self, session: Session) -> bool:
        """
        Take charge of a new session's idle expiry, if it can.

        :return: whether it did; if not, the session needs a timer of its own.
        """
        timeout = session.sessionTimeout
        if session.max_session_age is not None or (self.sessions and timeout != self.timeout):
            return False
        self.timeout = timeout
        self.sessions[session.uid] = session
        session._join_sweep(self.sessions)
        if self._call is None:
            self._schedule(session.expires_at)
        return True

    def stop(self) -> None:
        """
        Cancel the timer (the Site expired every session: shutdown).
        """
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self, deadline: float) -> None:
        self._call = self._clock.callLater(max(deadline - self._clock.seconds(), 0.0), self._sweep)

    def _sweep(self) -> None:
        """
        Expire every session idle for the timeout, least recently active first; then wait for
        the next one's deadline.
        """
        self._call = None
        now = self._clock.seconds()
        sessions, timeout = self.sessions, self.timeout
        assert timeout is not None, "a sweep is only scheduled with sessions admitted"
        while sessions:
            session = next(iter(sessions.values()))
            deadline = float(session.lastModified) + timeout
            if deadline - now > EARLY:
                self._schedule(deadline)
                return
            if session.expires_at - now > EARLY:
                # Its own settings changed since it was admitted: it leaves for a timer of
                # its own.
                session._schedule_check(now)
                continue
            session.end(EndReason.IDLE)
            # A subclass whose expire() does not unregister must not make this loop forever.
            sessions.pop(session.uid, None)
