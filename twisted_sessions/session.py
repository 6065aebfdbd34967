"""
Our web session: Twisted's ``Session`` with an inactivity timeout that really is one.

Fixes over stock Twisted (see DESIGN.md): every request carrying the cookie touches the session,
one raising ``notifyOnExpire`` hook does not stop the others, ``expire()`` twice is harmless, a
hook may touch the session or register more hooks, and an optional absolute lifetime caps how
long any session lives.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from twisted.web import server

from .events import EndReason, SessionSummary

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime


def session_key(uid: bytes) -> str:
    """
    A short, non-secret key for the session whose cookie value is ``uid``.

    Events and logs carry this key, never the cookie value, which would let whoever reads them
    take over the session.
    """
    return blake2b(uid, digest_size=8).hexdigest()


class Session(server.Session):
    """
    A web session of a :class:`twisted_sessions.Site`.

    Use it like Twisted's: subclass it to change ``sessionTimeout``, register
    ``notifyOnExpire`` hooks, keep per-session state with ``ICounter(session)``.

    :cvar sessionTimeout: seconds without a request after which the session expires (900).
    :cvar max_session_age: seconds after creation after which the session expires even if it
        is active, or ``None`` for no limit.
    :ivar started: when the session was created (reactor clock, UNIX seconds).
    :ivar request_count: how many requests it served.
    :ivar user: the user of its latest request, as in :class:`RequestEvent`.
    :ivar key: the non-secret key that request events and summaries carry.
    """

    # Twisted annotates it as int; seconds may well be fractional.
    sessionTimeout: float = 900  # type: ignore[assignment]
    max_session_age: float | None = None

    _log = Logger()
    _ended = False
    _hooks_done = False
    _end_reason: EndReason | None = None
    _expireCall: IDelayedCall | None = None
    ended_at: float | None = None
    request_count = 0
    user: Hashable = None

    def __init__(self, site: Any, uid: Any, reactor: IReactorTime | None = None) -> None:
        # Stock Twisted calls touch() from here; ours needs nothing that is not set on the class.
        super().__init__(site, uid, reactor)
        self.started: float = self.lastModified
        self.key = session_key(uid) if isinstance(uid, bytes) else str(uid)

    @property
    def last_active(self) -> float:
        """
        When a request last touched the session (reactor clock, UNIX seconds).
        """
        return float(self.lastModified)

    @property
    def ended(self) -> bool:
        """
        Whether the session has expired.
        """
        return self._ended

    def _delay_until_expiry(self, now: float) -> float:
        delay = float(self.sessionTimeout)
        if self.max_session_age is not None:
            delay = min(delay, self.started + self.max_session_age - now)
        return max(delay, 0.0)

    def startCheckingExpiration(self) -> None:
        """
        Start the expiry timer; the Site calls this once the session is registered.
        """
        now = self._reactor.seconds()
        self._expireCall = self._reactor.callLater(
            self._delay_until_expiry(now), self._deadline_reached
        )

    def touch(self) -> None:
        """
        Record activity now: the inactivity timer starts again (never past ``max_session_age``).

        Touching an expired session does nothing: it cannot come back to life.
        """
        if self._ended:
            return
        now = self._reactor.seconds()
        self.lastModified = now
        call = self._expireCall
        if call is not None:
            call.reset(self._delay_until_expiry(now))
        site = self.site
        if site is not None:
            mark_active = getattr(site, "session_touched", None)
            if mark_active is not None:
                mark_active(self)

    def notifyOnExpire(self, callback: Callable[[], object]) -> None:
        """
        Call ``callback`` (with no arguments) when the session expires.

        Registered on a session that has already expired, it runs at once, so that a hook is
        never silently lost; registered by a hook during expiry, it runs after that hook.
        """
        if self._hooks_done:
            self._run_hook(callback)
        else:
            self.expireCallbacks.append(callback)

    def end(self, reason: EndReason) -> None:
        """
        Expire the session now, recording why; runs through :meth:`expire` so that subclasses
        overriding ``expire`` see every expiry.
        """
        if self._ended:
            return
        self._end_reason = reason
        self.expire()

    def expire(self) -> None:
        """
        Expire the session: forget it, run every hook, report it to the Site's observers.

        Calling it again does nothing.
        """
        if self._ended:
            return
        self._ended = True
        self.ended_at = self._reactor.seconds()
        call, self._expireCall = self._expireCall, None
        if call is not None and call.active():
            call.cancel()
        site = self.site
        if site is not None:
            site.sessions.pop(self.uid, None)
        # Index, not iterate-and-clear: a hook may register further hooks, which run too.
        hooks = self.expireCallbacks
        index = 0
        while index < len(hooks):
            self._run_hook(hooks[index])
            index += 1
        self.expireCallbacks = []
        self._hooks_done = True
        report = getattr(site, "session_ended", None)
        if report is not None:
            report(self.summary())

    def summary(self) -> SessionSummary:
        """
        What this session reports about itself when it ends.
        """
        return SessionSummary(
            session_key=self.key,
            user=self.user,
            started=self.started,
            last_active=self.last_active,
            ended=self.ended_at if self.ended_at is not None else self._reactor.seconds(),
            request_count=self.request_count,
            reason=self._end_reason or EndReason.EXPLICIT,
        )

    def _deadline_reached(self) -> None:
        self._expireCall = None
        age_limit = self.max_session_age
        if age_limit is not None and self._reactor.seconds() >= self.started + age_limit:
            self.end(EndReason.MAX_AGE)
        else:
            self.end(EndReason.IDLE)

    def _run_hook(self, hook: Callable[[], object]) -> None:
        try:
            hook()
        except Exception:
            self._log.failure(
                "notifyOnExpire hook {hook!r} of session {key} raised; the other hooks still run",
                hook=hook,
                key=self.key,
            )
