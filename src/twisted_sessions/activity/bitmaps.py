"""
Reading activity: bitmapist's events and operations, evaluated here, not in Redis.

``Events(reader, "active", Period.of(now, "week"))`` is the users active this week;
``a & b``, ``a | b``, ``a ^ b`` and ``~a`` combine them as bitmapist's ``BitOpAnd``... do,
and ``await x.count()``, ``await x.contains(uid)``, ``await x.ids()`` read them (bitmapist's
``len``, ``in`` and iteration, asynchronous here: they read Redis).

How they are evaluated, and why: each bitmap an expression names is fetched with one ``GET``
(through a binary connection) and the operation is done on Python integers. bitmapist runs
``BITOP`` in Redis instead, which leaves result keys behind (``trackist_bitop_*``, until told
to delete them) and, on Redis Cluster, fails unless every key of the operation is in one slot,
which bitmapist's key names (no hash tag) do not give. Fetching costs the transfer (125 KB per
bitmap of a million users; a 12x12 cohort table reads 36 of them), never blocks Redis for
longer than a ``GET``, leaves nothing behind and works the same on a single Redis or a
Cluster. ``NOT`` is relative to the known users (every id ever given), not bitmapist's "every
bit up to the last byte": ``~active`` is the known users who were not active.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from ..storage.keys import USERS_KNOWN, activity_hll_key, activity_key, check_event
from ..storage.link import gather
from .periods import Period

if TYPE_CHECKING:
    from ..storage.link import Link

#: Redis numbers the bits of a byte from the most significant; Python's integers from the
#: least: each byte's bits reversed, then read little-endian, make offset k bit k.
_REVERSED = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def from_redis(data: bytes | None) -> int:
    """
    A bitmap as Redis stores it (a string, offset 0 the first byte's high bit) as an int
    whose bit k is offset k.
    """
    if not data:
        return 0
    return int.from_bytes(data.translate(_REVERSED), "little")


def set_bits(value: int) -> Iterator[int]:
    """
    The offsets set in ``value``, ascending.
    """
    data = value.to_bytes((value.bit_length() + 7) // 8, "little")
    for index, byte in enumerate(data):
        if byte:
            base = index * 8
            for bit in range(8):
                if byte >> bit & 1:
                    yield base + bit


class BitmapReader:
    """
    Fetches bitmaps for expressions (one ``GET`` per key, in parallel, remembered for the
    reader's life: make one per answer, such as a cohort table, so that each key is read
    once).
    """

    def __init__(self, link: Link) -> None:
        self._link = link
        self._values: dict[str, int] = {}
        self._waiting: dict[str, list[Deferred[int]]] = {}

    def bitmap(self, key: str) -> Deferred[int]:
        return Deferred.fromCoroutine(self._bitmap(key))

    async def _bitmap(self, key: str) -> int:
        if key in self._values:
            return self._values[key]
        waiting = self._waiting.get(key)
        if waiting is not None:
            # Being fetched for another part of the expression: wait for that GET.
            mine: Deferred[int] = Deferred()
            waiting.append(mine)
            return await mine
        self._waiting[key] = []
        try:
            value = from_redis(await self._link.execute("GET", key))
        except Exception as error:
            for waiter in self._waiting.pop(key):
                waiter.errback(error)
            raise
        self._values[key] = value
        for waiter in self._waiting.pop(key):
            waiter.callback(value)
        return value

    async def hll_count(self, keys: list[str]) -> int:
        return int(await self._link.execute("PFCOUNT", *keys))


class Expression:
    """
    A set of users: events of a period, or an operation on sets.
    """

    reader: BitmapReader

    def value(self) -> Deferred[int]:
        raise NotImplementedError

    def __and__(self, other: Expression) -> Expression:
        return Operation("and", (self, other))

    def __or__(self, other: Expression) -> Expression:
        return Operation("or", (self, other))

    def __xor__(self, other: Expression) -> Expression:
        return Operation("xor", (self, other))

    def __invert__(self) -> Expression:
        return Operation("not", (self,))

    def count(self) -> Deferred[int]:
        """
        How many users (bitmapist's ``len``).
        """
        return self.value().addCallback(int.bit_count)

    def contains(self, uid: int) -> Deferred[bool]:
        """
        Whether user id ``uid`` is in the set (bitmapist's ``in``).
        """
        return self.value().addCallback(lambda value: bool(value >> uid & 1))

    def ids(self) -> Deferred[list[int]]:
        """
        The user ids, ascending (bitmapist's iteration).
        """
        return self.value().addCallback(lambda value: list(set_bits(value)))

    def has_events_marked(self) -> Deferred[bool]:
        return self.value().addCallback(bool)


class Events(Expression):
    """
    The users marked for ``event`` in ``period`` (a year: the OR of its months, as
    bitmapist's ``YearEvents``).
    """

    def __init__(self, reader: BitmapReader, event: str, period: Period) -> None:
        self.reader = reader
        self.event = check_event(event)
        self.period = period

    def __repr__(self) -> str:
        return f"Events({self.event!r}, {self.period.scale} {self.period.label})"

    @property
    def keys(self) -> list[str]:
        return [activity_key(self.event, month.suffix) for month in self.period.months()]

    def value(self) -> Deferred[int]:
        async def combine() -> int:
            values = await gather([self.reader.bitmap(key) for key in self.keys])
            result = 0
            for value in values:
                result |= value
            return result

        return Deferred.fromCoroutine(combine())

    def estimate(self) -> Deferred[int]:
        """
        The HyperLogLog estimate of the same count, standard error 0.81%: one ``PFCOUNT`` of
        the period's day HyperLogLogs (a week's 7, a month's up to 31: Redis counts their
        union; one hash tag per event, so one Cluster slot), of the hour's or of "ever"'s.
        """
        keys = [activity_hll_key(self.event, day.suffix) for day in self.period.days()]
        return Deferred.fromCoroutine(self.reader.hll_count(keys))

    def delta(self, value: int) -> Events:
        return Events(self.reader, self.event, self.period.delta(value))

    def next(self) -> Events:
        return self.delta(1)

    def prev(self) -> Events:
        return self.delta(-1)

    def period_start(self) -> datetime:
        return self.period.period_start()

    def period_end(self) -> datetime:
        return self.period.period_end()


class Known(Expression):
    """
    Every user that has an id: the population ``NOT`` is relative to.
    """

    def __init__(self, reader: BitmapReader) -> None:
        self.reader = reader

    def value(self) -> Deferred[int]:
        return self.reader.bitmap(USERS_KNOWN)


_COMBINE: dict[str, Callable[[int, int], int]] = {
    "and": int.__and__,
    "or": int.__or__,
    "xor": int.__xor__,
}


class Operation(Expression):
    """
    ``and``, ``or``, ``xor`` of two sets, or ``not`` of one (relative to the known users).
    """

    def __init__(self, operator: str, operands: tuple[Expression, ...]) -> None:
        self.operator = operator
        self.operands = operands
        self.reader = operands[0].reader

    def __repr__(self) -> str:
        return f"Operation({self.operator!r}, {self.operands!r})"

    def value(self) -> Deferred[int]:
        async def evaluate() -> int:
            if self.operator == "not":
                known, value = await gather([Known(self.reader).value(), self.operands[0].value()])
                return int(known) & ~int(value)
            left, right = await gather([operand.value() for operand in self.operands])
            return _COMBINE[self.operator](left, right)

        return Deferred.fromCoroutine(evaluate())
