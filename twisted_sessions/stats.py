"""
The stats resource tree: metricas and sessions as JSON over HTTP.

Mounted at ``/stats`` by ``twistd sessions`` (or anywhere in your own tree)::

    GET /stats                                   metricas (name, axes, links) and live gauges
    GET /stats/metricas/{name}                   count, total, average of a bucket and filter
    GET /stats/metricas/{name}/iterate?by=axis   per value of an axis, or per finer time unit
    GET /stats/metricas/{name}/timeserie         per bucket of a scale, from since to until
    GET /stats/sessions                          clustered sessions: open now, finished, length
    GET /stats/openapi.json                      the OpenAPI 3 document of all of the above

Query parameters: ``timespan=2010-02-07`` (or ``2010``, ``2010-02``, ``2010-02-07T13``), or
``year=&month=&day=&hour=``; any other parameter filters an axis (``?gender=girl&age=19``).
Each is given once, and only to the view it is for (``since`` outside ``/timeserie`` would
otherwise be silently ignored). Bad input is a 400 with a JSON body naming the problem; an
unknown metrica or path 404; methods other than GET and HEAD 405; Redis unreachable a 503 at
once. Every response is JSON with ``nosniff`` and ``no-store``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from .axis import HierarchicalAxis
from .redis_link import RedisTimeout, RedisUnavailable
from .timebuckets import Timespan

if TYPE_CHECKING:
    from .clustering import SessionClusterer
    from .metrica import CounterStore, Metrica, Query
    from .site import Site

#: Parameters that are not axis filters.
RESERVED = frozenset({"timespan", "year", "month", "day", "hour", "by", "scale", "since", "until"})
#: The reserved parameters of each view (any other parameter filters an axis); one meant for
#: another view is a 400, not silently ignored: ``since`` on a summary would count all time.
_SPAN = frozenset({"timespan", "year", "month", "day", "hour"})
_SUMMARY_TAKES = _SPAN
_ITERATE_TAKES = _SPAN | {"by"}
_TIMESERIE_TAKES = frozenset({"scale", "since", "until"})
_BELONGS_TO = {
    **dict.fromkeys(_SPAN, "/stats/metricas/{name} and its /iterate"),
    "by": "/stats/metricas/{name}/iterate",
    **dict.fromkeys(_TIMESERIE_TAKES, "/stats/metricas/{name}/timeserie"),
}
#: The most points a timeserie may return.
MAX_POINTS = 1000


class StatsError(Exception):
    """
    A client error: the status code and the problem, sent as ``{"error": ...}``.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _JSON(Resource):
    """
    A leaf answering GET and HEAD with JSON computed asynchronously; everything else 405.
    """

    isLeaf = True
    _log = Logger()

    def __init__(self, produce: Callable[[Any], Awaitable[Any]]) -> None:
        super().__init__()
        self._produce = produce

    def render(self, request: Any) -> Any:
        if any(request.postpath):
            # /stats/metricas/{name}/iterate/more: a path below a view is nothing.
            path = "/".join(segment.decode("utf-8", "replace") for segment in request.postpath)
            return _send(request, 404, {"error": f"no such stats resource: {path!r}"})
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"Allow", b"GET, HEAD")
            return _send(request, 405, {"error": "only GET and HEAD are allowed"})
        finished = [False]
        request.notifyFinish().addBoth(lambda _: finished.__setitem__(0, True))

        async def respond() -> None:
            try:
                body, code = await self._produce(request), 200
            except StatsError as error:
                body, code = {"error": str(error)}, error.code
            except (RedisUnavailable, RedisTimeout) as error:
                body, code = {"error": f"Redis is unreachable: {error}"}, 503
            except Exception:
                self._log.failure("stats request {path} failed", path=request.path)
                body, code = {"error": "internal error"}, 500
            if not finished[0]:
                request.write(_send(request, code, body))
                request.finish()

        Deferred.fromCoroutine(respond()).addErrback(
            lambda failure: self._log.failure("stats response failed", failure)
        )
        return NOT_DONE_YET


