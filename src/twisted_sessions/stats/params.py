"""
What the query parameters of the stats views mean, once :mod:`.routes` has checked them.

``timespan=2010-02-07`` (or ``2010``, ``2010-02``, ``2010-02-07T13``), or
``year=&month=&day=&hour=``; any other parameter filters an axis (``?gender=girl&age=19``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ..counters.axis import HierarchicalAxis
from ..counters.timebuckets import Timespan
from .responses import StatsError

if TYPE_CHECKING:
    from ..counters.metrica import Metrica
    from ..counters.query import Query


def parse_timespan(given: Mapping[str, Any]) -> Timespan:
    """
    The bucket named by checked parameters: ``timespan``, or ``year``, ``month``...
    """
    if "timespan" in given:
        date, _, hour = given["timespan"].partition("T")
        parts = [int(part) for part in date.split("-")]
        return Timespan(*parts, *([int(hour)] if hour else []))
    return Timespan(*(given.get(name) for name in ("year", "month", "day", "hour")))


def metrica_query(metrica: Metrica, given: Mapping[str, Any], filters: Mapping[str, str]) -> Query:
    """
    The query of a metrica for checked parameters and axis filters.

    :raises StatsError: a 400 naming an unknown axis or a value it does not take.
    """
    query = metrica.timespan(*span_parts(parse_timespan(given)))
    values: dict[str, Any] = {}
    try:
        for key, value in filters.items():
            hierarchical = isinstance(metrica.axis(key), HierarchicalAxis)
            values[key] = tuple(value.split("/")) if hierarchical else value
        return query.filter(**values)
    except (TypeError, ValueError) as error:
        raise StatsError(400, str(error)) from None


def span_parts(span: Timespan) -> tuple[int | None, ...]:
    return (span.year, span.month, span.day, span.hour)


def parse_moment(text: str) -> datetime:
    """
    A checked ISO 8601 moment, in UTC (a moment without an offset is taken as UTC). One
    whose offset takes it beyond year 1 or 9999 is clamped there.
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if moment.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)


def next_page(request: Any, since: str) -> str:
    """
    The URL of the same series from ``since`` on: where an answer cut at its most points goes
    on (every other parameter as given).
    """
    args = {
        key.decode(): values[0].decode() for key, values in request.args.items() if key != b"since"
    }
    args["since"] = since
    path = "/" + "/".join(p.decode("utf-8", "replace") for p in request.prepath if p)
    return path + "?" + urlencode(args)
