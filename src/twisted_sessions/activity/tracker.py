"""
:class:`Activity`: marking users' events and reading them back (bitmapist, in Twisted).

In a resource::

    site.activity.mark("song:play", request=request)    # the request's user
    site.activity.mark_event("invoice:paid", account_id) # code without a request

    class Index(Resource):
        @activity.marks("index:visited")                  # the *current* request's user
        def render_GET(self, request): ...

Reading::

    week = activity.events("active", Period.of(now, "week"))
    await week.count(); await (week & activity.events("song:play", ...)).count()
    await activity.cohort("user:logged_in", "active", time_group="weeks", num_rows=12)

Built in (each can be turned off): ``active`` for every tracked request's user,
``user:logged_in`` the first time a web session gets an account (``request.set_user``),
``user:logged_out`` when the application expires a session that had one, and
``session:started`` for each clustered visit (at its first request's time).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IAccountObserver, IClusteredSessionSink, IRequestObserver
from ..storage.keys import ACTIVITY_EVENTS, check_event
from .bitmaps import BitmapReader, Events, Known
from .cohort import CohortTable, cohort_table, dates_data
from .ids import UserIds
from .periods import Period, Scale
from .writer import MarkWriter

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ..events import RequestEvent
    from ..interfaces import ClusteredSession
    from ..storage.link import Link

#: The built-in marks, each of which can be turned off.
BUILTIN = ("active", "user:logged_in", "user:logged_out", "session:started")

Render = TypeVar("Render", bound=Callable[..., Any])


@implementer(IRequestObserver, IClusteredSessionSink, IAccountObserver)
class Activity:
    """
    Marks users' events into bitmaps, and reads them.

    :param clock: the reactor clock (a mark without ``when`` is now, by it).
    :param link: a *binary* Redis connection (``RedisLink(..., binary=True)``): bitmaps are
        bytes.
    :param scales: the bitmaps a mark lands in (day, week, month and ``unique``, "ever", by
        default; add ``hour``, as bitmapist's ``track_hourly``).
    :param builtin: the built-in marks to make (see :data:`BUILTIN`).
    :param spool_path: where unwritten marks go at shutdown (see :class:`MarkWriter`).
    :param integer_ids: take integer users as their own bit offsets (see :class:`UserIds`).
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        link: Link,
        scales: tuple[Scale, ...] = ("day", "week", "month", "unique"),
        builtin: Iterable[str] = BUILTIN,
        flush_interval: float = 1.0,
        max_pending: int = 1_000_000,
        spool_path: Path | None = None,
        id_cache: int = 100_000,
        integer_ids: bool = False,
    ) -> None:
        if not getattr(link, "binary", False):
            raise ValueError("Activity needs a binary RedisLink (binary=True): bitmaps are bytes")
        self.builtin = frozenset(builtin)
        unknown = self.builtin - set(BUILTIN)
        if unknown:
            raise ValueError(
                f"unknown built-in marks: {', '.join(sorted(unknown))}; they are "
                f"{', '.join(BUILTIN)}"
            )
        self._clock = clock
        self.link = link
        self.ids = UserIds(link, cache_size=id_cache, integers=integer_ids)
        self.writer = MarkWriter(
            clock,
            link,
            self.ids,
            scales=scales,
            flush_interval=flush_interval,
            max_pending=max_pending,
            spool_path=spool_path,
        )
        self._mark_active = "active" in self.builtin
        self._writer_add = self.writer.add
        self._listeners: list[Callable[[str, Hashable, float], object]] = []
        # Event names already checked: the usual mark is one set lookup, not a regex.
        self._checked: set[str] = set()
        # The hour request_finished marks in, and its pending key.
        self._hour_start = -1.0
        self._hour_key: tuple[str, int] = ("active", -1)

    # -- marking ---------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[str, Hashable, float], object]) -> None:
        """
        Call ``listener(event, user, when)`` for every mark made from now on (the live
        ``activity`` stream is one). It runs where the mark is made, so it must be quick; one
        that raises is logged and does not stop the mark.
        """
        self._listeners.append(listener)
        self._writer_add = self._add_and_tell

    def _add_and_tell(self, event: str, user: Hashable, when: float) -> None:
        self.writer.add(event, user, when)
        for listener in self._listeners:
            try:
                listener(event, user, when)
            except Exception:
                self._log.failure("activity listener {listener!r} failed", listener=listener)

    def mark(
        self,
        event: str,
        user: Hashable = None,
        when: float | datetime | None = None,
        request: Any = None,
    ) -> None:
        """
        Mark ``user`` (by default, ``request``'s user: the account the application set with
        ``request.set_user``, else the visitor) for ``event`` at ``when`` (default: now).
        Never waits for Redis: the mark is written at the next flush.

        :raises ValueError: a bad event name, or no user and no request to take one from.
        """
        if event not in self._checked:
            check_event(event)
            if len(self._checked) < 10_000:
                self._checked.add(event)
        if user is None:
            user = _user_of(request)
            if user is None:
                raise ValueError(f"mark({event!r}): give user=, or request= of a tracked request")
        if when is None:
            seconds = self._clock.seconds()
        elif type(when) is float:
            seconds = when
        else:
            seconds = self._seconds(when)
        self._writer_add(event, user, seconds)

    def mark_event(self, event: str, user: Hashable, when: float | datetime | None = None) -> None:
        """
        Mark ``user`` for ``event`` (bitmapist's and Flask-Bitmapist's ``mark_event``).
        """
        self.mark(event, user, when)

    def marks(self, event: str) -> Callable[[Render], Render]:
        """
        A decorator for render methods (``render_GET(self, request)``): each call marks the
        user of the request being rendered, when it runs (Flask-Bitmapist's ``@mark`` takes
        the user once, at import time).
        """
        check_event(event)

        def decorate(render: Render) -> Render:
            @functools.wraps(render)
            def marked(resource: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
                self.mark(event, request=request)
                return render(resource, request, *args, **kwargs)

            return marked  # type: ignore[return-value]

        return decorate

    def _seconds(self, when: float | datetime | None) -> float:
        if when is None:
            return self._clock.seconds()
        if isinstance(when, datetime):
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return when.timestamp()
        return float(when)

    # -- built-in marks (observers) --------------------------------------------------------

    def request_finished(self, event: RequestEvent) -> None:
        """
        Mark the request's user ``active``: on the request path, so the usual case (a user
        already marked this hour) is a set lookup, without a call.

        A user made by this very request (no visitor cookie came back, no account) is not
        marked: their next request, cookie returned, is. A client that never keeps cookies
        would otherwise take a new id (and about 200 bytes of Redis, for good) per request.
        """
        if not self._mark_active or event.new_user:
            return
        moment = event.timestamp
        if not self._hour_start <= moment < self._hour_start + 3600:
            hour = int(moment // 3600)
            self._hour_key, self._hour_start = ("active", hour), hour * 3600
        users = self.writer._pending.get(self._hour_key)
        if users is None or event.user not in users:
            self._writer_add("active", event.user, moment)

    def session_finished(self, session: ClusteredSession) -> None:
        """
        Mark ``session:started`` for a visit, unless every request of it made its user (see
        :meth:`request_finished`): a cookieless client's one-request visits take no ids.
        """
        if "session:started" not in self.builtin:
            return
        if any(not getattr(event, "new_user", False) for event in session.events):
            self._writer_add("session:started", session.user, session.start)

    def logged_in(self, user: Hashable, session_key: str, when: float) -> None:
        if "user:logged_in" in self.builtin:
            self._writer_add("user:logged_in", user, when)

    def logged_out(self, user: Hashable, session_key: str, when: float) -> None:
        if "user:logged_out" in self.builtin:
            self._writer_add("user:logged_out", user, when)

    # -- reading ---------------------------------------------------------------------------

    def events(self, event: str, period: Period, reader: BitmapReader | None = None) -> Events:
        """
        The users marked for ``event`` in ``period`` (bitmapist's ``DayEvents``...): combine
        with ``& | ^ ~``, read with ``await x.count()``, ``x.contains(uid)``, ``x.ids()``.
        """
        return Events(reader or BitmapReader(self.link), event, period)

    def known(self, reader: BitmapReader | None = None) -> Known:
        """
        Every user with an id (the population ``~x`` is relative to).
        """
        return Known(reader or BitmapReader(self.link))

    def reader(self) -> BitmapReader:
        """
        A reader that fetches each bitmap once: share it between the expressions of one
        answer.
        """
        return BitmapReader(self.link)

    async def event_names(self) -> list[str]:
        """
        The events marked so far, sorted.
        """
        names = await self.link.execute("SMEMBERS", ACTIVITY_EVENTS)
        return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    async def users_of(self, ids: Iterable[int]) -> dict[int, str]:
        """
        The user each id stands for.
        """
        return await self.ids.users(ids)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), UTC)

    async def cohort(self, primary: str, secondary: str, **options: Any) -> CohortTable:
        """
        Flask-Bitmapist's ``get_cohort`` with totals (see :func:`cohort_table`), as of now.
        """
        options.setdefault("now", self.now())
        options.setdefault("clock", self._clock)
        return await cohort_table(self.link, primary, secondary, **options)

    async def dates_data(self, select1: str, select2: str, **options: Any) -> list[list[Any]]:
        """
        ``bitmapist.cohort.get_dates_data`` (see :func:`dates_data`), as of now.
        """
        options.setdefault("now", self.now())
        options.setdefault("clock", self._clock)
        return await dates_data(self.link, select1, select2, **options)


def _user_of(request: Any) -> Hashable:
    """
    Who made a tracked request: its account, else its visitor, else its web session.
    """
    if request is None:
        return None
    user: Hashable = getattr(request, "app_user", None)
    if user is not None:
        return user
    tracker = getattr(request, "tracker", None)
    session = getattr(request, "tracked_session", None)
    if tracker is not None and session is not None:
        found: Hashable = tracker.user_of(request, session.key)
        return found
    visitor: Hashable = getattr(request, "visitor_id", None)
    return visitor
