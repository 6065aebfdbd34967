"""
The periods activity is marked in, named as bitmapist names them: ``2010-2`` (a month),
``W2010-5`` (an ISO week), ``2010-2-7`` (a day), ``2010-2-7-13`` (an hour), ``u`` (ever);
no zero padding, UTC, ISO weeks across year ends (the week of 2010-01-03 is ``W2009-53``).

A year has no bitmap of its own (bitmapist's ``YearEvents`` is the OR of its 12 months).
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import attrs

Scale = Literal["hour", "day", "week", "month", "year", "unique"]
#: The scales, finest first; ``unique`` is "ever".
SCALES: tuple[Scale, ...] = ("hour", "day", "week", "month", "year", "unique")
#: bitmapist's ``time_group`` names (cohorts, Flask-Bitmapist) and the scales they mean.
TIME_GROUPS: dict[str, Scale] = {"days": "day", "weeks": "week", "months": "month", "years": "year"}
_MICROSECOND = timedelta(microseconds=1)


@attrs.frozen(order=True)
class Period:
    """
    One period of a scale, by its first moment (UTC).

    Make one with :meth:`of`; ``Period.of(moment, "week")`` is the ISO week containing it.
    """

    scale: Scale
    start: datetime

    @classmethod
    def of(cls, moment: datetime | date, scale: Scale) -> Period:
        """
        The period of ``scale`` containing ``moment`` (a naive datetime is UTC; a date is its
        midnight, UTC).

        :raises ValueError: an unknown scale.
        """
        if not isinstance(moment, datetime):
            moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        elif moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        else:
            moment = moment.astimezone(UTC)
        if scale == "hour":
            start = moment.replace(minute=0, second=0, microsecond=0)
        elif scale == "day":
            start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        elif scale == "week":
            day = moment.date() - timedelta(days=moment.weekday())
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        elif scale == "month":
            start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
        elif scale == "year":
            start = datetime(moment.year, 1, 1, tzinfo=UTC)
        elif scale == "unique":
            start = datetime(1, 1, 1, tzinfo=UTC)
        else:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, not {scale!r}")
        return cls(scale, start)

    @property
    def suffix(self) -> str:
        """
        bitmapist's name of the period, the end of its keys: ``2010-2-7``, ``W2009-53``...
        """
        start = self.start
        if self.scale == "hour":
            return f"{start.year}-{start.month}-{start.day}-{start.hour}"
        if self.scale == "day":
            return f"{start.year}-{start.month}-{start.day}"
        if self.scale == "week":
            iso_year, iso_week, _ = start.isocalendar()
            return f"W{iso_year}-{iso_week}"
        if self.scale == "month":
            return f"{start.year}-{start.month}"
        if self.scale == "year":
            return f"{start.year}"
        return "u"

    @property
    def label(self) -> str:
        """
        How the API writes the period: ``2010-02-07``, ``2010-W05``, ``2010-02``, ``2010``.
        """
        start = self.start
        if self.scale == "hour":
            return start.strftime("%Y-%m-%dT%H")
        if self.scale == "day":
            return start.strftime("%Y-%m-%d")
        if self.scale == "week":
            iso_year, iso_week, _ = start.isocalendar()
            return f"{iso_year:04d}-W{iso_week:02d}"
        if self.scale == "month":
            return start.strftime("%Y-%m")
        if self.scale == "year":
            return f"{start.year:04d}"
        return "ever"

    def months(self) -> list[Period]:
        """
        A year's 12 months (its bitmaps); any other period is its own only part.
        """
        if self.scale != "year":
            return [self]
        return [Period("month", self.start.replace(month=month)) for month in range(1, 13)]

    def days(self) -> list[Period]:
        """
        The days of a week, month or year (their HyperLogLogs make its estimate); an hour, a
        day or "ever" is its own only part.
        """
        if self.scale not in ("week", "month", "year"):
            return [self]
        day, end = Period("day", self.start), self.next().start
        found = []
        while day.start < end:
            found.append(day)
            day = day.next()
        return found

    def delta(self, value: int) -> Period:
        """
        The period ``value`` periods later (earlier if negative), as bitmapist's ``delta``.
        """
        start = self.start
        if self.scale == "hour":
            return Period("hour", start + timedelta(hours=value))
        if self.scale == "day":
            return Period("day", start + timedelta(days=value))
        if self.scale == "week":
            return Period("week", start + timedelta(weeks=value))
        if self.scale == "month":
            months = start.year * 12 + start.month - 1 + value
            return Period("month", datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC))
        if self.scale == "year":
            return Period("year", start.replace(year=start.year + value))
        return self

    def next(self) -> Period:
        return self.delta(1)

    def prev(self) -> Period:
        return self.delta(-1)

    def period_start(self) -> datetime:
        return self.start

    def period_end(self) -> datetime:
        """
        The last moment of the period (as bitmapist's ``period_end``: 23:59:59.999999).
        """
        if self.scale == "unique":
            return datetime.max.replace(tzinfo=UTC)
        if self.scale == "month":
            last = calendar.monthrange(self.start.year, self.start.month)[1]
            return self.start.replace(day=last, hour=23, minute=59, second=59, microsecond=999999)
        if self.scale == "year" and self.start.year == 9999:
            return datetime.max.replace(tzinfo=UTC)
        return self.next().start - _MICROSECOND
