"""
Sessions by event time: a feed's events clustered by when they happened, ended by the feed's
own watermark, never by the reactor clock.

A feed replayed from history (``since=`` a week ago) arrives far faster than its event time
advances: by the reactor clock, a week's backlog would be cut into one-event sessions. Here
time is the **watermark**: the newest event time seen, less ``lateness``. An event waits in a
small buffer until the watermark passes it, and goes to the clusterer (a
:class:`~twisted_sessions.clustering.Cache` placing late events) in event-time order; a session
ends once the watermark is ``cutoff`` past its last event. An event that comes after the
watermark passed its time (later than ``lateness``) is still placed in its session if that is
open, or ends a session of its own at once (counted in ``late``).

No reactor here: the same class serves the server's feeds and ``sessionize --sse``. It also
knows, for a checkpoint, the oldest event still needed to rebuild what is open (see
:meth:`EventTimeSessions.oldest_needed`).
"""

from __future__ import annotations

from collections.abc import Hashable
from heapq import heappop, heappush
from typing import Any

from ..clustering.cache import CUTOFF, Cache
from ..clustering.session import Session


class EventTimeSessions:
    """
    Clusters ``(user, time, number, data)`` events by event time.

    :param cutoff: seconds between two events of a user that end a session.
    :param lateness: seconds an event may arrive after newer ones and still be in order.
    :param max_open: the most open sessions (see :class:`Cache`), ``None`` for no bound.
    :param max_events: the most events' data kept per session.
    :param remember_users: how many users' session counts to keep (``Session.user_index``).
    """

    def __init__(
        self,
        cutoff: float = CUTOFF,
        lateness: float = 0.0,
        max_open: int | None = None,
        max_events: int | None = None,
        remember_users: int | None = None,
    ) -> None:
        if isinstance(lateness, bool) or not 0 <= lateness < float("inf"):
            raise ValueError(f"lateness must be a non-negative number of seconds: {lateness!r}")
        self.lateness = lateness
        self._cache = Cache(
            cutoff,
            late="place",
            max_open=max_open,
            max_events=max_events,
            remember_users=remember_users,
        )
        self._buffer: list[tuple[float, int, Hashable, Any]] = []
        # The number of the first event of each open session (for oldest_needed).
        self._first: dict[Hashable, int] = {}
        #: The newest event time seen.
        self.newest: float | None = None

    @property
    def cutoff(self) -> float:
        """
        Seconds between two events of a user that end a session.
        """
        return self._cache.cutoff

    @property
    def watermark(self) -> float | None:
        """
        The event time up to which the feed is taken as complete.
        """
        return None if self.newest is None else self.newest - self.lateness

    @property
    def open_count(self) -> int:
        """
        Open sessions.
        """
        return len(self._cache)

    @property
    def buffered(self) -> int:
        """
        Events waiting for the watermark.
        """
        return len(self._buffer)

    @property
    def late(self) -> int:
        """
        Events that came after the watermark passed their time.
        """
        return self._cache.late_events

    @property
    def evicted(self) -> int:
        """
        Sessions ended early by ``max_open``.
        """
        return self._cache.evicted

    def add(self, user: Hashable, when: float, number: int, data: Any) -> list[Session]:
        """
        One event: the sessions it ends (any user's), in the order they ended.
        """
        if self.newest is None or when > self.newest:
            self.newest = when
        if not self.lateness:
            return self._process(user, when, number, data)
        buffer = self._buffer
        heappush(buffer, (when, number, user, data))
        limit = self.newest - self.lateness
        ended: list[Session] = []
        while buffer and buffer[0][0] <= limit:
            when, number, user, data = heappop(buffer)
            ended += self._process(user, when, number, data)
        # The clusterer's clock is the watermark, not the last event it was given: a session
        # ends once the watermark is a cutoff past it.
        expired = self._cache.expire(limit)
        if expired:
            self._forget(expired)
            ended += expired
        return ended

    def _process(self, user: Hashable, when: float, number: int, data: Any) -> list[Session]:
        first = self._first
        if user not in first:
            first[user] = number
        cache = self._cache
        evicted = cache.evicted
        ended = list(cache.process(user, when, data))
        if ended:
            if cache.evicted != evicted:
                # The cache ends an evicted session last (after those past their cutoff).
                ended[-1]._end_reason = "evicted"
            self._forget(ended)
        return ended

    def _forget(self, ended: list[Session]) -> None:
        """
        Ended sessions need no replay any more, unless their user has another one open.
        """
        first, has_open = self._first, self._cache.has_open
        for session in ended:
            if not has_open(session.user):
                first.pop(session.user, None)

    def finish(self) -> list[Session]:
        """
        The end of the feed: every buffered event processed, every open session ended.
        """
        ended: list[Session] = []
        while self._buffer:
            when, number, user, data = heappop(self._buffer)
            ended += self._process(user, when, number, data)
        ended += self._cache.finish_all()
        self._first.clear()
        return ended

    def oldest_needed(self) -> int | None:
        """
        The number of the oldest event that an open session or the buffer holds: a replay
        from just before it rebuilds all that is open. ``None`` if nothing is open.
        """
        numbers = [entry[1] for entry in self._buffer]
        if self._first:
            numbers.append(min(self._first.values()))
        return min(numbers) if numbers else None
