"""
The session clusterer: a user's events less than ``cutoff`` seconds apart form one session.

The semantics of mw.lib.sessions and mwsessions, without needing a reactor::

    >>> user_events = [
    ...     ("Willy on wheels", 100000, {'rev_id': 1}),
    ...     ("Walter", 100001, {'rev_id': 2}),
    ...     ("Willy on wheels", 100001, {'rev_id': 3}),
    ...     ("Walter", 100035, {'rev_id': 4}),
    ...     ("Willy on wheels", 103602, {'rev_id': 5})
    ... ]
    >>> for user, events in cluster(user_events):
    ...     (user, events)
    ('Willy on wheels', [{'rev_id': 1}, {'rev_id': 3}])
    ('Walter', [{'rev_id': 2}, {'rev_id': 4}])
    ('Willy on wheels', [{'rev_id': 5}])

Rules, all tested:

- A gap of exactly ``cutoff`` seconds starts a new session (``>=``), measured from the user's
  last event.
- Sessions come out in the order they end: by last event + ``cutoff``, ties broken by the
  arrival order of their last events; :meth:`Cache.get_active_sessions` and the sessions left
  at the end of a stream come in that same order. Users are never compared, so users of mixed,
  non-comparable types work.
- Late (out-of-order) events, that is older than the newest event already processed: with
  ``late="reject"`` (the default, as mwsessions' command line does with unsorted input) such
  an event raises :class:`LateEventError` and changes nothing. With ``late="place"`` (what the
  server uses: requests finish in another order than they arrive) it joins the user's open
  session, in timestamp order, if it is within ``cutoff`` of it; otherwise (its session already
  ended) it forms a session of its own, handed out at once, with the index of the session it
  belongs to when that is the user's last ended one (within a cutoff of it; see
  :data:`ENDED_KEPT`), else a new index. ``Cache.late_events`` counts them;
  a session whose last event came late ends after any in-order session ending at the same time.
  Placing costs some speed: the open sessions keep their events' timestamps.
- Bounds, for a long-running server (off by default, as a batch wants every event):
  ``max_events`` keeps at most that many events' data per session (the first ones, in
  timestamp order when they were kept); later events still extend the session and count in
  :attr:`Session.event_count`. ``max_open`` caps the open sessions: a new one beyond it ends
  another at once, and :attr:`Cache.evicted` counts those: the oldest session that still has a
  single event (a client that never keeps an identity makes one per event: its sessions go
  before any user's visit in progress), else the session that would end first.
- :meth:`Cache.process` returns a list, so an event is processed whether or not the caller
  looks at the result (mw.lib.sessions returns a generator that does nothing until iterated).

Over 400 lines, and kept whole: it is one concept, the Cache, whose hot paths (``process``,
``run``, ``_expire``) inline one another's rules for speed (docs/benchmarks.md) and are only
checkable side by side. The session it hands out is in :mod:`.session`.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator, Sequence
from heapq import heappop, heappush
from math import inf, nextafter
from typing import Any, Literal

from ..eviction import Candidates
from .session import Session
from .timestamps import to_seconds

#: The default cutoff, an hour, as in mw.lib.sessions.
CUTOFF = 3600

LatePolicy = Literal["place", "reject"]
LATE_POLICIES: tuple[LatePolicy, ...] = ("place", "reject")


#: With ``remember_users`` set (a long-running server), how many of the latest ended sessions
#: a late event can still find its index in (about 1.5 MB). A late event whose session already
#: ended comes at least a cutoff after that session's last event: in a server, a request that
#: took longer than the cutoff, so only the latest ended sessions matter. A batch keeps all.
ENDED_KEPT = 10_000


class LateEventError(ValueError):
    """
    An event older than the newest one already processed, under ``late="reject"``.
    """


#: What process() returns when no session ended: shared, never mutated.
_NOTHING: tuple[Session, ...] = ()
#: Integers from here on are 14-digit MediaWiki timestamps (see timestamps.to_seconds).
_MEDIAWIKI_INT = 10**13


def _check_time(end: float, cutoff: float) -> float:
    """
    A time no later than the first ``t`` with ``t - end >= cutoff`` (``end + cutoff`` may
    round up): before it, no expiry pass is needed.
    """
    return nextafter(nextafter(end + cutoff, -inf), -inf)


class Cache:
    """
    Active sessions, and the clock that ends them.

    :param cutoff: seconds of inactivity that end a session (a gap of exactly ``cutoff`` does).
    :param late: what to do with events older than the newest one seen: ``"place"`` or
        ``"reject"`` (see the module documentation).
    :param remember_users: how many users' session counts to remember for
        :attr:`Session.user_index`, at most: the users whose sessions started most recently,
        at least half that many (the counts are kept in two generations, the older dropped
        as a whole); ``None`` remembers all, which suits a batch; a long-running server
        should bound it.
    :param max_events: the most events' data kept per session, or ``None`` for all.
    :param max_open: the most open sessions, or ``None`` for no limit.
    :ivar late_events: how many late events were processed.
    :ivar evicted: how many sessions ``max_open`` ended early.

    How it is fast: with timestamps in order, the session whose last event is oldest is the
    one that ends next, so open sessions are kept in an ``OrderedDict`` in the order of their
    last events (an event moves its session to the end), and ending sessions means taking them
    from the front: no heap, no sorting. The only sessions out of that order are those whose
    last event came late; they wait in a small heap of their own.
    """

    def __init__(
        self,
        cutoff: float = CUTOFF,
        late: LatePolicy = "reject",
        remember_users: int | None = None,
        max_events: int | None = None,
        max_open: int | None = None,
    ) -> None:
        if isinstance(cutoff, bool) or not isinstance(cutoff, int | float) or not cutoff > 0:
            raise ValueError(f"cutoff must be a positive number of seconds, not {cutoff!r}")
        if late not in LATE_POLICIES:
            raise ValueError(f"late must be one of {', '.join(LATE_POLICIES)}, not {late!r}")
        if remember_users is not None and remember_users < 1:
            raise ValueError(f"remember_users must be positive or None, not {remember_users!r}")
        for name, bound in (("max_events", max_events), ("max_open", max_open)):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int) or bound < 1
            ):
                raise ValueError(f"{name} must be a positive integer or None, not {bound!r}")
        self.max_events = max_events
        self.max_open = max_open
        # Compared on every event: a number, whether bounded or not.
        self._max_events = sys.maxsize if max_events is None else max_events
        self.cutoff = cutoff
        self.late = late
        self._remember = remember_users
        # Open sessions whose last event came in order, in the order of their last events.
        self._active: OrderedDict[Hashable, Session] = OrderedDict()
        # Open sessions whose last event came late, and a heap (end, seq, user) of them whose
        # stale entries are dropped when they surface.
        self._late: dict[Hashable, Session] = {}
        self._late_heap: list[tuple[float, int, Hashable]] = []
        # With max_open: the in-order sessions with a single event, oldest first: ended first.
        self._singles: Candidates[Session] | None = (
            None if max_open is None else Candidates(self._is_single)
        )
        # Numbers the late placements: orders late sessions that end together, and tells a
        # late-heap entry from a stale one.
        self._late_count = 0
        # Event timestamps are only needed to place late events inside a session.
        self._keep_times = late == "place"
        # With late events placed: each user's last ended session (start, end, index), so
        # that a late event of that session, now gone, is handed out with its index.
        # An OrderedDict: dropping the oldest is O(1) (a plain dict's first key, after many
        # deletions at the front, is found by scanning past their holes: measured, it doubled
        # the cost of a cookieless flood's events).
        self._ended: OrderedDict[Hashable, tuple[float, float, int]] = OrderedDict()
        # Sessions per user. When bounded, in two generations: a user goes into the current one
        # (from the older, if there), and when it holds half the bound the older is dropped
        # and it becomes the older: O(1) per session and plain dicts. (Forgetting the least
        # recently seen one at a time was a front scan of a dict, 30 us and growing per new
        # user past a million; an OrderedDict would take 60 MB more for a million users.)
        self._counts: dict[Hashable, int] = {}
        self._older_counts: dict[Hashable, int] = {}
        self._generation_size = None if remember_users is None else max(remember_users // 2, 1)
        # The lowest finite float, not -inf: run() relies on "clock <= t" excluding -inf.
        self._clock = -sys.float_info.max
        # No session can end before this time, so the expiry pass is skipped until then.
        self._next_check = inf
        self.late_events = 0
        self.evicted = 0

    def __repr__(self) -> str:
        return f"Cache(cutoff={self.cutoff!r}, late={self.late!r})"

    def __len__(self) -> int:
        return len(self._active) + len(self._late)

    @property
    def next_expiry(self) -> float | None:
        """
        The first time at which :meth:`expire` ends a session, ``None`` if none is open.
        """
        first = self._first()
        if first is None:
            return None
        end, cutoff = first.end, self.cutoff
        moment = end + cutoff
        # Exactly the first float t with t - end >= cutoff, however end + cutoff rounds.
        while moment - end < cutoff:
            moment = nextafter(moment, inf)
        while nextafter(moment, -inf) - end >= cutoff:
            moment = nextafter(moment, -inf)
        return moment

    def process(self, user: Hashable, timestamp: Any, data: Any = None) -> Sequence[Session]:
        """
        Process one event of ``user``.

        :return: the sessions that ended up to ``timestamp`` (any user's), in the order they
            ended.
        :raises TypeError, ValueError: ``timestamp`` is not a timestamp.
        :raises LateEventError: the event is late and the policy is ``"reject"``.
        """
        kind = type(timestamp)
        if kind is float or (kind is int and -_MEDIAWIKI_INT < timestamp < _MEDIAWIKI_INT):
            ts = timestamp + 0.0
            # Cheap finiteness check on the hot path: ts - ts is 0.0 unless ts is inf or nan.
            if ts - ts:
                to_seconds(timestamp)  # Raises, naming the value.
        else:
            ts = to_seconds(timestamp)
        if ts < self._clock:
            if self.late == "reject":
                raise LateEventError(
                    f"event of user {user!r} at {timestamp!r} is older than the newest event "
                    f"already processed ({self._clock!r})"
                )
            self.late_events += 1
            ended: Sequence[Session] = self._place_late(user, ts, data)
        else:
            self._clock = ts
            ended = _NOTHING
            if ts >= self._next_check:
                ended = self._expire(ts)
            session = self._active.get(user)
            if session is not None:
                # The usual event: the user's in-order session goes on (Session._append,
                # inlined: the server runs this for every request). No new session: no
                # bound to check.
                events = session.events
                if len(events) < self._max_events:
                    events.append(data)
                    times = session._times
                    if times is not None:
                        times.append(ts)
                else:
                    session.untracked += 1
                session.end = ts
                self._active.move_to_end(user)
                return ended
            self._add(user, ts, data)
        max_open = self.max_open
        if max_open is not None and len(self._active) + len(self._late) > max_open:
            ended = [*ended, self._evict(user)]
        return ended

    def _evict(self, newcomer: Hashable) -> Session:
        """
        End an open session now, ``max_open`` being exceeded by ``newcomer``'s: the oldest with
        a single event other than the newcomer's, else the one that would end first.
        """
        singles = self._singles
        assert singles is not None, "only called with max_open set"
        first = singles.oldest()
        if first is None or first.user == newcomer:
            first = self._first()
        else:
            singles.forget_oldest()
        assert first is not None, "only called with sessions open"
        if self._active.pop(first.user, None) is None:
            del self._late[first.user]
        if first._times is not None:
            self._remember_ended(first)
        self.evicted += 1
        return first

    def run(self, user_events: Iterable[tuple[Hashable, Any, Any]]) -> Iterator[Session]:
        """
        Process a stream of ``(user, timestamp, data)``, yielding sessions as they end (those
        still open at the end stay open).

        The same as calling :meth:`process` for each event, in one loop: numeric, in-order
        events of users without a late session (the bulk of any stream) take an inlined path
        with the state in local variables; anything else goes through :meth:`process`, so that
        the rules live in one place.
        """
        active, counts, late, cutoff = self._active, self._counts, self._late, self.cutoff
        move_to_end, process, expire = active.move_to_end, self.process, self._expire
        new_session, keep_times = Session.__new__, self._keep_times
        unbounded = self._remember is None
        if self.max_events is not None or self.max_open is not None:
            # Bounded: every event takes process(), where the bounds are kept.
            yield from self._run_slow(user_events)
            return
        clock, next_check = self._clock, self._next_check
        try:
            for user, timestamp, data in user_events:
                kind = type(timestamp)
                # In order, and plainly seconds: not inf or nan (the clock starts at the lowest
                # finite float), not a 14-digit MediaWiki integer.
                if (kind is float or kind is int) and clock <= timestamp < _MEDIAWIKI_INT:
                    clock = ts = timestamp + 0.0
                    if ts >= next_check:
                        self._clock = ts
                        yield from expire(ts)
                        next_check = self._next_check
                    session = active.get(user)
                    if session is not None:
                        session.events.append(data)
                        session.end = ts
                        if keep_times:
                            session._times.append(ts)  # type: ignore[union-attr]
                        move_to_end(user)
                        continue
                    if unbounded and not late:
                        # _add for a new session, inlined (Session.__init__ included).
                        index = counts.get(user, 0)
                        counts[user] = index + 1
                        session = active[user] = new_session(Session)
                        session.user, session.events, session.user_index = user, [data], index
                        session.start = session.end = ts
                        session._times = [ts] if keep_times else None
                        session._seq = session.untracked = 0
                        if next_check == inf:
                            next_check = _check_time(ts, cutoff)
                        continue
                self._clock, self._next_check = clock, next_check
                ended = process(user, timestamp, data)
                clock, next_check = self._clock, self._next_check
                if ended:
                    yield from ended
        finally:
            self._clock, self._next_check = clock, next_check

    def _run_slow(self, user_events: Iterable[tuple[Hashable, Any, Any]]) -> Iterator[Session]:
        process = self.process
        for user, timestamp, data in user_events:
            ended = process(user, timestamp, data)
            if ended:
                yield from ended

    def _add(self, user: Hashable, ts: float, data: Any) -> None:
        """
        Add an in-order event (``ts`` is the clock): to the user's open session, or a new one.
        """
        active = self._active
        session = active.get(user)
        if session is None and self._late:
            session = self._late.pop(user, None)
            if session is not None:
                # Back in order: its last event is now the newest of all.
                active[user] = session
                if not self._late:
                    # Every heap entry is stale now: drop them at once rather than when they
                    # surface, which only a pass with late sessions open does.
                    self._late_heap.clear()
        if session is None:
            session = active[user] = Session(user, [data], ts, ts, self._next_index(user))
            if self._keep_times:
                session._times = [ts]
            if self._next_check == inf:
                self._next_check = _check_time(ts, self.cutoff)
            if self._singles is not None:
                self._singles.add(session, len(active) + len(self._late))
        else:
            session._append(ts, data, self._max_events)
            active.move_to_end(user)

    def _is_single(self, session: Session) -> bool:
        """
        Whether ``session`` is open, in order, with a single event: a candidate to end early.
        """
        return self._active.get(session.user) is session and (
            len(session.events) + session.untracked == 1
        )

    def _next_index(self, user: Hashable) -> int:
        counts = self._counts
        index = counts.get(user)
        if index is None:
            index = self._older_counts.pop(user, 0)
        counts[user] = index + 1
        size = self._generation_size
        if size is not None and len(counts) >= size:
            self._older_counts, self._counts = counts, {}
        return index

    def _remember_ended(self, session: Session) -> None:
        """
        Keep an ended session's span and index (late placement only), and drop its times.
        """
        ended = self._ended
        user = session.user
        ended[user] = (session.start, session.end, session.user_index)
        ended.move_to_end(user)
        if self._generation_size is not None and len(ended) > ENDED_KEPT:
            # A server (remembered users bounded): only the latest ended sessions, oldest out.
            ended.popitem(last=False)
        session._times = None

    def _ended_index(self, user: Hashable, ts: float) -> int:
        """
        The index of the session a late event belongs to when that session already ended:
        the user's last ended one if the event lies within it or a cutoff of it; else (older
        still) a new index.
        """
        span = self._ended.get(user)
        if span is not None and span[0] - self.cutoff < ts < span[1] + self.cutoff:
            return span[2]
        return self._next_index(user)

    def _place_late(self, user: Hashable, ts: float, data: Any) -> list[Session]:
        session = self._active.get(user) or self._late.get(user)
        if session is None:
            if self._clock - ts >= self.cutoff:
                # Its session already ended: handed out at once, with that session's index.
                return [Session(user, [data], ts, ts, self._ended_index(user, ts))]
            session = Session(user, [data], ts, ts, self._next_index(user))
            session._times = [ts]
            self._reorder_late(user, session)
        elif ts >= session.end:
            session._append(ts, data, self._max_events)
            self._reorder_late(user, session)
        elif ts - session.start > -self.cutoff:
            session._insert(ts, data, self._max_events)
        else:
            # Too early for the open session: that earlier session already ended.
            return [Session(user, [data], ts, ts, self._ended_index(user, ts))]
        return []

    def _reorder_late(self, user: Hashable, session: Session) -> None:
        """
        A session whose last event is late leaves the in-order sessions for the late heap.
        """
        self._active.pop(user, None)
        self._late[user] = session
        self._late_count += 1
        session._seq = seq = self._late_count
        heappush(self._late_heap, (session.end, seq, user))
        self._next_check = min(self._next_check, _check_time(session.end, self.cutoff))

    def _first(self) -> Session | None:
        """
        The open session that ends first: oldest last event; among equals, in-order sessions
        in arrival order, then late ones in the order they were placed.
        """
        first = next(iter(self._active.values()), None)
        heap, late = self._late_heap, self._late
        while heap:
            _, seq, user = heap[0]
            candidate = late.get(user)
            if candidate is None or candidate._seq != seq:
                heappop(heap)  # Stale: that session moved on or ended.
                continue
            # Ending at the same time, an in-order session comes before a late one.
            if first is None or candidate.end < first.end:
                first = candidate
            break
        return first

    def expire(self, now: float) -> list[Session]:
        """
        Move the clock to ``now`` (never backwards) and end every session whose last event is
        at least ``cutoff`` old, in the order they ended.
        """
        if now > self._clock:
            self._clock = now
        if self._clock >= self._next_check:
            return self._expire(self._clock)
        return []

    def _expire(self, now: float) -> list[Session]:
        active, late, cutoff = self._active, self._late, self.cutoff
        popitem = active.popitem
        ended: list[Session] = []
        while True:
            if not late and active:
                # The common case, inlined: the front of the in-order sessions.
                user, session = popitem(last=False)
                # The gap is compared as mw.lib.sessions does it: now - last >= cutoff.
                if now - session.end < cutoff:
                    active[user] = session
                    active.move_to_end(user, last=False)
                    self._next_check = _check_time(session.end, cutoff)
                    return ended
                if session._times is not None:
                    self._remember_ended(session)
                ended.append(session)
                continue
            first = self._first()
            if first is None:
                break
            if now - first.end < cutoff:
                self._next_check = _check_time(first.end, cutoff)
                return ended
            if active.pop(first.user, None) is None:
                del late[first.user]
            if first._times is not None:
                self._remember_ended(first)
            ended.append(first)
        self._next_check = inf
        return ended

    def has_open(self, user: Hashable) -> bool:
        """
        Whether ``user`` has an open session.
        """
        return user in self._active or user in self._late

    def end_user(self, user: Hashable) -> Session | None:
        """
        End ``user``'s active session now (for example on logout), if there is one.
        """
        session = self._active.pop(user, None) or self._late.pop(user, None)
        if session is None:
            return None
        session._times = None
        return session

    def finish_all(self) -> list[Session]:
        """
        End every active session (end of a stream, or shutdown), in the order they would end.
        """
        ended = self._open_in_order()
        for session in ended:
            session._times = None
        self._active.clear()
        self._late.clear()
        self._late_heap.clear()
        if self._singles is not None:
            self._singles.clear()
        self._next_check = inf
        return ended

    def get_active_sessions(self) -> list[Session]:
        """
        The active sessions, in the order they would end; copies, not live views.
        """
        return [session._copy() for session in self._open_in_order()]

    def _open_in_order(self) -> list[Session]:
        in_order = list(self._active.values())
        if not self._late:
            return in_order
        keyed = [(s.end, 0, i, s) for i, s in enumerate(in_order)]
        keyed += [(s.end, 1, s._seq, s) for s in self._late.values()]
        return [s for *_, s in sorted(keyed, key=lambda k: k[:3])]


def cluster(
    user_events: Iterable[tuple[Hashable, Any, Any]],
    cutoff: float = CUTOFF,
    late: LatePolicy = "reject",
) -> Iterator[Session]:
    """
    Cluster ``(user, timestamp, data)`` tuples into sessions, yielded as they end; those still
    open at the end of the stream come last, in the order they would end.
    """
    cache = Cache(cutoff, late)
    yield from cache.run(user_events)
    yield from cache.finish_all()
