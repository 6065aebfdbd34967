"""
Expiry of a Site's web sessions with one timer for all of them.

A timer per session (stock Twisted's way) costs a ``DelayedCall`` and three bound methods per
session, all objects the garbage collector scans again and again, and a reactor heap as large
as the number of sessions, rebuilt as sessions come and go: with a hundred thousand sessions
these stalled the server for hundreds of milliseconds under a flood of cookieless clients
(docs/benchmarks.md). Sessions that share one inactivity timeout expire in the order of their
last activity, and with a shared absolute lifetime too, in the order of their creation: so one
timer at the earlier of the two front sessions' deadlines is enough.
"""

from __future__ import annotations

from collections import OrderedDict
from math import inf
from typing import TYPE_CHECKING

from ..eviction import Candidates
from .session import EARLY

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime

    from .session import Session


class IdleSweeper:
    """
    Expires the sessions it was given when they have been idle for their shared ``timeout``,
    or have lived their shared ``max_age``.

    Sessions whose settings differ from the ones the sweeper's current sessions share are
    refused: they keep a timer of their own. A session whose settings change later leaves the
    sweeper for a timer of its own (see ``Session.touch``).

    :ivar sessions: the swept sessions by id, least recently active first (a touch moves a
        session to the end).
    :ivar timeout: the inactivity timeout the swept sessions share.
    :ivar max_age: the absolute lifetime they share, or ``None``.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self.sessions: OrderedDict[bytes, Session] = OrderedDict()
        self.timeout: float | None = None
        self.max_age: float | None = None
        # With a max_age: the swept sessions in the order they were created, which is the
        # order they reach it.
        self._by_age: Candidates[Session] = Candidates(self._is_swept)
        self._call: IDelayedCall | None = None

    def _is_swept(self, session: Session) -> bool:
        return self.sessions.get(session.uid) is session

    def admit(self, session: Session) -> bool:
        """
        Take charge of a new session's expiry, if it can.

        :return: whether it did; if not, the session needs a timer of its own.
        """
        timeout, max_age = session.sessionTimeout, session.max_session_age
        if self.sessions and (timeout != self.timeout or max_age != self.max_age):
            return False
        self.timeout, self.max_age = timeout, max_age
        self.sessions[session.uid] = session
        if max_age is not None:
            self._by_age.add(session, len(self.sessions))
        session._join_sweep(self.sessions)
        deadline = session.expires_at
        call = self._call
        if call is None:
            self._schedule(deadline)
        elif deadline < call.getTime():
            # The pending sweep is for an older session's lifetime, later than this one's
            # first idle deadline.
            call.reset(max(deadline - self._clock.seconds(), 0.0))
        return True

    def stop(self) -> None:
        """
        Cancel the timer (the Site expired every session: shutdown).
        """
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._by_age.clear()

    def _schedule(self, deadline: float) -> None:
        self._call = self._clock.callLater(max(deadline - self._clock.seconds(), 0.0), self._sweep)

    def _sweep(self) -> None:
        """
        Expire every session past its lifetime, oldest first, then every session idle for the
        timeout, least recently active first; then wait for the next deadline.
        """
        self._call = None
        now = self._clock.seconds()
        sessions, timeout, max_age = self.sessions, self.timeout, self.max_age
        assert timeout is not None, "a sweep is only scheduled with sessions admitted"
        next_deadline = inf
        if max_age is not None:
            # The lifetimes first: a session past it is gone, whatever its idleness.
            while (oldest := self._by_age.oldest()) is not None:
                deadline = oldest.started + max_age
                if deadline - now > EARLY:
                    next_deadline = deadline
                    break
                self._end_if_due(oldest, now)
        while sessions:
            session = next(iter(sessions.values()))
            deadline = float(session.lastModified) + timeout
            if deadline - now > EARLY:
                next_deadline = min(next_deadline, deadline)
                break
            self._end_if_due(session, now)
        if next_deadline != inf:
            self._schedule(next_deadline)

    def _end_if_due(self, session: Session, now: float) -> None:
        """
        End a session the sweep found due, unless its own settings changed since it was
        admitted and it is not due by them: then it leaves for a timer of its own.
        """
        if session.expires_at - now > EARLY:
            session._schedule_check(now)
            return
        session.end(session._expiry_reason())
        # A subclass whose expire() does not unregister must not make the sweep loop forever.
        self.sessions.pop(session.uid, None)
