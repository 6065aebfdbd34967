"""
A consumed feed in the server: its events counted, marked and sessionized by event time, its
position checkpointed with its counts, so that a restart counts nothing twice.

For a feed named ``F`` (``recentchange``):

- metrica ``F`` counts the kept events by the mapping's axes, at their event time;
- the activity event ``F`` marks each event's user (when the server marks activity);
- sessions by event time (:class:`EventTimeSessions`) are counted in ``F_sessions`` (length,
  averaged) and ``F_session_events`` (events per session, averaged), by ``single``, and go to
  the ``visits`` stream with ``"feed": "F"`` (when the server has streams).

**Exactly once across restarts.** Kept events are numbered. At every flush the counter writer
sets, in the same script call as each of those metricas' counts, a checkpoint: how many events
are counted (``n``), and an *anchor* (an event number and the feed's event id there) from
which a replay rebuilds every session still open and every event still buffered. At start the
feed reads the checkpoints, reconnects with ``Last-Event-ID`` at the oldest anchor, and replays
up to each metrica's ``n`` without counting again: the open sessions come back as they were,
and counting goes on where Redis stopped. This holds for a kill -9 as for a clean stop (the open
sessions are not ended at shutdown: the next start rebuilds them), as long as the feed replays
the same events in the same order after an id (one partition; our own ``/stats/stream``) and
its history still holds the anchor.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from ..clustering.clusterer import DEFAULT_REMEMBERED_USERS
from ..counters.axis import Axis, StoredChoiceAxis
from ..counters.counting import MICROSECONDS
from ..counters.metrica import AveragedMetrica, Metrica
from ..storage.keys import feed_checkpoint_key
from ..storage.link import RedisTimeout, RedisUnavailable
from .eventstreams import EventStreams, since_text
from .eventtime import EventTimeSessions
from .mapping import FieldMapping, Mapper, Unmapped, axis_text, event_seconds, path_predicate

if TYPE_CHECKING:
    from ..activity.tracker import Activity
    from ..clustering.session import Session
    from ..counters.metrica import CounterStore
    from ..streams.hub import Streams

#: The default cutoff of a feed's sessions: an hour, as mw.lib.sessions.
FEED_CUTOFF = 3600
#: Seconds an event may come after newer ones and still be in order, by default.
FEED_LATENESS = 60.0


class Feed:
    """
    One consumed EventStreams-style feed, wired into the server's counters.

    :param reactor: network and time.
    :param name: the feed's name: its metricas', its activity event's, its checkpoints'.
    :param url: the feed's URL (``since`` is added on the first start only).
    :param store: where its metricas count (and its checkpoints go, with the counts).
    :param mapping: a :class:`FieldMapping`, or a callable of the event's data returning
        ``(user, time, axis values)`` or ``None`` (see :mod:`.mapping`).
    :param axes: the axis names, when ``mapping`` is a callable.
    :param filters: ``(dotted path, value)`` filters, all of which must match (Pywikibot's
        ``register_filter`` rules).
    :param canary: keep canary events.
    :param since: where the first start begins (default: now); later starts resume from the
        checkpoint.
    :param cutoff: seconds between a user's events that end a session.
    :param lateness: seconds an event may come after newer ones and still be placed in order.
    :param max_open: the most open sessions (beyond, one ends early, counted).
    :param axis_cap: the most distinct values counted per axis (the rest under overflow).
    :param activity: marks each event's user, if given.
    :param streams: publishes each finished session to ``visits``, if given.
    :param source_options: passed on to :class:`EventSource` (``idle_timeout``, ``retry``,
        ``headers``...).
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        name: str,
        url: str,
        *,
        store: CounterStore,
        mapping: FieldMapping | Mapper | None = None,
        axes: Iterable[str] | None = None,
        filters: Iterable[tuple[str, object]] = (),
        canary: bool = False,
        since: object = None,
        cutoff: float = FEED_CUTOFF,
        lateness: float = FEED_LATENESS,
        max_open: int | None = 100_000,
        axis_cap: int = 1000,
        activity: Activity | None = None,
        streams: Streams | None = None,
        source_options: Mapping[str, Any] | None = None,
    ) -> None:
        mapping = FieldMapping() if mapping is None else mapping
        axis_names = mapping.axis_names if isinstance(mapping, FieldMapping) else tuple(axes or ())
        if len(set(axis_names)) != len(axis_names):
            raise ValueError(f"feed {name!r}: two axes with one name: {', '.join(axis_names)}")
        self._reactor = reactor
        self.name = name
        self.url = url
        self.store = store
        self._map = mapping
        self._custom = not isinstance(mapping, FieldMapping)
        self.axis_names = axis_names
        self.filters = [(path, value) for path, value in filters]
        self.canary = canary
        self._since = since_text(since) if since is not None else None
        self.activity = activity
        self.streams = streams
        self._source_options = dict(source_options or {})
        # Bounded like the web's clusterer: a feed's users are as many as a site's visitors.
        self.sessions = EventTimeSessions(
            cutoff,
            lateness,
            max_open=max_open,
            max_events=1,
            remember_users=DEFAULT_REMEMBERED_USERS,
        )
        self.events_metrica = Metrica(
            name,
            axes=[(axis, StoredChoiceAxis(cap=axis_cap)) for axis in axis_names],
            store=store,
        )
        single = [("single", Axis(["yes", "no"]))]
        self.sessions_metrica = AveragedMetrica(
            f"{name}_sessions", axes=single, multiplier=MICROSECONDS, store=store
        )
        self.session_events_metrica = AveragedMetrica(
            f"{name}_session_events", axes=single, store=store
        )
        metricas = (self.events_metrica, self.sessions_metrica, self.session_events_metrica)
        self._keys = {m.tag: feed_checkpoint_key(m.name, name) for m in metricas}
        store.writer.checkpoint(self._keys, self._checkpoint)
        self.stream: EventStreams | None = None
        self.state = "not started"
        #: Kept events numbered so far (replayed ones included).
        self.number = 0
        # (event number, the feed's event id after it): where a replay can start.
        self._ledger: deque[tuple[int, str]] = deque([(0, "")])
        # Per metrica tag: the number of the last event whose counts Redis has.
        self._through: dict[str, int] = dict.fromkeys(self._keys, 0)
        self._replay_until = 0
        self._started = False
        self._stopped = False
        self.unmapped = 0
        self.sessions_finished = 0
        self._last_warning = -float("inf")
        # Backpressure: reading pauses while the counter writer holds more than half its
        # bound (Redis away), and resumes below a quarter: the feed waits, nothing is dropped.
        self._high_water = store.writer.max_pending // 2
        self._low_water = store.writer.max_pending // 4
        self._check: Any = None
        self.pauses = 0

    # -- the checkpoint --------------------------------------------------------------------

    def _checkpoint(self) -> str:
        """
        The checkpoint the counts sealed now go with (``""`` until the feed started).
        """
        if not self._started or self.stream is None:
            return ""
        ledger = self._ledger
        last_id = self.stream.last_event_id
        if last_id and ledger[-1][0] != self.number:
            ledger.append((self.number, last_id))
        oldest = self.sessions.oldest_needed()
        needed = self.number if oldest is None else oldest - 1
        while len(ledger) > 1 and ledger[1][0] <= needed:
            ledger.popleft()
        return json.dumps(
            {"n": self.number, "anchor": list(ledger[0]), "since": self._since},
            separators=(",", ":"),
        )

    # -- running ---------------------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """
        Read the checkpoints (waiting for Redis, and for a replayed counter spool to be
        written first), then connect. Fires once connecting began.
        """
        return Deferred.fromCoroutine(self._start())

    async def _start(self) -> None:
        writer, link = self.store.writer, self.store.link
        delay = 1.0
        while True:
            if self._stopped:
                return
            try:
                if writer.replaying:
                    self.state = "waiting for the counter spool to be written"
                    await writer.send()
                    if writer.replaying:
                        raise RedisUnavailable("the spool is not written yet")
                found = {tag: await link.execute("GET", key) for tag, key in self._keys.items()}
                break
            except (RedisUnavailable, RedisTimeout) as error:
                if not self.state.startswith("waiting"):
                    self._log.info(
                        "feed {name}: waiting for Redis to read its checkpoint ({error})",
                        name=self.name,
                        error=str(error),
                    )
                self.state = "waiting for Redis"
                await deferLater(self._reactor, delay, lambda: None)
                delay = min(delay * 2, 30.0)
        if self._stopped:
            return
        anchor = self._resume(found)
        self.stream = stream = EventStreams(
            self._reactor,
            url=self.url,
            since=self._since,
            canary=self.canary,
            last_event_id=anchor,
            **self._source_options,
        )
        for path, value in self.filters:
            stream.register_filter(path_predicate(path, value))
        self._started = True
        self.state = "connecting"
        stream.start(self._item).addErrback(self._failed)

    def _resume(self, found: dict[str, bytes | str | None]) -> str:
        """
        Take the checkpoints read: where to resume (a ``Last-Event-ID``, or ``""`` for
        ``since``), and how far each metrica has its counts.
        """
        anchors = []
        for tag, raw in found.items():
            if raw is None:
                continue
            text = raw.decode() if isinstance(raw, bytes) else raw
            checkpoint = json.loads(text)
            self._through[tag] = int(checkpoint["n"])
            anchors.append((int(checkpoint["anchor"][0]), str(checkpoint["anchor"][1])))
            self._since = checkpoint.get("since")
        if not anchors:
            if self._since is None:
                # A replay after a crash must find these events again: begin at a time.
                self._since = since_text(datetime.fromtimestamp(self._reactor.seconds(), UTC))
            self._log.info("feed {name}: starting at {since}", name=self.name, since=self._since)
            return ""
        number, event_id = min(anchors)
        self.number = number
        self._ledger = deque([(number, event_id)])
        self._replay_until = max(self._through.values())
        self._log.info(
            "feed {name}: resuming after event {number} ({where}); events up to {until} are "
            "counted already and replayed only to rebuild the open sessions",
            name=self.name,
            number=number,
            where=f"id {event_id}" if event_id else f"since {self._since}",
            until=self._replay_until,
        )
        return event_id

    def _failed(self, failure: Any) -> None:
        self.state = f"failed: {failure.getErrorMessage()}"
        self._log.error(
            "feed {name} stopped: {problem}", name=self.name, problem=failure.getErrorMessage()
        )

    def stop(self) -> None:
        """
        Stop consuming. Open sessions stay open: the next start rebuilds them from the
        checkpoint (the last flush writes it).
        """
        self._stopped = True
        if self._check is not None and self._check.active():
            self._check.cancel()
        self._check = None
        if self.stream is not None:
            self.stream.stop()
        self.state = "stopped"

    # -- each event ------------------------------------------------------------------------

    def _item(self, data: dict[str, Any]) -> None:
        self.number = number = self.number + 1
        try:
            user, when, row = self._mapped(data)
        except (Unmapped, TypeError, ValueError) as error:
            self.unmapped += 1
            now = self._reactor.seconds()
            if now - self._last_warning >= 60:
                self._last_warning = now
                self._log.warn(
                    "feed {name}: an event left out ({error}; {count} so far)",
                    name=self.name,
                    error=str(error),
                    count=self.unmapped,
                )
            return
        through = self._through
        metrica = self.events_metrica
        if number > through[metrica.tag]:
            metrica.kick_row(when, 1, row)
        if self.activity is not None:
            # Marks are idempotent: replayed ones change nothing.
            self.activity.mark(self.name, user, when)
        for session in self.sessions.add(user, when, number, number):
            self._finished(session, number)
        if self.store.writer.backlog > self._high_water and self._check is None:
            self._hold()

    def _hold(self) -> None:
        """
        The counter writer is backed up (Redis away): stop reading until it drains.
        """
        source = self.stream.source if self.stream is not None else None
        if source is None:
            return
        source.pause()
        self.pauses += 1
        self._log.warn(
            "feed {name}: paused, {backlog} counts wait for Redis; it resumes once they are "
            "written",
            name=self.name,
            backlog=self.store.writer.backlog,
        )
        self._check = self._reactor.callLater(1.0, self._drained)

    def _drained(self) -> None:
        self._check = None
        source = self.stream.source if self.stream is not None else None
        if source is None or self._stopped:
            return
        if self.store.writer.backlog > self._low_water:
            self._check = self._reactor.callLater(1.0, self._drained)
            return
        self._log.info("feed {name}: resumed", name=self.name)
        source.resume()

    def _mapped(self, data: dict[str, Any]) -> tuple[Hashable, float, tuple[str, ...]]:
        mapped = self._map(data)
        if mapped is None:
            raise Unmapped("the mapper left it out")
        if not self._custom:
            return mapped
        user, when, *rest = mapped
        row = tuple(axis_text(value) for value in (rest[0] if rest else ()))
        if len(row) != len(self.axis_names):
            raise Unmapped(f"the mapper gave {len(row)} axis values for {len(self.axis_names)}")
        return user, event_seconds(when), row

    def _finished(self, session: Session, number: int) -> None:
        through = self._through
        row = ("yes" if session.event_count == 1 else "no",)
        if number > through[self.sessions_metrica.tag]:
            self.sessions_metrica.kick_row(session.start, session.duration, row)
        if number > through[self.session_events_metrica.tag]:
            self.session_events_metrica.kick_row(session.start, session.event_count, row)
        if number > self._replay_until:
            self.sessions_finished += 1
            if self.streams is not None:
                self.streams.session_finished(session, feed=self.name)

    # -- state -----------------------------------------------------------------------------

    def gauges(self) -> dict[str, Any]:
        """
        The feed's state, for ``/stats``.
        """
        stream = self.stream
        source = stream.source if stream is not None else None
        newest = self.sessions.newest
        watermark = self.sessions.watermark
        return {
            "url": self.url,
            "state": source.state if source is not None and self._started else self.state,
            "connected": source is not None and source.state == "connected",
            "paused": source is not None and source.paused,
            "replaying": self.number < self._replay_until,
            "events_received": source.events if source is not None else 0,
            "events_kept": stream.kept if stream is not None else 0,
            "events_filtered": stream.filtered if stream is not None else 0,
            "events_bad": stream.bad if stream is not None else 0,
            "error_events": stream.errors if stream is not None else 0,
            "events_left_out": self.unmapped,
            "events_late": self.sessions.late,
            "reconnects": source.reconnects if source is not None else 0,
            "last_event_time": _iso(newest),
            "lag_seconds": (
                None if newest is None else round(max(self._reactor.seconds() - newest, 0.0), 3)
            ),
            "watermark": _iso(watermark),
            "open_sessions": self.sessions.open_count,
            "sessions_finished": self.sessions_finished,
            "sessions_evicted": self.sessions.evicted,
        }


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return None
