"""
A clustered session (a visit): a user's events less than ``cutoff`` apart.

It behaves like mw.lib.sessions' namedtuple ``(user, events)`` and knows more: when it started
and ended, how many events it had, which of the user's sessions it is. The :class:`Cache`
(in :mod:`twisted_sessions.clustering.cache`) makes them and hands them out when they end.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Hashable, Iterator
from typing import Any


class Session:
    """
    A user session: behaves like the namedtuple ``(user, events)`` of mw.lib.sessions
    (unpacking, indexing, equality with tuples, repr, ``_asdict``), and also knows when it
    started and ended, and which of the user's sessions it is.

    It is not a tuple subclass: one small object per session is what makes the clusterer fast,
    and an open session is the very object that is handed out when it ends.

    :ivar user: the user.
    :ivar events: the events' data, in timestamp order (ties: arrival order).
    :ivar start: timestamp of the first event (UNIX seconds).
    :ivar end: timestamp of the last event.
    :ivar user_index: the user's session index: 0 for the user's first session the clusterer
        saw, then 1, 2, ...
    :ivar untracked: how many of its events were counted but not kept (the cache's
        ``max_events`` bound); 0 unless bounded.

    While the session is open it also keeps its events' timestamps, to place late events;
    they are dropped when it ends.
    """

    __slots__ = (
        "_end_reason",
        "_seq",
        "_times",
        "end",
        "events",
        "start",
        "untracked",
        "user",
        "user_index",
    )
    _fields = ("user", "events")
    # Set by the clusterer only when a session ends otherwise than by its cutoff.
    _end_reason: str
    __hash__ = None  # type: ignore[assignment]  # Like a namedtuple holding a list.

    def __init__(
        self,
        user: Hashable,
        events: list[Any],
        start: float = 0.0,
        end: float = 0.0,
        user_index: int = 0,
    ) -> None:
        self.user = user
        self.events = events
        self.start = start
        self.end = end
        self.user_index = user_index
        self.untracked = 0
        self._seq = 0
        self._times: list[float] | None = None

    @property
    def end_reason(self) -> str:
        """
        Why the session ended: ``cutoff`` (no event for ``cutoff`` seconds, the usual end),
        ``evicted`` (the clusterer's ``max_open`` bound), ``logout`` (the application ended
        the user's web session) or ``shutdown`` (the server stopped while it was open).
        """
        try:
            return self._end_reason
        except AttributeError:  # Unset on the clusterer's fast path: the usual end.
            return "cutoff"

    @property
    def duration(self) -> float:
        """
        Seconds from the first event to the last (0 for a single event).
        """
        return self.end - self.start

    @property
    def event_count(self) -> int:
        """
        How many events the session had: those kept in ``events`` and the ``untracked`` ones.
        """
        return len(self.events) + self.untracked

    def __iter__(self) -> Iterator[Any]:
        return iter((self.user, self.events))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, item: Any) -> Any:
        return (self.user, self.events)[item]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Session | tuple):
            return (self.user, self.events) == tuple(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Session(user={self.user!r}, events={self.events!r})"

    def _asdict(self) -> dict[str, Any]:
        return {"user": self.user, "events": self.events}

    def _copy(self) -> Session:
        copy = Session(self.user, list(self.events), self.start, self.end, self.user_index)
        copy.untracked = self.untracked
        return copy

    def _insert(self, timestamp: float, data: Any, max_events: int) -> None:
        """
        Place a late event (older than the last one), after any of the same timestamp; only
        count it if the session already keeps ``max_events``.
        """
        times = self._times
        assert times is not None, "only open sessions take late events"
        if len(times) < max_events:
            at = bisect_right(times, timestamp)
            times.insert(at, timestamp)
            self.events.insert(at, data)
        else:
            self.untracked += 1
        if timestamp < self.start:
            self.start = timestamp

    def _append(self, timestamp: float, data: Any, max_events: int) -> None:
        """
        Add an event that is the session's newest; only count it if the session already keeps
        ``max_events``.
        """
        events = self.events
        if len(events) < max_events:
            events.append(data)
            times = self._times
            if times is not None:
                times.append(timestamp)
        else:
            self.untracked += 1
        self.end = timestamp