def _send(request: Any, code: int, body: Any) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"Cache-Control", b"no-store")
    encoded = json.dumps(body, default=str).encode("utf-8")
    request.setHeader(b"Content-Length", b"%d" % len(encoded))
    return encoded


class _Fixed(Resource):
    """
    A leaf with a fixed JSON error (404, 401).
    """

    isLeaf = True

    def __init__(self, code: int, message: str, headers: dict[bytes, bytes] | None = None):
        super().__init__()
        self._code, self._message, self._headers = code, message, headers or {}

    def render(self, request: Any) -> bytes:
        for name, value in self._headers.items():
            request.setHeader(name, value)
        return _send(request, self._code, {"error": self._message})


def _params(request: Any, takes: frozenset[str]) -> dict[str, str]:
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


def _timespan(params: dict[str, str]) -> Timespan:
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


def _query(metrica: Metrica, params: dict[str, str]) -> Query:
    query = metrica.timespan(*_span_parts(_timespan(params)))
    filters: dict[str, Any] = {}
    try:
        for key, value in params.items():
            if key not in RESERVED:
                hierarchical = isinstance(metrica.axis(key), HierarchicalAxis)
                filters[key] = tuple(value.split("/")) if hierarchical else value
        return query.filter(**filters)
    except (TypeError, ValueError) as error:
        raise StatsError(400, str(error)) from None


def _span_parts(span: Timespan) -> tuple[int | None, ...]:
    return (span.year, span.month, span.day, span.hour)


