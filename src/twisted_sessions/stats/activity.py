"""
``/stats/activity`` (the events), ``/stats/activity/{event}`` (distinct users per period,
combined with other events) and ``/stats/cohort`` (a cohort table, JSON or CSV).
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource

from ..activity.bitmaps import Expression
from ..activity.periods import SCALES, Period
from ..storage.keys import check_event
from ..storage.link import gather
from .params import next_page, parse_moment
from .responses import ErrorLeaf, JSONLeaf, StatsError, Text
from .routes import ACTIVITY, ACTIVITY_LIST, COHORT, MAX_POINTS

#: Points of an activity series read at once.
POINTS_IN_FLIGHT = 50
#: The most bitmap reads one page of an activity series makes.
MAX_READS = 4000

if TYPE_CHECKING:
    from ..activity.tracker import Activity


class ActivityResource(Resource):
    """
    ``/stats/activity`` and ``/stats/activity/{event}``.
    """

    def __init__(self, activity: Activity) -> None:
        super().__init__()
        self.activity = activity
        self._index = JSONLeaf(self._list)

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self._index
        name = path.decode("utf-8", "replace")
        try:
            check_event(name)
        except ValueError as error:
            return ErrorLeaf(400, f"bad event: {error}")
        return JSONLeaf(lambda request: self._event(request, name))

    def render(self, request: Any) -> Any:
        return self._index.render(request)

    async def _list(self, request: Any) -> dict[str, Any]:
        ACTIVITY_LIST.parse(request)
        return {"events": await self.activity.event_names(), "scales": list(SCALES)}

    async def _event(self, request: Any, event: str) -> dict[str, Any]:
        given, _ = ACTIVITY.parse(request)
        scale = given.get("scale", "day")
        since, until = parse_moment(given["since"]), parse_moment(given["until"])
        periods: list[Period] = []
        following = None
        if scale == "unique":
            periods = [Period.of(since, "unique")]
        combined = any(name in given for name in ("and", "or", "not"))
        if scale != "unique" and until >= since:
            # A page holds at most MAX_READS bitmap reads: a year is its 12 months' bitmaps,
            # each operand of and/or/not reads its own (schemathesis found 1,000 years of
            # three operands, 48,000 reads, taking longer than any client waits).
            operands = 1 + sum(name in given for name in ("and", "or", "not"))
            per_point = (12 if scale == "year" else 1) * operands
            limit = max(min(MAX_POINTS, MAX_READS // per_point), 1)
            period = Period.of(since, scale)
            while period.start <= until and len(periods) <= limit:
                periods.append(period)
                try:
                    period = period.next()
                except (OverflowError, ValueError):
                    break  # Nothing comes after 9999.
            if len(periods) > limit:
                following = next_page(request, periods[limit].start.isoformat())
                periods = periods[:limit]
        reader = self.activity.reader()

        async def point(period: Period) -> dict[str, Any]:
            base = self.activity.events(event, period, reader)
            found: Expression = base
            if "and" in given:
                found = found & self.activity.events(given["and"], period, reader)
            if "or" in given:
                found = found | self.activity.events(given["or"], period, reader)
            if "not" in given:
                found = found & ~self.activity.events(given["not"], period, reader)
            return {
                "period": period.label,
                "start": period.start.isoformat(),
                "users": await found.count(),
                # The HyperLogLog estimate: one cheap read, for a plain event only.
                "estimate": None if combined else await base.estimate(),
            }

        # A window of points' reads in flight at once, not a round trip after another; but
        # not all 1,000 (a year is 12 months' bitmaps): every command's deadline runs from
        # when it is sent, and 12,000 sent at once missed theirs (found by schemathesis).
        points: list[dict[str, Any]] = []
        for at in range(0, len(periods), POINTS_IN_FLIGHT):
            window = periods[at : at + POINTS_IN_FLIGHT]
            points += await gather([Deferred.fromCoroutine(point(period)) for period in window])
        return {"event": event, "scale": scale, "points": points, "next": following}


def cohort_leaf(activity: Activity) -> JSONLeaf:
    """
    ``/stats/cohort``: JSON, or CSV for a client that asks for ``text/csv``.
    """

    async def produce(request: Any) -> Any:
        given, _ = COHORT.parse(request)
        percent = given.get("percent") == "true"
        try:
            table = await activity.cohort(
                given["primary"],
                given["secondary"],
                primary_and=given.get("primary_and"),
                secondary_and=given.get("secondary_and"),
                time_group=given.get("time_group", "days"),
                num_rows=given.get("rows", 10),
                num_cols=given.get("cols", 10),
                with_replacement=given.get("replacement") == "true",
            )
        except ValueError as error:
            raise StatsError(400, str(error)) from None
        cells: list[list[Any]] = table.percents() if percent else table.rows
        labels = [period.label for period in table.periods]
        accept = (request.getHeader(b"accept") or b"").decode("latin-1")
        if "text/csv" in accept:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(["period", "users", *range(len(table.column_totals))])
            for label, total, row in zip(labels, table.totals, cells, strict=True):
                writer.writerow([label, total, *("" if c is None else c for c in row)])
            return Text("text/csv", out.getvalue())
        return {
            "primary": given["primary"],
            "secondary": given["secondary"],
            "time_group": table.time_group,
            "percent": percent,
            "periods": labels,
            "totals": table.totals,
            "rows": cells,
            "row_totals": table.row_totals,
            "column_totals": table.column_totals,
            "column_averages": table.column_averages,
        }

    return JSONLeaf(produce)
