"""
``/stats/activity`` and ``/stats/cohort`` through the real Site, on a real Redis.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from twisted.internet import reactor
from twisted.web.resource import Resource

from twisted_sessions import Site
from twisted_sessions.counters import CounterStore
from twisted_sessions.stats import Mounted, StatsResource, openapi_document

from ..activity.case import ActivityTestCase
from ..reactor_case import coroutine_test
from .test_stats import fetch

MONDAY = datetime(2026, 2, 2, 9, tzinfo=UTC)


class ActivityAPITests(ActivityTestCase):
    async def site(self) -> Site:
        activity = self.activity_ = await self.activity()
        for user in "abcd":
            activity.mark("signup", user, MONDAY)
            activity.mark("active", user, MONDAY)
        activity.mark("active", "a", MONDAY + timedelta(weeks=1))
        activity.mark("song:play", "a", MONDAY + timedelta(weeks=1))
        activity.mark("active", "b", MONDAY + timedelta(weeks=1, days=1))
        await activity.writer.flush()
        root = Resource()
        site = Site(root, reactor=reactor)
        self.addCleanup(site.expire_all)
        store = CounterStore(reactor, activity.link)
        site.resource = Mounted(root, {b"stats": StatsResource(store, site, activity=activity)})
        return site

    @coroutine_test
    async def test_distinct_users_per_period_combined(self) -> None:
        """
        Users per day of a week; ``and``, ``or``, ``not`` of another event in the same period;
        the HyperLogLog estimate beside the exact count of a plain event.
        """
        site = await self.site()
        response, body = await fetch(site, "/stats/activity")
        self.assertEqual(response.status, 200)
        self.assertEqual(body["events"], ["active", "signup", "song:play"])
        base = "/stats/activity/active?scale=week&since=2026-02-02&until=2026-02-15"
        _, body = await fetch(site, base)
        self.assertEqual([p["period"] for p in body["points"]], ["2026-W06", "2026-W07"])
        self.assertEqual([p["users"] for p in body["points"]], [4, 2])
        self.assertEqual([p["estimate"] for p in body["points"]], [4, 2])
        for extra, expected in (("and=song:play", 1), ("not=song:play", 1), ("or=signup", 2)):
            _, body = await fetch(site, base + "&" + extra)
            self.assertEqual(body["points"][1]["users"], expected, extra)
            self.assertIsNone(body["points"][1]["estimate"])
        _, body = await fetch(
            site, "/stats/activity/active?scale=day&since=2026-02-02&until=2026-02-04"
        )
        self.assertEqual([p["users"] for p in body["points"]], [4, 0, 0])
        _, body = await fetch(
            site, "/stats/activity/never-marked?scale=month&since=2026-01-01&until=2026-02-01"
        )
        self.assertEqual([p["users"] for p in body["points"]], [0, 0])

    @coroutine_test
    async def test_cohort_as_json_and_csv(self) -> None:
        """
        ``/stats/cohort`` answers Flask-Bitmapist's table as JSON, and as CSV to a client that
        asks for it.
        """
        site = await self.site()
        self.activity_._clock = _Frozen(MONDAY + timedelta(weeks=1, days=2))
        query = "/stats/cohort?primary=signup&secondary=active&time_group=weeks&rows=2&cols=2"
        response, body = await fetch(site, query)
        self.assertEqual(response.status, 200)
        self.assertEqual(body["periods"], ["2026-W06", "2026-W07"])
        self.assertEqual(body["totals"], [4, 0])
        self.assertEqual(body["rows"], [[4, 0], [None, None]])
        _, body = await fetch(site, query + "&replacement=true&percent=true")
        self.assertEqual(body["rows"], [[100.0, 50.0], [None, None]])
        response, _ = await fetch(site, query, headers={"Accept": "text/csv"})
        self.assertEqual(response.header("Content-Type"), "text/csv; charset=utf-8")
        rows = list(csv.reader(io.StringIO(response.body.decode())))
        self.assertEqual(
            rows,
            [["period", "users", "0", "1"], ["2026-W06", "4", "4", "0"], ["2026-W07", "0", "", ""]],
        )

    @coroutine_test
    async def test_bad_activity_queries_are_named_400s(self) -> None:
        site = await self.site()
        for path, named in (
            ("/stats/activity/active?scale=fortnight&since=2026-01-01&until=2026-02-01", "scale"),
            ("/stats/activity/active?since=2026-01-01", "'until' is required"),
            ("/stats/activity/bad%20name?since=2026-01-01&until=2026-01-02", "bad event"),
            ("/stats/activity/active?since=2026-01-01&until=2026-01-02&and=x%20y", "bad and"),
            ("/stats/cohort?primary=signup", "'secondary' is required"),
            ("/stats/cohort?primary=a&secondary=b&rows=100", "'rows' must be a whole number"),
            ("/stats/cohort?primary=a&secondary=b&time_group=hours", "time_group"),
            ("/stats/activity?x=1", "/stats/activity takes no parameters"),
        ):
            response, body = await fetch(site, path)
            self.assertEqual(response.status, 400, path)
            self.assertIn(named, body["error"], path)

    @coroutine_test
    async def test_marks_waiting_and_dropped_are_gauges(self) -> None:
        site = await self.site()
        self.activity_.mark("active", "late-comer", MONDAY)
        _, body = await fetch(site, "/stats")
        self.assertEqual(body["gauges"]["activity_backlog"], 1)
        self.assertEqual(body["gauges"]["dropped_marks"], 0)

    @coroutine_test
    async def test_the_document_covers_activity(self) -> None:
        site = await self.site()
        _, served = await fetch(site, "/stats/openapi.json")
        for path in ("/stats/activity", "/stats/activity/{event}", "/stats/cohort"):
            self.assertIn(path, served["paths"])
        self.assertNotIn("/stats/cohort", openapi_document()["paths"])
        content = served["paths"]["/stats/cohort"]["get"]["responses"]["200"]["content"]
        self.assertEqual(set(content), {"application/json", "text/csv"})


class _Frozen:
    """
    The reactor, with its clock stopped at ``moment``.
    """

    def __init__(self, moment: datetime) -> None:
        self._seconds = moment.timestamp()

    def seconds(self) -> float:
        return self._seconds

    def callLater(self, delay: float, call: object, *args: object) -> object:
        return reactor.callLater(delay, call, *args)  # type: ignore[arg-type]
