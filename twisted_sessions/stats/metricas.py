"""
``/stats/metricas/{name}`` and its views: a bucket's count, total and average, a breakdown by
axis or by finer time unit (``/iterate``), and a series over time (``/timeserie``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.resource import Resource

from .params import (
    ITERATE_TAKES,
    MAX_POINTS,
    RESERVED,
    SUMMARY_TAKES,
    TIMESERIE_TAKES,
    count_points,
    metrica_query,
    no_params,
    parse_moment,
    query_params,
)
from .responses import ErrorLeaf, JSONLeaf, StatsError

if TYPE_CHECKING:
    from ..counters.metrica import CounterStore, Metrica


class MetricasResource(Resource):
    """
    ``/stats/metricas``: the list of metricas; ``/stats/metricas/{name}``: one of them.
    """

    def __init__(self, store: CounterStore) -> None:
        super().__init__()
        self.store = store
        self._index = JSONLeaf(self._list)

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self._index
        name = path.decode("utf-8", "replace")
        metrica = self.store.metricas.get(name)
        if metrica is None:
            return ErrorLeaf(404, f"no metrica named {name}")
        return MetricaResource(metrica)

    def render(self, request: Any) -> Any:
        return self._index.render(request)

    async def _list(self, request: Any) -> dict[str, Any]:
        no_params(request, "/stats/metricas")
        base = "/" + "/".join(p.decode("utf-8", "replace") for p in request.prepath if p)
        return {
            "metricas": [
                {"name": name, "averaged": metrica.averaged, "self": f"{base}/{name}"}
                for name, metrica in self.store.metricas.items()
            ]
        }


class MetricaResource(Resource):
    def __init__(self, metrica: Metrica) -> None:
        super().__init__()
        self.metrica = metrica
        self._summary = JSONLeaf(self._get)
        self._views = {b"iterate": JSONLeaf(self._iterate), b"timeserie": JSONLeaf(self._timeserie)}

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self._summary
        return self._views.get(path) or ErrorLeaf(
            404, f"no such view: {path.decode('utf-8', 'replace')}"
        )

    def render(self, request: Any) -> Any:
        return self._summary.render(request)

    async def _get(self, request: Any) -> dict[str, Any]:
        params = query_params(request, SUMMARY_TAKES)
        query = metrica_query(self.metrica, params)
        return {
            "metrica": self.metrica.name,
            "timespan": query.span.label,
            "filters": dict(query.filters),
            "count": await query.count(),
            "total": await query.total(),
            "average": await query.average() if self.metrica.averaged else None,
        }

    async def _iterate(self, request: Any) -> dict[str, Any]:
        params = query_params(request, ITERATE_TAKES)
        query = metrica_query(self.metrica, params)
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
            "timespan": query.span.label,
            "by": by or "time",
            "items": items,
        }

    async def _timeserie(self, request: Any) -> dict[str, Any]:
        params = query_params(request, TIMESERIE_TAKES)
        scale = params.get("scale", "day")
        if scale not in ("year", "month", "day", "hour"):
            raise StatsError(400, f"scale must be year, month, day or hour, not {scale!r}")
        since, until = parse_moment(params, "since"), parse_moment(params, "until")
        if until < since:
            raise StatsError(400, "until is before since")
        if count_points(since, until, scale) > MAX_POINTS:
            raise StatsError(400, f"too many points: at most {MAX_POINTS} per timeserie")
        query = metrica_query(self.metrica, {k: v for k, v in params.items() if k not in RESERVED})
        points = await query.timeserie_points(since, until, scale)
        return {
            "metrica": self.metrica.name,
            "scale": scale,
            "points": [
                {"start": start.isoformat(), "count": count, "total": total, "average": average}
                for start, count, total, average in points
            ],
        }
