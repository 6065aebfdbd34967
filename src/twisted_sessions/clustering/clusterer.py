"""
The clusterer in the server: request events in, clustered sessions out, on the reactor clock.

A user's clustered session ends when the reactor clock passes its last request + ``cutoff``,
without waiting for another request: one timer is kept for the earliest possible end. At
shutdown every open session is finished and delivered (this is an ``IFlushable``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from ..events import EndReason
from ..interfaces import IClusteredSessionSink, IFlushable, IRequestObserver, ISessionObserver
from .cache import CUTOFF, Cache
from .session import Session

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime

    from ..events import RequestEvent, SessionSummary
    from ..interfaces import ClusteredSession

#: How many users' session counts (for ``Session.user_index``) a server remembers by default, at
#: most (at least half as many: see Cache).
DEFAULT_REMEMBERED_USERS = 1_000_000
#: How many clustered sessions a server keeps open by default (at ~0.5 kB each with a few
#: events: see docs/benchmarks.md); beyond it one ends early: see Cache's ``max_open``.
DEFAULT_MAX_OPEN = 100_000
#: How many events (RequestEvents) a server keeps per clustered session by default: a visit's
#: first requests; the rest are counted (``Session.event_count``), not kept.
DEFAULT_MAX_EVENTS = 100
#: Seconds between two warnings about sessions ended early by the bound.
_WARNING_INTERVAL = 60


@implementer(IClusteredSessionSink)
class _CallableSink:
    def __init__(self, hook: Callable[[Session], object]) -> None:
        self.hook = hook

    def session_finished(self, session: ClusteredSession) -> None:
        # The clusterer delivers its own Sessions only: the hook gets the full class.
        self.hook(cast(Session, session))

    def __repr__(self) -> str:
        return f"<hook {self.hook!r}>"


@implementer(IRequestObserver, ISessionObserver, IFlushable)
class SessionClusterer:
    """
    Clusters a Site's requests into user sessions and hands finished ones to its sinks.

    Attach it to a Site (``site.add_observer(clusterer)``). Requests are grouped by the user
    of their RequestEvent; a web session ended by the application (``session.expire()``, e.g.
    on logout) also ends that user's clustered session at once; other web session ends do not:
    the cutoff decides.

    :param clock: the reactor clock.
    :param cutoff: seconds without a request that end a clustered session.
    :param remember_users: how many users' session counts to keep for ``Session.user_index``.
    :param max_open: the most open clustered sessions; beyond it, one ends at once (delivered
        as usual, counted in ``evicted_count``, warned about): the oldest single-request
        visit, else the visit that would end first.
    :param max_events: the most events kept per clustered session (``None``: all); the count,
        start and end of a session are exact whatever this bound.
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        cutoff: float = CUTOFF,
        remember_users: int = DEFAULT_REMEMBERED_USERS,
        max_open: int | None = DEFAULT_MAX_OPEN,
        max_events: int | None = DEFAULT_MAX_EVENTS,
    ) -> None:
        self._clock = clock
        self._cache = Cache(
            cutoff,
            late="place",
            remember_users=remember_users,
            max_events=max_events,
            max_open=max_open,
        )
        self._last_warning = -float(_WARNING_INTERVAL)
        self._sinks: list[IClusteredSessionSink] = []
        self._timer: IDelayedCall | None = None
        self.finished_count = 0
        #: Finished visits by their end reason (``cutoff``, ``evicted``, ``logout``,
        #: ``shutdown``).
        self.ended_by_reason: dict[str, int] = {}

    @property
    def cutoff(self) -> float:
        """
        Seconds without a request that end a clustered session.
        """
        return self._cache.cutoff

    @property
    def evicted_count(self) -> int:
        """
        How many clustered sessions ended early because ``max_open`` were open.
        """
        return self._cache.evicted

    @property
    def active_count(self) -> int:
        """
        How many clustered sessions are open.
        """
        return len(self._cache)

    def active_sessions(self) -> list[Session]:
        """
        Copies of the open sessions, in the order they would end.
        """
        return self._cache.get_active_sessions()

    def add_sink(self, sink: IClusteredSessionSink | Callable[[Session], object]) -> None:
        """
        Deliver every finished session to ``sink``: an ``IClusteredSessionSink`` or a plain
        callable taking the session.
        """
        if IClusteredSessionSink.providedBy(sink):
            self._sinks.append(sink)
        elif callable(sink):
            self._sinks.append(_CallableSink(sink))
        else:
            raise TypeError(
                f"{sink!r} is neither an IClusteredSessionSink nor a callable taking a session"
            )

    def request_finished(self, event: RequestEvent) -> None:
        """
        Add a finished request to its user's session.
        """
        cache = self._cache
        late_before, evicted_before = cache.late_events, cache.evicted
        ended = cache.process(event.user, event.timestamp, event)
        if ended:
            if cache.evicted != evicted_before:
                # The cache ends an evicted session last (after those past their cutoff).
                ended[-1]._end_reason = "evicted"
                self._warn_evicted()
            self._deliver(ended)
        # In-order events only ever make the first expiry later: the timer, if set, fires
        # early at worst and reschedules itself. A late event may make it earlier.
        if self._timer is None or cache.late_events != late_before:
            self._schedule()

    def _warn_evicted(self) -> None:
        now = self._clock.seconds()
        if now - self._last_warning >= _WARNING_INTERVAL:
            self._last_warning = now
            self._log.warn(
                "{max_open} clustered sessions open: single-request visits, else those that "
                "would end first, end early "
                "({evicted} so far); raise --max-clustered-sessions if memory allows",
                max_open=self._cache.max_open,
                evicted=self._cache.evicted,
            )

    def session_ended(self, summary: SessionSummary) -> None:
        """
        A web session the application ended (logout) ends the user's clustered session, at
        the end of this reactor turn: the logout request, which finishes in it, still belongs
        to the visit it ends.
        """
        if summary.reason is EndReason.EXPLICIT and summary.user is not None:
            self._clock.callLater(0, self._end_user, summary.user)

    def _end_user(self, user: Hashable) -> None:
        ended = self._cache.end_user(user)
        if ended is not None:
            ended._end_reason = "logout"
            self._deliver([ended])

    def flush(self) -> Deferred[None]:
        """
        Finish and deliver every open session (shutdown).
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._deliver(self._cache.expire(self._clock.seconds()))
        finished = self._cache.finish_all()
        for session in finished:
            session._end_reason = "shutdown"
        self._deliver(finished)
        return succeed(None)

    def _tick(self) -> None:
        self._timer = None
        self._deliver(self._cache.expire(self._clock.seconds()))
        self._schedule()

    def _schedule(self) -> None:
        next_expiry = self._cache.next_expiry
        if next_expiry is None:
            return
        timer = self._timer
        delay = max(next_expiry - self._clock.seconds(), 0.0)
        if timer is None:
            self._timer = self._clock.callLater(delay, self._tick)
        elif timer.getTime() > next_expiry:
            timer.reset(delay)

    def _deliver(self, sessions: Sequence[Session]) -> None:
        by_reason = self.ended_by_reason
        for session in sessions:
            self.finished_count += 1
            reason = session.end_reason
            by_reason[reason] = by_reason.get(reason, 0) + 1
            for sink in self._sinks:
                try:
                    sink.session_finished(session)
                except Exception:
                    self._log.failure("clustered session sink {sink!r} failed", sink=sink)
