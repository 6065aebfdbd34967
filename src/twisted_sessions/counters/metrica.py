r"""
Metricas: counters for every combination of axis values, in all-time, year, month, day and
hour buckets (Staste's model), kicked without waiting and queried with Deferreds.

    >>> store = CounterStore(clock, link)          # doctest: +SKIP
    >>> guests = Metrica("guests", axes=[("gender", Axis(["boy", "girl"])),
    ...                                  ("age", StoredChoiceAxis())], store=store)
    >>> guests.kick(gender="girl", age=18)           # returns at once
    >>> await guests.filter(gender="girl").total()   # after the next flush

Counts become visible in Redis at the next flush of the store's writer (every second by
default; ``await store.flush()`` forces one). The reads are :class:`Query`\ s
(:mod:`twisted_sessions.counters.query`); the query methods here are shortcuts for all time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import product
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ..storage.keys import (
    ALL,
    bucket_key,
    combination_field,
    count_field,
    hash_tag,
    metrica_prefix,
    stored_axis_key,
    value_field,
    years_key,
)
from ..storage.link import RedisTimeout, RedisUnavailable
from .axis import OVERFLOW, Axis
from .query import Query, stored_members
from .timebuckets import Timespan, to_utc
from .writer import CounterWriter

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ..storage.link import Link

#: How long fine buckets are kept after they end (Staste's spirit): hours two weeks, days
#: about six months, months three years; years and all time for ever.
DEFAULT_RETENTION = {"hour": 14 * 86400, "day": 183 * 86400, "month": 3 * 366 * 86400}


#: Seconds between two readings of the stored-axis values the site's servers stored.
LEARN_INTERVAL = 10.0


class CounterStore:
    """
    Where metricas count: a Redis connection, the writer, the clock, and the metricas by name.

    :param clock: the reactor clock (``kick()`` without a date counts now, in UTC).
    :param link: the Redis connection.
    :param writer: the writer; by default one flushing every second.
    """

    _log = Logger()

    def __init__(
        self, clock: IReactorTime, link: Link, writer: CounterWriter | None = None
    ) -> None:
        self.clock = clock
        self.link = link
        self.writer = writer or CounterWriter(clock, link)
        self.metricas: dict[str, Metrica] = {}
        self._learning: LoopingCall | None = None

    def register(self, metrica: Metrica) -> None:
        """
        Add a metrica; names are unique within a store.
        """
        if metrica.name in self.metricas:
            raise ValueError(f"a metrica named {metrica.name!r} already exists")
        self.metricas[metrica.name] = metrica

    def flush(self) -> Deferred[None]:
        """
        Write every pending kick now.
        """
        return self.writer.flush()

    def start(self, interval: float = LEARN_INTERVAL) -> None:
        """
        Learn the stored-axis values every server of the site stored, now and every
        ``interval`` seconds, so that a stored axis's cap holds for the site (and across
        restarts), not per process.
        """
        learning = LoopingCall(lambda: Deferred.fromCoroutine(self._learn()))
        learning.clock = self.clock
        self._learning = learning
        learning.start(interval, now=True).addErrback(
            lambda failure: self._log.failure("learning stored-axis values stopped", failure)
        )

    async def _learn(self) -> None:
        for metrica in list(self.metricas.values()):
            try:
                await metrica.learn_stored_values()
            except (RedisUnavailable, RedisTimeout):
                return  # The link logs outages; the next round tries again.

    def stop(self) -> None:
        """
        Stop learning (see :meth:`start`).
        """
        if self._learning is not None and self._learning.running:
            self._learning.stop()


#: How many distinct valid rows a metrica remembers, to skip checking them again.
_REMEMBERED_ROWS = 10_000


class Metrica:
    """
    A counter over time and axes: kick it, then query totals and breakdowns.

    :param name: unique within the store; any string.
    :param axes: ``[(axis name, Axis), ...]``. Never change a metrica's axes: make a new one.
    :param store: where it counts.
    :param multiplier: values are stored as whole numbers of ``1/multiplier`` (``value=7.5``
        with ``multiplier=100`` is 750).
    :param retention: seconds to keep ``hour``, ``day`` and ``month`` buckets after they end.
    """

    averaged = False

    def __init__(
        self,
        name: str,
        axes: Sequence[tuple[str, Axis]] = (),
        *,
        store: CounterStore,
        multiplier: int = 1,
        retention: dict[str, int] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a metrica needs a non-empty string name, not {name!r}")
        names = [axis_name for axis_name, _ in axes]
        if len(set(names)) != len(names):
            raise ValueError(f"metrica {name!r} has an axis name twice: {names}")
        if not isinstance(multiplier, int) or multiplier < 1:
            raise ValueError(f"multiplier must be a positive integer, not {multiplier!r}")
        self.name = name
        #: The hash tag of every key of this metrica: its writes go in batches of their own.
        self.tag = hash_tag(metrica_prefix(name))
        self.axes = list(axes)
        self._axes = dict(axes)
        self.multiplier = multiplier
        self.retention = {**DEFAULT_RETENTION, **(retention or {})}
        self.store = store
        self._seen: dict[str, set[Any]] = {n: set() for n, axis in axes if axis.stored}
        #: Per stored axis: the members its sorted set holds (what every server stored, as
        #: last read, and what this one stored since): the cap counts them, for the site.
        self._stored: dict[str, set[str]] = {n: set() for n in self._seen}
        #: Per stored axis: kicks whose new value was counted under OVERFLOW.
        self.overflowed: dict[str, int] = {n: 0 for n in self._seen}
        # Rows kick_row has checked already: the usual kick is one set lookup.
        self._valid_rows: set[tuple[Any, ...]] = set()
        # For expand, at each flush: the value and count fields of each row, and the buckets
        # of each hour (bounded: cleared when full).
        self._fields: dict[tuple[Any, ...], tuple[list[str], list[str]]] = {}
        self._spans: dict[int, list[tuple[str, float, int | None, int]]] = {}
        self._years_key = years_key(name)
        store.register(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    @property
    def link(self) -> Link:
        """
        The Redis connection its queries read from (the store's).
        """
        return self.store.link

    def kick(self, date: datetime | None = None, value: float = 1, **axis_values: Any) -> None:
        """
        Count one event, at ``date`` (default: now by the store's clock; naive = UTC).

        Returns at once: the count reaches Redis with the next flush.

        :raises TypeError: an axis this metrica does not have, or a value that is no number.
        :raises ValueError: a value not among a fixed axis's choices.
        """
        if date is None:
            when = self.store.clock.seconds()
        elif isinstance(date, datetime):
            when = to_utc(date).timestamp()
        else:
            raise TypeError(f"date must be a datetime or None, not {date!r}")
        self.kick_at(when, value, **axis_values)

    def kick_at(self, when: float, value: float = 1, **axis_values: Any) -> None:
        """
        :meth:`kick` at ``when``, UNIX seconds: for callers that have a timestamp already
        (the built-in counting), sparing a datetime round trip on the request path.
        """
        axes = self._axes
        for key in axis_values:
            if key not in axes:
                self.axis(key)  # Raises, naming the axis and the metrica's axes.
        self.kick_row(when, value, tuple([axis_values.get(name) for name in axes]))

    def kick_row(self, when: float, value: float, row: tuple[Any, ...]) -> None:
        """
        :meth:`kick_at` with the axis values as a tuple in the order of :attr:`axes` (``None``
        for an axis not given): for callers that kick on every request (the built-in
        counting), sparing the keyword dictionary. Values are checked as :meth:`kick_at` does.

        :raises TypeError: a row of the wrong length, or a value that is no number.
        """
        kind = value.__class__
        # The exact-type test first: it is the hot path, and it lets no bool through.
        if (
            kind is not int
            and kind is not float
            and (isinstance(value, bool) or not isinstance(value, int | float))
        ):
            raise TypeError(f"value must be a number, not {value!r}")
        try:
            known = row in self._valid_rows
        except TypeError:  # An unhashable value: _check_row names it.
            known = False
        if not known:
            row = self._check_row(row, when)
        self.store.writer.add(self, int(when // 3600), row, round(value * self.multiplier))

    def _check_row(self, row: tuple[Any, ...], when: float) -> tuple[Any, ...]:
        """
        Check a row not known to be valid, and record new stored-axis values: the row to
        count (a new value past a stored axis's cap becomes OVERFLOW).
        """
        axes = self.axes
        if len(row) != len(axes):
            raise TypeError(
                f"metrica {self.name!r} has {len(axes)} axes, a row of {len(row)} values was kicked"
            )
        checked = row
        for index, (name, axis) in enumerate(axes):
            value_of_axis = row[index]
            if value_of_axis is not None:
                if axis.stored:
                    if value_of_axis not in self._seen[name]:
                        first = self._first_sight(name, axis, value_of_axis, when)
                        if first is not value_of_axis:  # Counted as overflow.
                            checked = (*checked[:index], first, *checked[index + 1 :])
                elif value_of_axis not in axis.valid_values:
                    axis.check(name, value_of_axis)
        # Valid from now on (stored values are never forgotten), unless a value overflowed,
        # which must be counted as such every time.
        if checked is row and len(self._valid_rows) < _REMEMBERED_ROWS:
            self._valid_rows.add(row)
        return checked

    def axis(self, name: str) -> Axis:
        """
        The axis called ``name``.

        :raises TypeError: naming the axis and the metrica's axes, if it has no such axis.
        """
        axis = self._axes.get(name)
        if axis is None:
            raise TypeError(
                f"metrica {self.name!r} has no axis {name!r}; its axes are "
                f"{', '.join(repr(n) for n, _ in self.axes) or 'none'}"
            )
        return axis

    def _first_sight(self, name: str, axis: Axis, value: Any, when: float) -> Any:
        """
        A stored axis meets a value for the first time: remember it, or count it as overflow.
        """
        parts = axis.parts(name, value)  # Validates (a hierarchical value must be a tuple).
        seen, stored = self._seen[name], self._stored[name]
        if parts[-1] in stored:  # Stored already, by another server or an earlier run.
            seen.add(value)
            return value
        zset = stored_axis_key(self.name, name)
        cap: int = axis.cap  # type: ignore[attr-defined]
        if len(seen) >= cap or len(stored) >= cap:
            self.overflowed[name] += 1
            self.store.writer.first_seen(zset, OVERFLOW, when)
            return (OVERFLOW,) if isinstance(value, tuple) else OVERFLOW
        seen.add(value)
        stored.add(parts[-1])
        for part in parts:
            self.store.writer.first_seen(zset, part, when)
        return value

    async def learn_stored_values(self) -> None:
        """
        Read the values every server stored on this metrica's stored axes (at most a cap's
        worth each): values another server stored are counted under their own name here too,
        and this server's new values count against the cap with theirs.

        Between two readings (:data:`LEARN_INTERVAL`) each server may still accept new values
        the others do not know of yet: the site's set can exceed the cap by what the other
        servers accept in one interval, and no more.

        :raises RedisUnavailable, RedisTimeout: from the link.
        """
        for name, _ in self.axes:
            if name not in self._stored:
                continue
            cap = self.axis(name).cap  # type: ignore[attr-defined]
            members = await stored_members(self.link, stored_axis_key(self.name, name), cap)
            self._stored[name].update(m for m in members if m != OVERFLOW)

    def expand(
        self,
        rows: Sequence[tuple[int, tuple[Any, ...], int, int]],
        increments: dict[str, dict[str, int]],
        expireats: dict[str, int],
        now: float,
    ) -> int:
        """
        Add pending counts, each ``(hour, axis values, units, kicks)``, to ``increments``
        (key -> field -> amount): every bucket from its hour to all time, every combination
        of its axis values and "all"; how many new (key, field) increments that made. Fine
        buckets expire ``retention`` after they end, or after ``now`` for counts written late
        (a backfill is kept as long as new data).

        The counts are summed per bucket and axis values first, then spread over the
        combinations: counts of many hours of one day add to the day's fields once, not once
        per hour (a seal of 38,000 counts in hours of their own: 0.34 s spread per count,
        0.10 s summed first).
        """
        sums: dict[tuple[str, tuple[Any, ...]], list[int]] = {}
        spans_of, hour_spans = self._spans.get, self._hour_spans
        years: set[int] = set()
        for hour, values, units, kicks in rows:
            spans = spans_of(hour) or hour_spans(hour)
            for key, ends, keep, _ in spans:
                summed = sums.get((key, values))
                if summed is None:
                    sums[(key, values)] = [units, kicks]
                else:
                    summed[0] += units
                    summed[1] += kicks
                if keep is not None:
                    expireats[key] = int(max(ends, now)) + keep
            years.add(spans[0][3])
        added = 0
        for (key, values), (units, kicks) in sums.items():
            value_names, count_names = self._fields.get(values) or self._fields_of(values)
            # Per key, a dict of fields: no (key, field) tuple to build per increment.
            counts = increments.get(key)
            if counts is None:
                counts = increments[key] = {}
            before = len(counts)
            get = counts.get
            for name in value_names:
                counts[name] = get(name, 0) + units
            for name in count_names:
                counts[name] = get(name, 0) + kicks
            added += len(counts) - before
        for year in years:
            self.store.writer.first_seen(self._years_key, str(year), year)
        return added

    def row_size(self, values: tuple[Any, ...]) -> int:
        """
        The most increments one count with these axis values expands to: five buckets, every
        combination, sum (and count).
        """
        value_names, count_names = self._fields.get(values) or self._fields_of(values)
        return 5 * (len(value_names) + len(count_names))

    def _fields_of(self, values: tuple[Any, ...]) -> tuple[list[str], list[str]]:
        """
        The value and count fields a row of axis values counts under: every combination of
        its values and "all", kept for the next flushes.
        """
        options = [
            [ALL] if value is None else [ALL, *axis.parts(name, value)]
            for (name, axis), value in zip(self.axes, values, strict=True)
        ]
        combos = [combination_field(combo) for combo in product(*options)]
        fields = (
            [value_field(c) for c in combos],
            [count_field(c) for c in combos] if self.averaged else [],
        )
        if len(self._fields) >= _REMEMBERED_ROWS:
            self._fields.clear()
        self._fields[values] = fields
        return fields

    def _hour_spans(self, hour: int) -> list[tuple[str, float, int | None, int]]:
        """
        The buckets a count of ``hour`` lands in (hour, day, month, year, all time): each
        one's key, end (UNIX seconds), retention and year, kept for the next flushes (the
        same few hours come back at every flush: making them cost 30 us a count).
        """
        moment = datetime.fromtimestamp(hour * 3600, UTC)
        spans = [
            (
                bucket_key(self.name, span.code),
                span.end().timestamp() if span.year is not None else 0.0,
                self.retention.get(span.scale),
                moment.year,
            )
            for span in Timespan.of(moment, "hour").parents()
        ]
        if len(self._spans) >= 1024:
            self._spans.clear()
        self._spans[hour] = spans
        return spans

    # Queries: each returns a new immutable Query.
    def timespan(
        self,
        year: int | None = None,
        month: int | None = None,
        day: int | None = None,
        hour: int | None = None,
    ) -> Query:
        """
        The counts of one bucket (``timespan(year=2010, month=2)``).
        """
        return Query(self).timespan(year, month, day, hour)

    def filter(self, **axis_values: Any) -> Query:
        """
        The counts of one combination of axis values (``filter(gender="girl", age=19)``).
        """
        return Query(self).filter(**axis_values)

    def total(self) -> Deferred[float]:
        """
        The all-time total.
        """
        return Query(self).total()

    def count(self) -> Deferred[int]:
        """
        The all-time number of kicks.
        """
        return Query(self).count()

    def average(self) -> Deferred[float | None]:
        """
        The all-time average value (``None`` if nothing was counted).
        """
        return Query(self).average()

    def iterate(self, axis: str | None = None) -> Deferred[list[tuple[Any, float]]]:
        """
        All-time totals by year, or by the values of ``axis``.
        """
        return Query(self).iterate(axis)

    def iterate_counts(self, axis: str | None = None) -> Deferred[list[tuple[Any, int]]]:
        """
        All-time kick counts by year, or by the values of ``axis``.
        """
        return Query(self).iterate_counts(axis)

    def iterate_averages(self, axis: str | None = None) -> Deferred[list[tuple[Any, float | None]]]:
        """
        All-time averages by year, or by the values of ``axis``.
        """
        return Query(self).iterate_averages(axis)

    def timeserie(
        self, since: datetime, until: datetime, scale: str = "day"
    ) -> Deferred[list[tuple[datetime, float]]]:
        """
        Totals per bucket of ``scale`` from ``since`` to ``until``, for a chart.
        """
        return Query(self).timeserie(since, until, scale)


class AveragedMetrica(Metrica):
    """
    A metrica that also counts kicks, so that it has averages (Staste's AveragedMetrica).
    """

    averaged = True
