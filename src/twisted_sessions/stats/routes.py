"""
The route table of the stats tree: every view, the query parameters it takes with their
constraints, the rules that tie parameters together, and the schema of its answer.

The resources check every request against this table (:meth:`View.parse`) and the OpenAPI
document is generated from it (:mod:`.openapi`), so what is documented is what is served:
a parameter the document allows is accepted, one it forbids is a 400 naming it. Each
constraint is written once, as a JSON schema (OpenAPI 3.0's subset), and the server checks
the same schema: the patterns are the same regular expressions, the ranges the same numbers.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..storage.keys import EVENT_NAME
from .responses import StatsError

if TYPE_CHECKING:
    from ..counters.metrica import Metrica

# The calendar as regular expressions, so that a pattern alone says which dates exist
# (leap years included): a client, or schemathesis, can tell a valid timespan from the
# document without asking the server.
_YEAR = "(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_MONTH = "(0[1-9]|1[0-2])"
_HOUR = "([01][0-9]|2[0-3])"
_SIXTY = "[0-5][0-9]"
_LEAP = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_DATE = (
    f"({_YEAR}-{_MONTH}-(0[1-9]|1[0-9]|2[0-8])"
    f"|{_YEAR}-(0[13-9]|1[0-2])-(29|30)"
    f"|{_YEAR}-(0[13578]|1[02])-31"
    f"|{_LEAP}-02-29)"
)
#: A bucket as the API writes it: ``2010``, ``2010-02``, ``2010-02-07`` or ``2010-02-07T13``.
TIMESPAN_PATTERN = f"^({_YEAR}|{_YEAR}-{_MONTH}|{_DATE}(T{_HOUR})?)$"
#: A moment (ISO 8601): a date, or a date and time with an optional offset (UTC without).
MOMENT_PATTERN = (
    f"^{_DATE}(T{_HOUR}(:{_SIXTY}(:{_SIXTY}(\\.[0-9]{{1,6}})?)?)?(Z|[+-]{_HOUR}:{_SIXTY})?)?$"
)
_WHOLE = re.compile("-?[0-9]+")
#: The most points one timeserie answer holds; a longer series continues at ``next``.
MAX_POINTS = 1000
SCALES = ("year", "month", "day", "hour")


@attrs.frozen
class Param:
    """
    A query parameter: its name, JSON schema and meaning.

    :param explain: for a value that does not match the schema, a more precise reason
        than the schema's (``day 30 does not exist in 2010-02``), or ``None``.
    """

    name: str
    schema: Mapping[str, Any]
    description: str
    required: bool = False
    explain: Callable[[str], str | None] | None = None

    def parse(self, text: str) -> Any:
        """
        The value of ``text`` (an ``int`` for an integer parameter).

        :raises StatsError: a 400 naming the parameter, the value and what it may be.
        """
        schema = self.schema
        if schema.get("type") == "integer":
            low, high = schema["minimum"], schema["maximum"]
            if _WHOLE.fullmatch(text) and low <= int(text) <= high:
                return int(text)
            raise StatsError(
                400,
                f"parameter {self.name!r} must be a whole number from {low} to {high}, "
                f"not {text[:40]!r}",
            )
        if "enum" in schema and text not in schema["enum"]:
            raise StatsError(
                400,
                f"parameter {self.name!r} must be one of {', '.join(schema['enum'])}, "
                f"not {text[:40]!r}",
            )
        if "pattern" in schema and not re.fullmatch(schema["pattern"], text):
            reason = (self.explain and self.explain(text)) or self.description
            raise StatsError(400, f"bad {self.name} {text[:40]!r}: {reason}")
        return text


@attrs.frozen
class Rule:
    """
    A constraint between parameters: ``broken`` names the problem (or is ``None``), and
    ``schema`` says the same to a client (a JSON schema the query object satisfies).
    """

    broken: Callable[[Mapping[str, Any]], str | None]
    schema: Mapping[str, Any]


@attrs.frozen
class View:
    """
    One view of the stats tree.

    :param path: below where the tree is mounted (``metricas/{name}/iterate``).
    :param filters: whether further parameters filter the metrica's axes.
    :param response: the JSON schema of its 200 answer.
    """

    path: str
    summary: str
    response: Mapping[str, Any]
    params: tuple[Param, ...] = ()
    rules: tuple[Rule, ...] = ()
    filters: bool = False

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def parse(self, request: Any) -> tuple[dict[str, Any], dict[str, str]]:
        """
        The view's own parameters (parsed) and the axis filters (as given) of a request.

        :raises StatsError: a 400 naming the problem: a parameter given twice or not UTF-8,
            one this view does not take, a bad value, a missing one, or a broken rule.
        """
        own: dict[str, Any] = {}
        filters: dict[str, str] = {}
        unknown = []
        for raw_key, raw_values in request.args.items():
            try:
                key = raw_key.decode("utf-8")
                values = [raw.decode("utf-8") for raw in raw_values]
            except UnicodeDecodeError:
                raise StatsError(400, "query parameters must be UTF-8") from None
            if len(values) != 1:
                raise StatsError(
                    400, f"parameter {key!r} is given {len(values)} times: give it once"
                )
            param = self.param(key)
            if param is not None:
                own[key] = param.parse(values[0])
            elif key in _BELONGS_TO:
                raise StatsError(
                    400, f"parameter {key!r} does not apply here: it is for {_BELONGS_TO[key]}"
                )
            elif self.filters:
                filters[key] = values[0]
            else:
                unknown.append(key)
        if unknown:
            taken = ", ".join(p.name for p in self.params)
            raise StatsError(
                400,
                f"{('/stats/' + self.path).rstrip('/')} takes "
                f"{'only ' + taken if taken else 'no parameters'}; given: "
                f"{', '.join(sorted(unknown))}",
            )
        for param in self.params:
            if param.required and param.name not in own:
                raise StatsError(400, f"parameter {param.name!r} is required ({param.description})")
        for rule in self.rules:
            problem = rule.broken(own)
            if problem is not None:
                raise StatsError(400, problem)
        return own, filters

    def query_schema(self, metrica: Metrica | None = None) -> dict[str, Any]:
        """
        The JSON schema of the whole query string as one object: the view's parameters,
        the metrica's axes as filters, and the rules.
        """
        properties = {p.name: {**p.schema, "description": p.description} for p in self.params}
        if self.filters and metrica is not None:
            for name, axis in metrica.axes:
                properties[name] = _axis_schema(name, axis)
        if metrica is not None and "by" in properties:
            properties["by"] = {**properties["by"], "enum": [name for name, _ in metrica.axes]}
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        required = [p.name for p in self.params if p.required]
        if required:
            schema["required"] = required
        if self.rules:
            schema["allOf"] = [dict(rule.schema) for rule in self.rules]
        return schema


def _axis_schema(name: str, axis: Any) -> dict[str, Any]:
    kind = type(axis).__name__
    if kind == "HierarchicalAxis":
        return {
            "type": "string",
            "description": f"filter on axis {name}: a path of values joined by '/' (fr/paris)",
        }
    if axis.stored:
        return {"type": "string", "description": f"filter on axis {name}: any value"}
    return {"type": "string", "enum": list(axis.choices), "description": f"filter on {name}"}


# -- the parameters -------------------------------------------------------------------------


def _no_such_day(year: int, month: int, day: int) -> str | None:
    """
    The problem with a day the month does not have (``None`` if it has it).
    """
    if day <= calendar.monthrange(year, month)[1]:
        return None
    return f"day {day} does not exist in {year:04d}-{month:02d}"


def _explain_timespan(text: str) -> str | None:
    """
    Why a timespan that looks like one is not: the date it names does not exist.
    """
    shape = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(T[0-9]{2})?", text)
    if shape:
        year, month, day = (int(part) for part in shape.groups()[:3])
        if year >= 1 and 1 <= month <= 12:
            return _no_such_day(year, month, day)
    return None


TIMESPAN = Param(
    "timespan",
    {"type": "string", "pattern": TIMESPAN_PATTERN},
    "a bucket: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH (UTC); all time without it",
    explain=_explain_timespan,
)
_PARTS = (
    Param("year", {"type": "integer", "minimum": 1, "maximum": 9999}, "the year of the bucket"),
    Param("month", {"type": "integer", "minimum": 1, "maximum": 12}, "its month (with year)"),
    Param("day", {"type": "integer", "minimum": 1, "maximum": 31}, "its day (with month)"),
    Param("hour", {"type": "integer", "minimum": 0, "maximum": 23}, "its hour, UTC (with day)"),
)
_PART_NAMES = tuple(p.name for p in _PARTS)


def _both_ways(given: Mapping[str, Any]) -> str | None:
    parts = [name for name in _PART_NAMES if name in given]
    if "timespan" in given and parts:
        return (
            f"give either timespan or {', '.join(parts)}, not both: they say the same thing "
            "two ways"
        )
    return None


def _coarser_missing(given: Mapping[str, Any]) -> str | None:
    for finer, coarser in zip(_PART_NAMES[1:], _PART_NAMES[:-1], strict=True):
        if finer in given and coarser not in given:
            return f"{finer} is a finer part without the coarser ones: give {coarser} too"
    return None


def _day_missing(given: Mapping[str, Any]) -> str | None:
    year, month, day = given.get("year"), given.get("month"), given.get("day")
    if year is None or month is None or day is None:
        return None
    return _no_such_day(year, month, day)


def _has(*names: str) -> dict[str, Any]:
    return {"required": list(names)}


_NOT_BOTH = Rule(
    _both_ways,
    {"not": {"anyOf": [_has("timespan", name) for name in _PART_NAMES]}},
)
_COARSER_FIRST = Rule(
    _coarser_missing,
    {
        "allOf": [
            {"anyOf": [{"not": _has(finer)}, _has(coarser)]}
            for finer, coarser in zip(_PART_NAMES[1:], _PART_NAMES[:-1], strict=True)
        ]
    },
)
_LEAP_YEAR = {"anyOf": [{"multipleOf": 400}, {"multipleOf": 4, "not": {"multipleOf": 100}}]}
_DAY_EXISTS = Rule(
    _day_missing,
    {
        "anyOf": [
            {"not": _has("day")},
            {"properties": {"day": {"maximum": 28}}},
            {"properties": {"month": {"enum": [1, 3, 5, 7, 8, 10, 12]}}},
            {"properties": {"month": {"enum": [4, 6, 9, 11]}, "day": {"maximum": 30}}},
            {
                "properties": {"month": {"enum": [2]}, "day": {"maximum": 29}, "year": _LEAP_YEAR},
                "required": ["year"],
            },
        ]
    },
)


def _hour_iterated(given: Mapping[str, Any]) -> str | None:
    hourly = "hour" in given or "T" in given.get("timespan", "")
    if hourly and "by" not in given:
        return "an hour has no finer unit to iterate: give a larger timespan, or by"
    return None


_FINER_UNIT = Rule(
    _hour_iterated,
    {
        "anyOf": [
            _has("by"),
            {
                "not": {
                    "anyOf": [
                        _has("hour"),
                        {**_has("timespan"), "properties": {"timespan": {"pattern": "T"}}},
                    ]
                }
            },
        ]
    },
)
_SPAN_PARAMS = (TIMESPAN, *_PARTS)
_SPAN_RULES = (_NOT_BOTH, _COARSER_FIRST, _DAY_EXISTS)
BY = Param("by", {"type": "string"}, "an axis: one item per value of it (else per finer unit)")
SCALE = Param(
    "scale", {"type": "string", "enum": list(SCALES)}, "the bucket of each point (day if not given)"
)
SINCE = Param(
    "since",
    {"type": "string", "pattern": MOMENT_PATTERN},
    "the first point's moment (ISO 8601: a date, or a date and time; UTC without an offset)",
    required=True,
)
UNTIL = Param(
    "until",
    {"type": "string", "pattern": MOMENT_PATTERN},
    "the last point's moment (ISO 8601); no points when it is before since",
    required=True,
)

# -- the answers ----------------------------------------------------------------------------

_COUNT = {"type": "integer"}
_NUMBER = {"type": "number"}
_NULLABLE_NUMBER = {"type": "number", "nullable": True}
_NULLABLE_COUNT = {"type": "integer", "nullable": True}
_STRING = {"type": "string"}
_TIMESPAN_LABEL = {"type": "string", "pattern": f"^all$|{TIMESPAN_PATTERN}"}


def _object(required: bool = True, **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(properties)
    return schema


def _list(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


_KEY = {
    "description": "a time unit's number (month, day, hour, year), an axis value, or a "
    "hierarchical value's path",
    "anyOf": [{"type": "integer"}, {"type": "string"}, _list(_STRING)],
}
_STATS = _object(
    metrica=_STRING,
    timespan=_TIMESPAN_LABEL,
    filters={
        "type": "object",
        "additionalProperties": {"anyOf": [_STRING, _list(_STRING)]},
    },
    count=_COUNT,
    total=_NUMBER,
    average=_NULLABLE_NUMBER,
)
_ITERATION = _object(
    metrica=_STRING,
    timespan=_TIMESPAN_LABEL,
    by=_STRING,
    items=_list(_object(key=_KEY, count=_COUNT, total=_NUMBER, average=_NULLABLE_NUMBER)),
)
_SERIES = _object(
    metrica=_STRING,
    scale={"type": "string", "enum": list(SCALES)},
    points=_list(
        _object(
            start={"type": "string", "format": "date-time"},
            count=_COUNT,
            total=_NUMBER,
            average=_NULLABLE_NUMBER,
        )
    ),
    next={
        "type": "string",
        "nullable": True,
        "description": f"where the series goes on, when it has more than {MAX_POINTS} points",
    },
)
_INDEX = _object(
    metricas=_list(
        _object(
            name=_STRING,
            averaged={"type": "boolean"},
            axes=_list(_object(name=_STRING, kind=_STRING, choices=_list(_STRING))),
            links=_object(self=_STRING, iterate=_STRING, timeserie=_STRING),
        )
    ),
    gauges=_object(
        web_sessions=_NULLABLE_COUNT,
        clustered_sessions=_NULLABLE_COUNT,
        clustered_sessions_evicted=_NULLABLE_COUNT,
        writer_backlog=_COUNT,
        dropped_kicks=_COUNT,
        activity_backlog=_NULLABLE_COUNT,
        dropped_marks=_NULLABLE_COUNT,
        redis_reachable={"type": "boolean", "nullable": True},
    ),
    streams={
        **_object(
            connected_clients={"type": "object", "additionalProperties": _COUNT},
            client_connections_total=_COUNT,
            slow_client_disconnects=_COUNT,
            stream_events_written=_COUNT,
            stream_events_read=_COUNT,
            stream_backlog=_COUNT,
            dropped_stream_events=_COUNT,
        ),
        "nullable": True,
    },
    server={
        **_object(
            id={"type": "string", "description": "this server's --server-id"},
            alive={
                "type": "array",
                "items": _STRING,
                "nullable": True,
                "description": "the ids of the site's servers alive (heartbeats in Redis); "
                "null while Redis cannot be asked",
            },
            alive_count=_NULLABLE_COUNT,
        ),
        "nullable": True,
        "description": "which server answered, among the site's servers",
    },
    feeds={
        "type": "object",
        "description": "each consumed feed (--ingest) by name",
        "additionalProperties": _object(
            url=_STRING,
            state=_STRING,
            connected={"type": "boolean"},
            paused={"type": "boolean", "description": "reading waits for Redis"},
            replaying={"type": "boolean"},
            events_received=_COUNT,
            events_kept=_COUNT,
            events_filtered=_COUNT,
            events_bad=_COUNT,
            error_events=_COUNT,
            events_left_out=_COUNT,
            events_late=_COUNT,
            reconnects=_COUNT,
            last_event_time={"type": "string", "format": "date-time", "nullable": True},
            lag_seconds=_NULLABLE_NUMBER,
            watermark={"type": "string", "format": "date-time", "nullable": True},
            open_sessions=_COUNT,
            sessions_finished=_COUNT,
            sessions_evicted=_COUNT,
        ),
    },
)
_FINISHED = _object(count=_COUNT, average_length=_NULLABLE_NUMBER)
_SESSIONS = _object(
    active_web_sessions=_NULLABLE_COUNT,
    active_clustered_sessions=_NULLABLE_COUNT,
    cutoff=_NULLABLE_NUMBER,
    finished=_object(required=False, today=_FINISHED, this_month=_FINISHED, all_time=_FINISHED),
    feeds={
        "type": "object",
        "description": "each consumed feed's sessions (by event time), by feed name",
        "additionalProperties": _object(
            active_sessions=_COUNT,
            cutoff=_NUMBER,
            lateness=_NUMBER,
            watermark={"type": "string", "format": "date-time", "nullable": True},
            finished=_object(today=_FINISHED, this_month=_FINISHED, all_time=_FINISHED),
        ),
    },
)
_METRICAS = _object(
    metricas=_list(_object(name=_STRING, averaged={"type": "boolean"}, self=_STRING))
)

# -- activity -------------------------------------------------------------------------------

#: An activity event's name (as :func:`twisted_sessions.storage.keys.check_event` takes it).
EVENT_PATTERN = f"^{EVENT_NAME.pattern}$"
ACTIVITY_SCALES = ("hour", "day", "week", "month", "year", "unique")
_EVENT = {"type": "string", "pattern": EVENT_PATTERN}
ACTIVITY_SCALE = Param(
    "scale",
    {"type": "string", "enum": list(ACTIVITY_SCALES)},
    "the period of each point (day if not given; unique: one point, ever)",
)
_COMBINE = tuple(
    Param(name, _EVENT, description)
    for name, description in (
        ("and", "only the users who also did this event in the same period"),
        ("or", "also the users who did this event in the same period"),
        ("not", "without the users who did this event in the same period"),
    )
)
_BOOLEAN = {"type": "string", "enum": ["true", "false"]}
COHORT_PARAMS = (
    Param("primary", _EVENT, "the event that makes a user part of a row's cohort", True),
    Param("secondary", _EVENT, "the event counted in the later periods", True),
    Param("primary_and", _EVENT, "an event the cohort's users must have done too"),
    Param("secondary_and", _EVENT, "an event the returning users must have done too"),
    Param(
        "time_group",
        {"type": "string", "enum": ["days", "weeks", "months", "years"]},
        "the period of rows and columns (days if not given)",
    ),
    Param("rows", {"type": "integer", "minimum": 1, "maximum": 52}, "rows, the last now (10)"),
    Param("cols", {"type": "integer", "minimum": 1, "maximum": 52}, "columns (10)"),
    Param("percent", _BOOLEAN, "cells as percents of their cohort (false)"),
    Param(
        "replacement",
        _BOOLEAN,
        "count a user in every later period they return in, not only the first (false)",
    ),
)
_POINT = _object(
    period=_STRING,
    start={"type": "string", "format": "date-time"},
    users=_COUNT,
    estimate=_NULLABLE_COUNT,
)
_ACTIVITY = _object(
    event=_STRING,
    scale={"type": "string", "enum": list(ACTIVITY_SCALES)},
    points=_list(_POINT),
    next={"type": "string", "nullable": True},
)
_ACTIVITY_LIST = _object(events=_list(_STRING), scales=_list(_STRING))
_CELL = {"type": "number", "nullable": True}
_COHORT = _object(
    primary=_STRING,
    secondary=_STRING,
    time_group=_STRING,
    percent={"type": "boolean"},
    periods=_list(_STRING),
    totals=_list(_COUNT),
    rows=_list(_list(_CELL)),
    row_totals=_list(_COUNT),
    column_totals=_list(_COUNT),
    column_averages=_list(_NULLABLE_NUMBER),
)

# -- the table ------------------------------------------------------------------------------

INDEX = View("", "Metricas and live gauges", _INDEX)
METRICAS = View("metricas", "The metricas", _METRICAS)
SUMMARY = View(
    "metricas/{name}",
    "Count, total and average of one bucket and filter",
    _STATS,
    params=_SPAN_PARAMS,
    rules=_SPAN_RULES,
    filters=True,
)
ITERATE = View(
    "metricas/{name}/iterate",
    "Per value of an axis (by), or per finer time unit",
    _ITERATION,
    params=(*_SPAN_PARAMS, BY),
    rules=(*_SPAN_RULES, _FINER_UNIT),
    filters=True,
)
TIMESERIE = View(
    "metricas/{name}/timeserie",
    f"Count, total and average per bucket of a scale, from since to until (at most "
    f"{MAX_POINTS} points an answer; next says where the series goes on)",
    _SERIES,
    params=(SCALE, SINCE, UNTIL),
    filters=True,
)
SESSIONS = View("sessions", "Clustered sessions: open now, finished, length", _SESSIONS)
ACTIVITY_LIST = View("activity", "The activity events marked so far", _ACTIVITY_LIST)
ACTIVITY = View(
    "activity/{event}",
    f"Distinct users of an event per period, from since to until (at most {MAX_POINTS} "
    "points an answer, fewer for years and combined events: at most 4,000 bitmaps read; next "
    "says where the series goes on), combined with other events",
    _ACTIVITY,
    params=(ACTIVITY_SCALE, SINCE, UNTIL, *_COMBINE),
)
COHORT = View(
    "cohort",
    "A cohort table: of the users who did primary in each period, how many did secondary "
    "in each later one (JSON, or CSV with Accept: text/csv)",
    _COHORT,
    params=COHORT_PARAMS,
)
OPENAPI = View("openapi.json", "This document", {"type": "object"})
#: Every view, in the order the document lists them.
ROUTES = (
    INDEX,
    METRICAS,
    SUMMARY,
    ITERATE,
    TIMESERIE,
    SESSIONS,
    ACTIVITY_LIST,
    ACTIVITY,
    COHORT,
    OPENAPI,
)
#: The views that exist only when the server marks activity.
ACTIVITY_VIEWS = (ACTIVITY_LIST, ACTIVITY, COHORT)

#: Which view a parameter of another view is for: given elsewhere, it is named, not ignored
#: (``since`` on a summary would otherwise count all time).
_BELONGS_TO = {
    **dict.fromkeys(("timespan", *_PART_NAMES), "/stats/metricas/{name} and its /iterate"),
    "by": "/stats/metricas/{name}/iterate",
    **dict.fromkeys(("scale", "since", "until"), "/stats/metricas/{name}/timeserie"),
}
