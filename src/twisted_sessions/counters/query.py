"""
Queries of a metrica: one bucket and one combination of axis values, read from Redis.

A :class:`Query` is immutable and chainable (``metrica.timespan(year=2010).filter(gender="girl")``)
and every read returns a Deferred. It reads its metrica through :class:`QueriedMetrica`, so that
the metrica, which makes queries, and the query do not import each other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from twisted.internet.defer import Deferred

from ..storage.keys import (
    ALL,
    bucket_key,
    combination_field,
    count_field,
    decode,
    encode,
    stored_axis_key,
    value_field,
    years_key,
)
from ..storage.link import gather
from .axis import Axis, HierarchicalAxis
from .timebuckets import Timespan, series

if TYPE_CHECKING:
    from ..storage.link import Link


#: The members of a stored axis's sorted set in the order first seen, as one JSON string:
#: txredisapi reads a reply like "007" as the number 7, and "007" is a value like any other.
#: KEYS: the set. ARGV: the last rank wanted (-1: all).
STORED_MEMBERS = "return cjson.encode(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1])))"


async def stored_members(link: Link, key: str, last: int = -1) -> list[str]:
    """
    The members of the sorted set ``key`` (up to rank ``last``), as the strings stored.
    """
    reply = await link.execute("EVAL", STORED_MEMBERS, 1, key, last)
    # cjson encodes an empty table as an object.
    return [str(member) for member in json.loads(reply)] if reply != "{}" else []


class QueriedMetrica(Protocol):
    """
    What a query reads of its metrica (:class:`twisted_sessions.counters.Metrica` provides it).
    """

    @property
    def name(self) -> str:
        """
        The metrica's name, which its keys are built from.
        """

    @property
    def axes(self) -> Sequence[tuple[str, Axis]]:
        """
        The axes, in order.
        """

    @property
    def multiplier(self) -> int:
        """
        Values are stored as whole numbers of ``1/multiplier``.
        """

    @property
    def averaged(self) -> bool:
        """
        Whether kicks are counted too (so that there are averages).
        """

    @property
    def link(self) -> Link:
        """
        The Redis connection to read from.
        """

    def axis(self, name: str) -> Axis:
        """
        The axis called ``name``; raises TypeError naming it if there is none.
        """


@attrs.frozen
class Query:
    """
    A bucket and a combination of axis values of a metrica; immutable, chainable.
    """

    metrica: QueriedMetrica
    span: Timespan = attrs.field(factory=Timespan)
    filters: tuple[tuple[str, Any], ...] = ()

    def timespan(
        self,
        year: int | None = None,
        month: int | None = None,
        day: int | None = None,
        hour: int | None = None,
    ) -> Query:
        """
        The same query on another bucket: the parts given replace those of the current bucket,
        the others are kept, as Staste merges chained timespans
        (``timespan(year=2006).timespan(month=2)`` is February 2006).

        :raises ValueError: an impossible or incomplete date.
        """
        span = self.span
        merged = [
            given if given is not None else current
            for given, current in zip(
                (year, month, day, hour), (span.year, span.month, span.day, span.hour), strict=True
            )
        ]
        return attrs.evolve(self, span=Timespan(*merged))

    def filter(self, **axis_values: Any) -> Query:
        """
        The same query narrowed to these axis values (added to earlier filters).

        :raises TypeError: an axis the metrica does not have.
        :raises ValueError: a value a fixed axis does not allow.
        """
        metrica = self.metrica
        current = dict(self.filters)
        for name, value in axis_values.items():
            axis = metrica.axis(name)
            if value is not None:
                axis.parts(name, value)  # Validates.
            current[name] = value
        return attrs.evolve(self, filters=tuple(current.items()))

    def _field(self, axis: str | None = None, part: str | None = None) -> str:
        chosen = dict(self.filters)
        parts = []
        for name, axis_object in self.metrica.axes:
            if name == axis:
                parts.append(part or ALL)
                continue
            value = chosen.get(name)
            parts.append(ALL if value is None else axis_object.parts(name, value)[-1])
        return combination_field(parts)

    def _key(self, span: Timespan | None = None) -> str:
        return bucket_key(self.metrica.name, (span or self.span).code)

    async def _read(self, key: str, fields: list[str]) -> list[int]:
        if not fields:
            # A stored axis with no values yet: HMGET with no field is an error in Redis.
            return []
        replies = await self.metrica.link.execute("HMGET", key, *fields)
        return [int(reply) if reply is not None else 0 for reply in replies]

    def _value(self, units: int) -> float:
        multiplier = self.metrica.multiplier
        return units if multiplier == 1 else units / multiplier

    def _average(self, units: int, kicks: int) -> float | None:
        return None if kicks == 0 else units / (kicks * self.metrica.multiplier)

    async def _pair(self, key: str, field: str) -> tuple[int, int]:
        if self.metrica.averaged:
            units, kicks = await self._read(key, [value_field(field), count_field(field)])
            return units, kicks
        [units] = await self._read(key, [value_field(field)])
        return units, units

    def total(self) -> Deferred[float]:
        """
        The sum of values (a plain metrica kicked with the default value: the count).
        """

        async def run() -> float:
            units, _ = await self._pair(self._key(), self._field())
            return self._value(units)

        return Deferred.fromCoroutine(run())

    def count(self) -> Deferred[int]:
        """
        The number of kicks (for a plain metrica, the sum of values).
        """

        async def run() -> int:
            _, kicks = await self._pair(self._key(), self._field())
            return kicks

        return Deferred.fromCoroutine(run())

    def average(self) -> Deferred[float | None]:
        """
        The average value, ``None`` where nothing was counted.
        """

        async def run() -> float | None:
            units, kicks = await self._pair(self._key(), self._field())
            return self._average(units, kicks)

        return Deferred.fromCoroutine(run())

    async def _breakdown(self, axis: str | None) -> list[tuple[Any, int, int]]:
        """
        (label, units, kicks) for each child bucket, or each value of ``axis``.
        """
        if axis is None:
            if self.span.scale == "all":
                years = await self.metrica.link.execute(
                    "ZRANGE", years_key(self.metrica.name), 0, -1
                )
                children = [(int(y), Timespan(int(y))) for y in years]
            else:
                children = list(self.span.children())
            field = self._field()
            pairs = await gather(
                [Deferred.fromCoroutine(self._pair(self._key(span), field)) for _, span in children]
            )
            return [
                (label, units, kicks)
                for (label, _), (units, kicks) in zip(children, pairs, strict=True)
            ]
        axis_object = self.metrica.axis(axis)
        values = await self._axis_values(axis, axis_object)
        labels = [label for label, _ in values]
        fields = [self._field(axis, part) for _, part in values]
        names = [value_field(f) for f in fields]
        if self.metrica.averaged:
            names += [count_field(f) for f in fields]
        replies = await self._read(self._key(), names)
        units = replies[: len(fields)]
        kicks = replies[len(fields) :] if self.metrica.averaged else units
        return list(zip(labels, units, kicks, strict=True))

    async def _axis_values(self, name: str, axis: Axis) -> list[tuple[Any, str]]:
        """
        (label, encoded field part) of every value of an axis: a fixed axis's choices; a
        stored axis's values in the order first seen; for a hierarchical axis, the values one
        level below the query's filter on it (labels are tuples).
        """
        if not axis.stored:
            return [(choice, encode(choice)) for choice in axis.choices]
        members = await stored_members(self.metrica.link, stored_axis_key(self.metrica.name, name))
        if not isinstance(axis, HierarchicalAxis):
            return [(decode(m), m) for m in members]
        prefix = dict(self.filters).get(name) or ()
        head = "/".join(encode(str(p)) for p in prefix)
        level = [
            m
            for m in members
            if m.count("/") == len(prefix) and (not prefix or m.startswith(head + "/"))
        ]
        return [(tuple(decode(p) for p in m.split("/")), m) for m in level]

    def iterate(self, axis: str | None = None) -> Deferred[list[tuple[Any, float]]]:
        """
        Totals for each bucket of the next finer scale (a year: its 12 months; a month: all
        its days; a day: its 24 hours; all time: the years with counts), or for each value of
        ``axis``.
        """

        async def run() -> list[tuple[Any, float]]:
            return [(label, self._value(units)) for label, units, _ in await self._breakdown(axis)]

        return Deferred.fromCoroutine(run())

    def iterate_counts(self, axis: str | None = None) -> Deferred[list[tuple[Any, int]]]:
        """
        As :meth:`iterate`, with the number of kicks.
        """

        async def run() -> list[tuple[Any, int]]:
            return [(label, kicks) for label, _, kicks in await self._breakdown(axis)]

        return Deferred.fromCoroutine(run())

    def iterate_averages(self, axis: str | None = None) -> Deferred[list[tuple[Any, float | None]]]:
        """
        As :meth:`iterate`, with averages (``None`` where nothing was counted).
        """

        async def run() -> list[tuple[Any, float | None]]:
            return [
                (label, self._average(units, kicks))
                for label, units, kicks in await self._breakdown(axis)
            ]

        return Deferred.fromCoroutine(run())

    def timeserie(
        self, since: datetime, until: datetime, scale: str = "day"
    ) -> Deferred[list[tuple[datetime, float]]]:
        """
        Totals per bucket of ``scale`` from the bucket of ``since`` to that of ``until``.

        :raises ValueError: an unknown scale, or ``until`` before ``since``.
        """
        points = self.timeserie_points(since, until, scale)
        return points.addCallback(lambda found: [(start, total) for start, _, total, _ in found])

    def timeserie_points(
        self, since: datetime, until: datetime, scale: str = "day"
    ) -> Deferred[list[tuple[datetime, int, float, float | None]]]:
        """
        As :meth:`timeserie`, each point with its kick count, total and average (``None``
        where nothing was counted): a requests-per-day series is the counts.

        :raises ValueError: an unknown scale, or ``until`` before ``since``.
        """
        spans = series(since, until, scale)
        field = self._field()

        async def run() -> list[tuple[datetime, int, float, float | None]]:
            pairs = await gather(
                [Deferred.fromCoroutine(self._pair(self._key(span), field)) for span in spans]
            )
            return [
                (span.start(), kicks, self._value(units), self._average(units, kicks))
                for span, (units, kicks) in zip(spans, pairs, strict=True)
            ]

        return Deferred.fromCoroutine(run())
