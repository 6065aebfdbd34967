"""
Built-in counting: the ``requests`` and ``sessions`` metricas, and the object that holds them
with the application's own.

- ``requests``: an AveragedMetrica of response time (seconds) per request, by resource (a
  bounded name, see ``RequestEvent.resource``), method and status class; Staste's
  ResponseTimeMiddleware, the Twisted way.
- ``sessions``: one kick per finished clustered session, averaged over its duration (seconds),
  by entry resource and whether it was a single request; ``session_requests`` the same with
  the number of requests as the value.
- :class:`Counting`: what a Site's application uses to register its own metricas and to derive
  its own kicks from each finished session.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IClusteredSessionSink, IRequestObserver
from .axis import Axis, StoredChoiceAxis
from .metrica import AveragedMetrica, Metrica

if TYPE_CHECKING:
    from ..events import RequestEvent
    from ..interfaces import ClusteredSession
    from .metrica import CounterStore

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"]
_KNOWN_METHODS = frozenset(METHODS)
STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"]
#: Response times are kept to the microsecond.
MICROSECONDS = 1_000_000


#: The status class of each valid code: ``"2xx"`` for 200..299, and so on (anything else
#: counts as ``5xx``).
_STATUS_CLASS = {code: f"{code // 100}xx" for code in range(100, 600)}


@implementer(IRequestObserver, IClusteredSessionSink)
class Counting:
    """
    The metricas of one server: built-in ones (each can be turned off) and the application's.

    Attach it to the Site (request observer) and to the clusterer (session sink); the server
    does, and keeps it as ``site.counting``.

    :param store: where the metricas count.
    :param count_requests: keep the ``requests`` metrica.
    :param count_sessions: keep the ``sessions`` and ``session_requests`` metricas.
    """

    _log = Logger()

    def __init__(
        self, store: CounterStore, count_requests: bool = True, count_sessions: bool = True
    ) -> None:
        self.store = store
        self._session_hooks: list[Callable[[ClusteredSession], object]] = []
        self.requests: AveragedMetrica | None = None
        self.sessions: AveragedMetrica | None = None
        self.session_requests: AveragedMetrica | None = None
        if count_requests:
            self.requests = AveragedMetrica(
                "requests",
                axes=[
                    ("resource", StoredChoiceAxis(cap=200)),
                    ("method", Axis(METHODS)),
                    ("status", Axis(STATUS_CLASSES)),
                ],
                multiplier=MICROSECONDS,
                store=store,
            )
        if count_sessions:
            session_axes = [("entry", StoredChoiceAxis(cap=200)), ("single", Axis(["yes", "no"]))]
            self.sessions = AveragedMetrica(
                "sessions", axes=session_axes, multiplier=MICROSECONDS, store=store
            )
            self.session_requests = AveragedMetrica(
                "session_requests", axes=session_axes, store=store
            )

    def metrica(
        self,
        name: str,
        axes: list[tuple[str, Axis]] | None = None,
        averaged: bool = False,
        **settings: Any,
    ) -> Metrica:
        """
        Register one of the application's own metricas (served by the stats resources too).
        """
        kind = AveragedMetrica if averaged else Metrica
        return kind(name, axes=axes or [], store=self.store, **settings)

    def on_session(self, hook: Callable[[ClusteredSession], object]) -> None:
        """
        Call ``hook`` with every finished clustered session (to kick the application's own
        metricas from it); a hook that raises is logged and the others still run.
        """
        self._session_hooks.append(hook)

    def request_finished(self, event: RequestEvent) -> None:
        """
        Count the request's response time.
        """
        requests = self.requests
        if requests is None:
            return
        method = event.method
        if method not in _KNOWN_METHODS:
            method = "OTHER"
        # In the order of the metrica's axes: resource, method, status.
        row = (event.resource, method, _STATUS_CLASS.get(event.status, "5xx"))
        requests.kick_row(event.timestamp, event.duration, row)

    def session_finished(self, session: ClusteredSession) -> None:
        """
        Count a finished visit, then run the application's hooks.
        """
        if self.sessions is not None and self.session_requests is not None:
            events = session.events
            entry: Hashable = getattr(events[0], "resource", "/") if events else "/"
            # In the order of the metricas' axes: entry, single.
            row = (entry, "yes" if session.event_count == 1 else "no")
            self.sessions.kick_row(session.start, session.duration, row)
            self.session_requests.kick_row(session.start, session.event_count, row)
        for hook in self._session_hooks:
            try:
                hook(session)
            except Exception:
                self._log.failure("session hook {hook!r} failed", hook=hook)
