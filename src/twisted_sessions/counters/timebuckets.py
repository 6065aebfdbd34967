"""
Time buckets: all time, years, months, days, hours (UTC), as in Staste, without its gaps.

A :class:`Timespan` names one bucket (``Timespan(2010, 2)`` is February 2010). Iterating a
span gives the buckets of the next finer scale: a year's twelve months (December included), a
month's days (its last day included), a day's 24 hours (hour 23 included).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import attrs

SCALES = ("all", "year", "month", "day", "hour")


def to_utc(moment: datetime) -> datetime:
    """
    ``moment`` in UTC; a naive datetime is taken to be UTC already.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@attrs.frozen
class Timespan:
    """
    One time bucket: all time, or a year, or a month of a year, or a day, or an hour.

    :raises ValueError: an impossible date, or a finer part without the coarser ones.
    """

    year: int | None = None
    month: int | None = None
    day: int | None = None
    hour: int | None = None

    def __attrs_post_init__(self) -> None:
        parts = [self.year, self.month, self.day, self.hour]
        given = [p is not None for p in parts]
        if given != sorted(given, reverse=True):
            raise ValueError(
                f"timespan {self.describe()} names a finer part without the coarser ones"
            )
        if self.year is not None and not 1 <= self.year <= 9999:
            raise ValueError(f"year {self.year!r} is out of range 1..9999")
        if self.month is not None and not 1 <= self.month <= 12:
            raise ValueError(f"month {self.month!r} is out of range 1..12")
        if self.day is not None:
            assert self.year is not None and self.month is not None
            last = calendar.monthrange(self.year, self.month)[1]
            if not 1 <= self.day <= last:
                raise ValueError(
                    f"day {self.day!r} does not exist in {self.year:04d}-{self.month:02d}"
                )
        if self.hour is not None and not 0 <= self.hour <= 23:
            raise ValueError(f"hour {self.hour!r} is out of range 0..23")

    @classmethod
    def of(cls, moment: datetime, scale: str) -> Timespan:
        """
        The bucket of ``scale`` that contains ``moment``.
        """
        utc = to_utc(moment)
        parts = (utc.year, utc.month, utc.day, utc.hour)[: SCALES.index(scale)]
        return cls(*parts)

    @property
    def scale(self) -> str:
        """
        ``all``, ``year``, ``month``, ``day`` or ``hour``.
        """
        parts = (self.year, self.month, self.day, self.hour)
        return SCALES[sum(p is not None for p in parts)]

    @property
    def code(self) -> str:
        """
        The bucket's part of the Redis key: ``all``, ``y2010``, ``m2010-02``, ``d2010-02-07``
        or ``h2010-02-07T13``.
        """
        if self.year is None:
            return "all"
        if self.month is None:
            return f"y{self.year:04d}"
        if self.day is None:
            return f"m{self.year:04d}-{self.month:02d}"
        if self.hour is None:
            return f"d{self.year:04d}-{self.month:02d}-{self.day:02d}"
        return f"h{self.year:04d}-{self.month:02d}-{self.day:02d}T{self.hour:02d}"

    @property
    def label(self) -> str:
        """
        The bucket as people and clients write it: ``all``, ``2010``, ``2010-02``,
        ``2010-02-07`` or ``2010-02-07T13`` (what the stats API's ``timespan`` takes).
        """
        code = self.code
        return code if code == "all" else code[1:]

    def describe(self) -> str:
        """
        A readable form for messages.
        """
        return (
            ", ".join(
                f"{name}={value}"
                for name, value in zip(
                    ("year", "month", "day", "hour"),
                    (self.year, self.month, self.day, self.hour),
                    strict=True,
                )
                if value is not None
            )
            or "all time"
        )

    def parents(self) -> list[Timespan]:
        """
        This bucket and every coarser one containing it, finest first (an hour gives five).
        """
        parts = [self.year, self.month, self.day, self.hour]
        depth = sum(p is not None for p in parts)
        return [Timespan(*parts[:size]) for size in range(depth, -1, -1)]

    def children(self) -> Iterator[tuple[int, Timespan]]:
        """
        The buckets of the next finer scale, with their number (month, day or hour).

        :raises ValueError: for an hour (nothing finer) or all time (see ``years``).
        """
        if self.year is None:
            raise ValueError("all time has no fixed children: iterate the years with data")
        if self.month is None:
            for month in range(1, 13):
                yield month, Timespan(self.year, month)
        elif self.day is None:
            for day in range(1, calendar.monthrange(self.year, self.month)[1] + 1):
                yield day, Timespan(self.year, self.month, day)
        elif self.hour is None:
            for hour in range(24):
                yield hour, Timespan(self.year, self.month, self.day, hour)
        else:
            raise ValueError("an hour is the finest scale: nothing to iterate")

    def start(self) -> datetime:
        """
        The first moment of the bucket (UTC); all time has none.
        """
        if self.year is None:
            raise ValueError("all time has no start")
        return datetime(self.year, self.month or 1, self.day or 1, self.hour or 0, tzinfo=UTC)

    def end(self) -> datetime:
        """
        The first moment after the bucket (UTC): the start of the next one.
        """
        return _next(self).start()


def series(
    since: datetime, until: datetime, scale: str, limit: int | None = None
) -> list[Timespan]:
    """
    The buckets of ``scale`` from the one containing ``since`` to the one containing
    ``until``, both included; only the first ``limit`` of them if given (a series of
    hours over centuries is not built to be cut).
    """
    if scale not in SCALES[1:]:
        raise ValueError(f"scale must be one of {', '.join(SCALES[1:])}, not {scale!r}")
    first, last = Timespan.of(since, scale), Timespan.of(until, scale)
    if to_utc(until) < to_utc(since):
        raise ValueError(f"until {until.isoformat()} is before since {since.isoformat()}")
    found = [first]
    while found[-1] != last and (limit is None or len(found) < limit):
        found.append(_next(found[-1]))
    return found


def _next(span: Timespan) -> Timespan:
    start = span.start()
    if span.scale == "year":
        return Timespan(span.year + 1)  # type: ignore[operator]
    if span.scale == "month":
        assert span.year is not None and span.month is not None
        return Timespan(span.year + span.month // 12, span.month % 12 + 1)
    step = timedelta(days=1) if span.scale == "day" else timedelta(hours=1)
    return Timespan.of(start + step, span.scale)
