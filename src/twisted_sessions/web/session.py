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

from ..events import EndReason, SessionSummary

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime


def session_key(uid: bytes) -> str:
    """
    A short, non-secret key for the session whose cookie value is ``uid``.

    Events and logs carry this key, never the cookie value, which would let whoever reads them
    take over the session.
    """
    # A copy of a ready hasher: a third cheaper than blake2b(uid, digest_size=8) each time.
    hasher = _KEY_HASHER.copy()
    hasher.update(uid)
    return hasher.hexdigest()


_KEY_HASHER = blake2b(digest_size=8)
#: Seconds of float rounding tolerated when a deadline is reached: a session found less than
#: this early is due.
EARLY = 1e-6


class Session(server.Session):
    """
    A web session of a :class:`twisted_sessions.Site`.

    Use it like Twisted's: subclass it to change ``sessionTimeout``, register
    ``notifyOnExpire`` hooks, keep per-session state with ``ICounter(session)``.

    :cvar sessionTimeout: seconds without a request after which the session expires (900).
        Changed on a live session, a longer timeout applies at once and a shorter one from
        the session's next request (the requests before were served under the old one).
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
    # The settings the pending expiry check was scheduled with (see touch()).
    _scheduled_timeout: float | None = None
    _scheduled_age: float | None = None
    # The Site's live sessions in least-recently-active order, set by the Site that registers
    # the session: a touch moves the session to its end.
    _activity_order: Any = None
    # The same order among the sessions the Site's IdleSweeper expires, if it took this one
    # (then it has no timer of its own).
    _sweep_order: Any = None
    # False from its creation by a Site until a request brings its cookie back (a touch).
    _came_back = True
    ended_at: float | None = None
    request_count = 0
    user: Hashable = None
    #: The account the application gave it (the first ``request.set_user``), if any.
    account: Hashable = None

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

    @property
    def expires_at(self) -> float:
        """
        When the session expires unless a request touches it first (reactor clock).
        """
        deadline = float(self.lastModified) + float(self.sessionTimeout)
        if self.max_session_age is not None:
            deadline = min(deadline, self.started + self.max_session_age)
        return deadline

    def startCheckingExpiration(self) -> None:
        """
        Start the expiry timer; the Site calls this once the session is registered.
        """
        self._schedule_check(self._reactor.seconds())

    def _join_sweep(self, order: Any) -> None:
        """
        The Site's IdleSweeper takes this session's expiry (``order``: its sessions, least
        recently active first): no timer of its own, until its settings change.
        """
        self._sweep_order = order
        self._scheduled_timeout = self.sessionTimeout
        self._scheduled_age = self.max_session_age

    def _schedule_check(self, now: float) -> None:
        """
        Schedule the one expiry check of this session at :attr:`expires_at`.

        A touch does not move it (that would cost a timer update per request): when it fires
        on a session touched since, it schedules itself again, at the new ``expires_at``.
        """
        call = self._expireCall
        if call is not None and call.active():
            call.cancel()
        sweep_order = self._sweep_order
        if sweep_order is not None:
            # Leaving the Site's sweeper, whose timeout it no longer shares.
            sweep_order.pop(self.uid, None)
            self._sweep_order = None
        self._scheduled_timeout = self.sessionTimeout
        self._scheduled_age = self.max_session_age
        self._expireCall = self._reactor.callLater(
            max(self.expires_at - now, 0.0), self._deadline_reached
        )

    def touch(self, now: float | None = None) -> None:
        """
        Record activity (now, or at ``now`` on the reactor clock when the caller has read it
        already): the inactivity timeout starts again (never past ``max_session_age``).

        Touching an expired session does nothing: it cannot come back to life.
        """
        if self._ended:
            return
        if now is None:
            now = self._reactor.seconds()
        self.lastModified = now
        if (
            self.sessionTimeout != self._scheduled_timeout
            or self.max_session_age != self._scheduled_age
        ) and self._scheduled_timeout is not None:
            # The timeout or age limit changed since the check was scheduled: it may now be
            # due earlier than the pending check.
            self._schedule_check(now)
        self._came_back = True  # Its client keeps the cookie: not evicted first any more.
        uid = self.uid
        order = self._activity_order
        if order is not None:
            # try/except rather than contextlib.suppress: this runs on every request.
            try:  # noqa: SIM105
                order.move_to_end(uid)
            except KeyError:
                pass  # Not registered (any more): nothing to reorder.
        order = self._sweep_order
        if order is not None:
            try:  # noqa: SIM105
                order.move_to_end(uid)
            except KeyError:
                pass

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
            forgotten = getattr(site, "session_forgotten", None)
            if forgotten is not None:
                forgotten(self)
        sweep_order, self._sweep_order = self._sweep_order, None
        if sweep_order is not None:
            sweep_order.pop(self.uid, None)
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
        if self.account is not None and self._end_reason is None and site is not None:
            # The application ended a session that had an account: a logout.
            site.observers.account_changed(False, self.account, self.key, self.ended_at)

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
        now = self._reactor.seconds()
        # Less than a microsecond early is due: float rounding of the timer's arithmetic.
        if self.expires_at - now > EARLY:
            self._schedule_check(now)  # Touched since the check was scheduled.
            return
        self.end(self._expiry_reason())

    def _expiry_reason(self) -> EndReason:
        """
        Why a session found due (``expires_at`` passed) ended: its lifetime or its idleness,
        whichever deadline came first (its lifetime when both at once), however late the
        check that found it.
        """
        age_limit = self.max_session_age
        idle_deadline = float(self.lastModified) + float(self.sessionTimeout)
        if age_limit is not None and self.started + age_limit <= idle_deadline + EARLY:
            return EndReason.MAX_AGE
        return EndReason.IDLE

    def _run_hook(self, hook: Callable[[], object]) -> None:
        try:
            hook()
        except Exception:
            self._log.failure(
                "notifyOnExpire hook {hook!r} of session {key} raised; the other hooks still run",
                hook=hook,
                key=self.key,
            )