def _moment(params: dict[str, str], name: str) -> datetime:
    text = params.get(name)
    if text is None:
        raise StatsError(400, f"parameter {name!r} is required (an ISO 8601 date)")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise StatsError(400, f"parameter {name!r} is not an ISO 8601 date: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Mounted(Resource):
    """
    A root resource with extra children in front of it (``/stats`` over the application).
    """

    def __init__(self, root: Any, children: dict[bytes, Resource]) -> None:
        super().__init__()
        self._root, self._mounted = root, children
        # Read once: this runs for every request the application serves.
        self._root_is_leaf = bool(getattr(root, "isLeaf", False))

    def getChildWithDefault(self, path: bytes, request: Any) -> Any:
        mounted = self._mounted.get(path)
        if mounted is not None:
            return mounted
        if self._root_is_leaf:
            # A leaf root renders every path itself: undo the step traversal just took.
            request.postpath.insert(0, request.prepath.pop())
            return self._root
        return self._root.getChildWithDefault(path, request)

    def render(self, request: Any) -> Any:
        return self._root.render(request)


class StatsResource(Resource):
    """
    The root of the stats tree.

    :param store: the metricas.
    :param site: the tracked Site (for the live web session gauge), if any.
    :param clusterer: the session clusterer, if any.
    :param token: a bearer token every request must carry, or ``None``.
    """

    def __init__(
        self,
        store: CounterStore,
        site: Site | None = None,
        clusterer: SessionClusterer | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__()
        self.store, self.site, self.clusterer = store, site, clusterer
        self._token = token.encode("utf-8") if token else None
        self._index = _JSON(self._describe)
        self._children: dict[bytes, Resource] = {
            b"metricas": _Metricas(store),
            b"sessions": _JSON(self._sessions),
            b"openapi.json": _JSON(lambda _: _async(openapi_document())),
        }

    def _authorized(self, request: Any) -> bool:
        if self._token is None:
            return True
        given = request.getHeader(b"authorization") or b""
        scheme, _, credential = given.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(credential, self._token)

    def getChildWithDefault(self, path: bytes, request: Any) -> Resource:
        if not self._authorized(request):
            return _Fixed(
                401,
                "a valid bearer token is required",
                {b"WWW-Authenticate": b'Bearer realm="stats"'},
            )
        if path == b"":
            return self._index
        return self._children.get(path) or _Fixed(404, f"no such stats resource: {path!r}")

    def render(self, request: Any) -> Any:
        return self.getChildWithDefault(b"", request).render(request)

    async def _describe(self, request: Any) -> dict[str, Any]:
        base = "/" + "/".join(p.decode() for p in request.prepath if p)
        metricas = [
            {
                "name": metrica.name,
                "averaged": metrica.averaged,
                "axes": [
                    {"name": name, "kind": type(axis).__name__, "choices": axis.choices}
                    for name, axis in metrica.axes
                ],
                "links": {
                    "self": f"{base}/metricas/{metrica.name}",
                    "iterate": f"{base}/metricas/{metrica.name}/iterate",
                    "timeserie": f"{base}/metricas/{metrica.name}/timeserie",
                },
            }
            for metrica in self.store.metricas.values()
        ]
        writer, link = self.store.writer, self.store.link
        return {
            "metricas": metricas,
            "gauges": {
                "web_sessions": len(self.site.sessions) if self.site is not None else None,
                "clustered_sessions": (
                    self.clusterer.active_count if self.clusterer is not None else None
                ),
                "clustered_sessions_evicted": (
                    self.clusterer.evicted_count if self.clusterer is not None else None
                ),
                "writer_backlog": writer.backlog,
                "dropped_kicks": writer.dropped,
                "redis_reachable": link.connected,
            },
        }

    async def _sessions(self, request: Any) -> dict[str, Any]:
        now = datetime.fromtimestamp(self.store.clock.seconds(), UTC)
        metrica = self.store.metricas.get("sessions")
        finished: dict[str, Any] = {}
        if metrica is not None:
            for label, span in (
                ("today", Timespan.of(now, "day")),
                ("this_month", Timespan.of(now, "month")),
                ("all_time", Timespan()),
            ):
                query = metrica.timespan(*_span_parts(span))
                finished[label] = {
                    "count": await query.count(),
                    "average_length": await query.average(),
                }
        return {
            "active_web_sessions": len(self.site.sessions) if self.site is not None else None,
            "active_clustered_sessions": (
                self.clusterer.active_count if self.clusterer is not None else None
            ),
            "cutoff": self.clusterer.cutoff if self.clusterer is not None else None,
            "finished": finished,
        }


async def _async(value: Any) -> Any:
    return value


class _Metricas(Resource):
    def __init__(self, store: CounterStore) -> None:
        super().__init__()
        self.store = store

    def getChild(self, path: bytes, request: Any) -> Resource:
        name = path.decode("utf-8", "replace")
        metrica = self.store.metricas.get(name)
        if metrica is None:
            return _Fixed(404, f"no metrica named {name!r}")
        return _MetricaResource(metrica)

    def render(self, request: Any) -> bytes:
        return _send(request, 404, {"error": "name a metrica: /stats/metricas/{name}"})


class _MetricaResource(Resource):
    def __init__(self, metrica: Metrica) -> None:
        super().__init__()
        self.metrica = metrica
        self._summary = _JSON(self._get)
        self._views = {b"iterate": _JSON(self._iterate), b"timeserie": _JSON(self._timeserie)}

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self._summary
        return self._views.get(path) or _Fixed(404, f"no such view: {path!r}")

    def render(self, request: Any) -> Any:
        return self._summary.render(request)

    async def _get(self, request: Any) -> dict[str, Any]:
        params = _params(request, _SUMMARY_TAKES)
        query = _query(self.metrica, params)
        return {
            "metrica": self.metrica.name,
            "timespan": query.span.code,
            "filters": dict(query.filters),
            "count": await query.count(),
            "total": await query.total(),
            "average": await query.average() if self.metrica.averaged else None,
        }

    async def _iterate(self, request: Any) -> dict[str, Any]:
        params = _params(request, _ITERATE_TAKES)
        query = _query(self.metrica, params)
        by = params.get("by")
        if by is not None:
            try:
                self.metrica.axis(by)
            except TypeError as error:
                raise StatsError(400, f"cannot iterate: {error}") from None
        if by is None and query.span.scale == "hour":
            raise StatsError(400, "an hour has no finer unit to iterate: give a larger timespan")
        counts = await query.iterate_counts(by)
        totals = await query.iterate(by)
        averages = await query.iterate_averages(by) if self.metrica.averaged else None
        items = [
            {
                "key": key,
                "count": count,
                "total": total,
                "average": averages[index][1] if averages is not None else None,
            }
            for index, ((key, count), (_, total)) in enumerate(zip(counts, totals, strict=True))
        ]
        return {
            "metrica": self.metrica.name,
            "timespan": query.span.code,
            "by": by or "time",
            "items": items,
        }

    async def _timeserie(self, request: Any) -> dict[str, Any]:
        params = _params(request, _TIMESERIE_TAKES)
        scale = params.get("scale", "day")
        if scale not in ("year", "month", "day", "hour"):
            raise StatsError(400, f"scale must be year, month, day or hour, not {scale!r}")
        since, until = _moment(params, "since"), _moment(params, "until")
        if until < since:
            raise StatsError(400, "until is before since")
        if _points(since, until, scale) > MAX_POINTS:
            raise StatsError(400, f"too many points: at most {MAX_POINTS} per timeserie")
        query = _query(self.metrica, {k: v for k, v in params.items() if k not in RESERVED})
        points = await query.timeserie(since, until, scale)
        return {
            "metrica": self.metrica.name,
            "scale": scale,
            "points": [{"start": start.isoformat(), "total": total} for start, total in points],
        }


def _points(since: datetime, until: datetime, scale: str) -> float:
    seconds = (until - since).total_seconds()
    per_point = {"hour": 3600, "day": 86400, "month": 28 * 86400, "year": 365 * 86400}[scale]
    return seconds / per_point + 2


def openapi_document() -> dict[str, Any]:
    """
    The OpenAPI 3 description of the stats tree (kept true by tests/test_stats.py).
    """
    error = {"$ref": "#/components/responses/Error"}
    span_params = [
        {"name": n, "in": "query", "required": False, "schema": {"type": t}}
        for n, t in (
            ("timespan", "string"),
            ("year", "integer"),
            ("month", "integer"),
            ("day", "integer"),
            ("hour", "integer"),
        )
    ]
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    common = {"200": ok, "400": error, "401": error, "404": error, "405": error, "503": error}
    return {
        "openapi": "3.0.3",
        "info": {"title": "twisted-sessions stats", "version": "1"},
        "paths": {
            "/stats": {"get": {"summary": "Metricas and live gauges", "responses": common}},
            "/stats/metricas/{name}": {
                "get": {
                    "summary": "Count, total and average of one bucket and filter (axis values as "
                    "further query parameters)",
                    "parameters": [name, *span_params],
                    "responses": common,
                }
            },
            "/stats/metricas/{name}/iterate": {
                "get": {
                    "summary": "Per value of an axis (by), or per finer time unit",
                    "parameters": [
                        name,
                        *span_params,
                        {
                            "name": "by",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": common,
                }
            },
            "/stats/metricas/{name}/timeserie": {
                "get": {
                    "summary": f"Totals per bucket of a scale (at most {MAX_POINTS} points)",
                    "parameters": [
                        name,
                        *[
                            {
                                "name": n,
                                "in": "query",
                                "required": n != "scale",
                                "schema": {"type": "string"},
                            }
                            for n in ("scale", "since", "until")
                        ],
                    ],
                    "responses": common,
                }
            },
            "/stats/sessions": {"get": {"summary": "Clustered sessions", "responses": common}},
            "/stats/openapi.json": {"get": {"summary": "This document", "responses": common}},
        },
        "components": {
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"error": {"type": "string"}},
                            }
                        }
                    },
                }
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
