"""
The query parameters of the stats views: which view takes which, and what they mean.

``timespan=2010-02-07`` (or ``2010``, ``2010-02``, ``2010-02-07T13``), or
``year=&month=&day=&hour=``; any other parameter filters an axis (``?gender=girl&age=19``).
Each is given once, and only to the view it is for. Every problem is a :class:`StatsError`
(a 400) naming it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..counters.axis import HierarchicalAxis
from ..counters.timebuckets import Timespan
from .responses import StatsError

if TYPE_CHECKING:
    from ..counters.metrica import Metrica
    from ..counters.query import Query

#: Parameters that are not axis filters.
RESERVED = frozenset({"timespan", "year", "month", "day", "hour", "by", "scale", "since", "until"})
#: The reserved parameters of each view (any other parameter filters an axis); one meant for
#: another view is a 400, not silently ignored: ``since`` on a summary would count all time.
_SPAN = frozenset({"timespan", "year", "month", "day", "hour"})
SUMMARY_TAKES = _SPAN
ITERATE_TAKES = _SPAN | {"by"}
TIMESERIE_TAKES = frozenset({"scale", "since", "until"})
_BELONGS_TO = {
    **dict.fromkeys(_SPAN, "/stats/metricas/{name} and its /iterate"),
    "by": "/stats/metricas/{name}/iterate",
    **dict.fromkeys(TIMESERIE_TAKES, "/stats/metricas/{name}/timeserie"),
}
#: The most points a timeserie may return.
MAX_POINTS = 1000


def query_params(request: Any, takes: frozenset[str]) -> dict[str, str]:
    """
    The query parameters, each given once, of a view that takes the reserved ones in ``takes``.
    """
    params = {}
    for raw_key, raw_values in request.args.items():
        try:
            key = raw_key.decode("utf-8")
            values = [raw.decode("utf-8") for raw in raw_values]
        except UnicodeDecodeError:
            raise StatsError(400, "query parameters must be UTF-8") from None
        if len(values) != 1:
            raise StatsError(400, f"parameter {key!r} is given {len(values)} times: give it once")
        if key in RESERVED and key not in takes:
            raise StatsError(
                400, f"parameter {key!r} does not apply here: it is for {_BELONGS_TO[key]}"
            )
        params[key] = values[0]
    return params


def no_params(request: Any, view: str) -> None:
    """
    Check that a view that takes no parameters was given none.

    :raises StatsError: a 400 naming the parameters given.
    """
    given = query_params(request, frozenset())
    if given:
        names = ", ".join(sorted(given))
        raise StatsError(400, f"{view} takes no parameters; given: {names}")


def parse_timespan(params: dict[str, str]) -> Timespan:
    parts_given = sorted({"year", "month", "day", "hour"} & params.keys())
    if "timespan" in params and parts_given:
        raise StatsError(
            400,
            f"give either timespan or {', '.join(parts_given)}, not both: they say the same "
            "thing two ways",
        )
    try:
        if "timespan" in params:
            text = params["timespan"]
            date, _, hour = text.partition("T")
            parts = [int(p) for p in date.split("-")] if date else []
            if hour:
                parts.append(int(hour))
            if len(parts) > 4 or (date and len(date.split("-")[0]) != 4):
                raise ValueError
            return Timespan(*parts)
        given = [params.get(name) for name in ("year", "month", "day", "hour")]
        return Timespan(*(None if p is None else int(p) for p in given))
    except ValueError as error:
        detail = str(error)
        if not detail or "invalid literal" in detail:
            detail = "use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH, or whole numbers"
        raise StatsError(400, f"bad timespan: {detail}") from None


def metrica_query(metrica: Metrica, params: dict[str, str]) -> Query:
    query = metrica.timespan(*span_parts(parse_timespan(params)))
    filters: dict[str, Any] = {}
    try:
        for key, value in params.items():
            if key not in RESERVED:
                hierarchical = isinstance(metrica.axis(key), HierarchicalAxis)
                filters[key] = tuple(value.split("/")) if hierarchical else value
        return query.filter(**filters)
    except (TypeError, ValueError) as error:
        raise StatsError(400, str(error)) from None


def span_parts(span: Timespan) -> tuple[int | None, ...]:
    return (span.year, span.month, span.day, span.hour)


def parse_moment(params: dict[str, str], name: str) -> datetime:
    text = params.get(name)
    if text is None:
        raise StatsError(400, f"parameter {name!r} is required (an ISO 8601 date)")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise StatsError(400, f"parameter {name!r} is not an ISO 8601 date: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def count_points(since: datetime, until: datetime, scale: str) -> float:
    seconds = (until - since).total_seconds()
    per_point = {"hour": 3600, "day": 86400, "month": 28 * 86400, "year": 365 * 86400}[scale]
    return seconds / per_point + 2
