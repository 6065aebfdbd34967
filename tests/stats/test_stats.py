"""
The stats resource tree, in memory over the real Site code, against a real Redis.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.static import Data

from twisted_sessions import Site
from twisted_sessions.clustering import SessionClusterer
from twisted_sessions.counters import (
    AveragedMetrica,
    Axis,
    CounterStore,
    Counting,
    StoredChoiceAxis,
)
from twisted_sessions.stats import Mounted, StatsResource, openapi_document
from twisted_sessions.storage import RedisAddress, RedisLink

from ..http import Response, open_channel, parse_response, request_bytes
from ..reactor_case import MetricaTestCase, coroutine_test, wait_until


async def fetch(
    site: Site, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[Response, Any]:
    """
    One request through the real Site, waiting (on the reactor) for the whole response.
    """
    channel, transport = open_channel(site)
    channel.dataReceived(request_bytes(method, path, headers=headers))
    deadline = time.monotonic() + 10
    while True:
        raw = transport.value()
        head, _, body = raw.partition(b"\r\n\r\n")
        length = [
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ]
        if head and (method == "HEAD" or (length and len(body) >= length[0])):
            break
        assert time.monotonic() < deadline, f"no response to {path}"
        await deferLater(reactor, 0.005, lambda: None)
    channel.connectionLost(Failure(ConnectionError("done")))
    response = parse_response(raw)
    is_json = (response.header("Content-Type") or "").startswith("application/json")
    payload = json.loads(response.body) if response.body and is_json else None
    return response, payload


class StatsTests(MetricaTestCase):
    async def site(
        self, token: str | None = None, link: RedisLink | None = None, counting: bool = False
    ) -> Site:
        store = await self.store() if link is None else CounterStore(reactor, link)
        self.metrica = AveragedMetrica(
            "guests",
            axes=[("gender", Axis(["boy", "girl"])), ("age", StoredChoiceAxis())],
            multiplier=100,
            store=store,
        )
        root = Resource()
        root.putChild(b"", Data(b"home", "text/plain"))
        site = Site(root, reactor=reactor)
        self.addCleanup(site.expire_all)
        clusterer = self.clusterer = SessionClusterer(reactor, cutoff=60)
        site.add_observer(clusterer)
        self.addCleanup(clusterer.flush)
        if counting:
            built_in = Counting(store)
            site.add_observer(built_in)
            clusterer.add_sink(built_in)
        site.resource = Mounted(root, {b"stats": StatsResource(store, site, clusterer, token)})
        self.store_ = store
        return site

    async def filled_site(self) -> Site:
        site = await self.site()
        for day, gender, age, value in [
            (7, "girl", 18, 10),
            (7, "boy", 19, 20),
            (8, "girl", 19, 30),
        ]:
            self.metrica.kick(date=datetime(2010, 2, day), value=value, gender=gender, age=age)
        await self.store_.flush()
        return site

    @coroutine_test
    async def test_index_lists_metricas_and_gauges(self) -> None:
        """
        ``GET /stats`` lists the metricas with their axes and links, and the live gauges.
        """
        site = await self.filled_site()
        response, body = await fetch(site, "/stats")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("Content-Type"), "application/json; charset=utf-8")
        self.assertEqual(response.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(response.header("Cache-Control"), "no-store")
        [guests] = body["metricas"]
        self.assertEqual([a["name"] for a in guests["axes"]], ["gender", "age"])
        self.assertEqual(guests["links"]["iterate"], "/stats/metricas/guests/iterate")
        self.assertEqual(body["gauges"]["redis_reachable"], True)
        self.assertEqual(body["gauges"]["writer_backlog"], 0)
        # No activity on this tree: its gauges say so rather than 0.
        self.assertIsNone(body["gauges"]["dropped_marks"])

    @coroutine_test
    async def test_metrica_counts_with_timespan_and_filters(self) -> None:
        """
        A bucket and axis filters from the query string give count, total and average.
        """
        site = await self.filled_site()
        _, body = await fetch(site, "/stats/metricas/guests?timespan=2010-02")
        self.assertEqual((body["count"], body["total"], body["average"]), (3, 60, 20))
        _, body = await fetch(site, "/stats/metricas/guests?year=2010&month=2&day=7&gender=girl")
        self.assertEqual((body["count"], body["total"]), (1, 10))
        _, body = await fetch(site, "/stats/metricas/guests?age=19")
        self.assertEqual(body["count"], 2)

    @coroutine_test
    async def test_iterate_by_axis_and_by_time(self) -> None:
        """
        ``iterate?by=axis`` breaks down by axis values; without ``by``, by the next finer unit.
        """
        site = await self.filled_site()
        _, body = await fetch(site, "/stats/metricas/guests/iterate?by=age")
        self.assertEqual([(i["key"], i["count"]) for i in body["items"]], [("18", 1), ("19", 2)])
        _, body = await fetch(site, "/stats/metricas/guests/iterate?timespan=2010-02")
        self.assertEqual(len(body["items"]), 28)
        self.assertEqual(body["items"][6], {"key": 7, "count": 2, "total": 30, "average": 15})

    @coroutine_test
    async def test_timeserie_for_charts(self) -> None:
        """
        ``timeserie`` gives one point per bucket between since and until.
        """
        site = await self.filled_site()
        _, body = await fetch(
            site, "/stats/metricas/guests/timeserie?scale=day&since=2010-02-06&until=2010-02-08"
        )
        self.assertEqual([p["total"] for p in body["points"]], [0, 30, 30])
        self.assertEqual(body["points"][0]["start"], "2010-02-06T00:00:00+00:00")
        # A requests-per-day series is the counts; averages are None where nothing counted.
        self.assertEqual([p["count"] for p in body["points"]], [0, 2, 1])
        self.assertEqual([p["average"] for p in body["points"]], [None, 15, 30])

    @coroutine_test
    async def test_long_timeseries_continue_at_next(self) -> None:
        """
        A series longer than 1000 points comes in pages: each answer says where the next
        starts, and following ``next`` gives every point once; ``until`` before ``since`` is
        an empty series (nothing lies between them), not an error.
        """
        site = await self.filled_site()
        url: str | None = (
            "/stats/metricas/guests/timeserie?scale=hour&since=2010-01-01&until=2010-03-31"
            "&gender=girl"
        )
        starts: list[str] = []
        totals = 0.0
        pages = 0
        while url is not None:
            response, body = await fetch(site, url)
            self.assertEqual(response.status, 200, url)
            self.assertLessEqual(len(body["points"]), 1000)
            starts += [point["start"] for point in body["points"]]
            totals += sum(point["total"] for point in body["points"])
            url, pages = body["next"], pages + 1
        self.assertEqual(pages, 3)
        self.assertEqual(len(starts), (31 + 28 + 30) * 24 + 1)
        self.assertEqual(len(set(starts)), len(starts))
        self.assertEqual(
            (starts[0], starts[-1]), ("2010-01-01T00:00:00+00:00", "2010-03-31T00:00:00+00:00")
        )
        # The filter is kept across pages: only the girls' 10 and 30.
        self.assertEqual(totals, 40)
        _, body = await fetch(
            site, "/stats/metricas/guests/timeserie?since=2010-03-01&until=2010-02-01"
        )
        self.assertEqual((body["points"], body["next"]), ([], None))

    @coroutine_test
    async def test_answers_speak_the_clients_language(self) -> None:
        """
        Timespans come back as they are written in queries (``2010-02``), never as internal
        key codes, and ``/stats/metricas`` lists the metricas.
        """
        site = await self.filled_site()
        _, body = await fetch(site, "/stats/metricas/guests?timespan=2010-02")
        self.assertEqual(body["timespan"], "2010-02")
        _, body = await fetch(site, "/stats/metricas/guests/iterate?year=2010&month=2&day=7")
        self.assertEqual(body["timespan"], "2010-02-07")
        _, body = await fetch(site, "/stats/metricas/guests")
        self.assertEqual(body["timespan"], "all")
        response, body = await fetch(site, "/stats/metricas")
        self.assertEqual(response.status, 200)
        self.assertEqual(
            body["metricas"],
            [{"name": "guests", "averaged": True, "self": "/stats/metricas/guests"}],
        )

    @coroutine_test
    async def test_conflicting_or_meaningless_parameters_are_named(self) -> None:
        """
        ``timespan`` with ``year`` (two ways of saying one thing), or any parameter on a view
        that takes none, is a 400 naming the parameters.
        """
        site = await self.filled_site()
        for path, named in (
            ("/stats/metricas/guests?timespan=2010&month=2", "timespan or month"),
            ("/stats?gender=girl", "/stats takes no parameters; given: gender"),
            ("/stats/sessions?x=1", "/stats/sessions takes no parameters; given: x"),
            ("/stats/metricas?a=1&b=2", "/stats/metricas takes no parameters; given: a, b"),
            ("/stats/openapi.json?v=3", "given: v"),
        ):
            response, body = await fetch(site, path)
            self.assertEqual(response.status, 400, path)
            self.assertIn(named, body["error"], path)

    @coroutine_test
    async def test_bad_input_is_a_named_400(self) -> None:
        """
        Bad input never gives a 500 or a traceback: each is a 400 (404 for an unknown
        metrica, 405 for other methods) with a JSON body naming the problem.
        """
        site = await self.filled_site()
        cases = [
            ("/stats/metricas/nope", 404, "no metrica named nope"),
            ("/stats/metricas/guests?colour=red", 400, "no axis 'colour'"),
            ("/stats/metricas/guests?gender=other", 400, "not a choice of axis 'gender'"),
            ("/stats/metricas/guests?timespan=2010-02-30", 400, "day 30 does not exist"),
            ("/stats/metricas/guests?year=2010&month=2&day=30", 400, "day 30 does not exist"),
            ("/stats/metricas/guests?timespan=2010-2-7", 400, "bad timespan '2010-2-7'"),
            ("/stats/metricas/guests?year=%2B2010", 400, "'year' must be a whole number"),
            ("/stats/metricas/guests?month=13&year=2010", 400, "from 1 to 12, not '13'"),
            ("/stats/metricas/guests?timespan=yesterday", 400, "bad timespan"),
            ("/stats/metricas/guests?month=2", 400, "finer part"),
            ("/stats/metricas/guests/iterate?by=colour", 400, "no axis 'colour'"),
            ("/stats/metricas/guests/iterate?timespan=2010-02-07T13", 400, "finer unit"),
            (
                "/stats/metricas/guests/timeserie?scale=week&since=2010-01-01&until=2010-02-01",
                400,
                "scale",
            ),
            (
                "/stats/metricas/guests/timeserie?scale=day&since=soon&until=2010-02-01",
                400,
                "bad since 'soon'",
            ),
            ("/stats/metricas/guests/timeserie?scale=day", 400, "'since' is required"),
            ("/stats/nothing", 404, "no such stats resource"),
            ("/stats/metricas/guests/iterate/more", 404, "no such stats resource: more"),
            ("/stats/metricas/guests?since=2010-02-01", 400, "'since' does not apply here"),
            ("/stats/metricas/guests/iterate?scale=day", 400, "'scale' does not apply here"),
            (
                "/stats/metricas/guests/timeserie?scale=day&since=2010-02-01&until=2010-02-03"
                "&timespan=2010",
                400,
                "'timespan' does not apply here",
            ),
            ("/stats/metricas/guests?gender=boy&gender=girl", 400, "'gender' is given 2 times"),
        ]
        for path, status, message in cases:
            response, body = await fetch(site, path)
            self.assertEqual(response.status, status, path)
            self.assertIn(message, body["error"], path)
            self.assertEqual(
                response.header("Content-Type"), "application/json; charset=utf-8", path
            )
        response, body = await fetch(site, "/stats/metricas/guests", method="POST")
        self.assertEqual((response.status, response.header("Allow")), (405, "GET, HEAD"))

    @coroutine_test
    async def test_odd_queries_never_fail_the_server(self) -> None:
        """
        Whatever a client puts in the path and query (a seeded random mix of the real
        parameters with odd values: empty, repeated, huge, negative, percent-encoded bytes that
        are not UTF-8, NUL...), the answer is a JSON 200, 400 or 404 naming the problem, never
        a 500.
        """
        site = await self.filled_site()
        rng = random.Random(20261122)
        paths = [
            "/stats",
            "/stats/",
            "/stats/sessions",
            "/stats/metricas/guests",
            "/stats/metricas/guests/",
            "/stats/metricas/guests/iterate",
            "/stats/metricas/guests/timeserie",
            "/stats/metricas/guests/iterate/extra",
            "/stats/metricas/%ff",
            "/stats/metricas/guests%00",
        ]
        names = ["timespan", "year", "month", "day", "hour", "by", "scale", "since", "until"]
        names += ["gender", "age", "colour", "", "%ff", "year[]"]
        values = ["", "2010", "2010-02", "2010-02-07", "2010-02-07T13", "-1", "0", "99999"]
        values += [
            "1e9",
            "2010-02-07T25",
            "girl",
            "age",
            "day",
            "hour",
            "%ff%fe",
            "%00",
            "a" * 5000,
        ]
        values += [
            "2010-02-30",
            "9999-12-31",
            "0001-01-01",
            "NaN",
            "+5",
            "%202010",
            "%EF%BC%92%EF%BC%90%EF%BC%91%EF%BC%90",
        ]
        for _ in range(250):
            query = "&".join(
                f"{rng.choice(names)}={rng.choice(values)}" for _ in range(rng.randint(0, 4))
            )
            path = rng.choice(paths) + ("?" + query if query else "")
            response, body = await fetch(site, path)
            self.assertIn(response.status, (200, 400, 404), path[:200])
            self.assertIsInstance(body, dict, path[:200])
            if response.status != 200:
                self.assertTrue(body["error"], path[:200])

    @coroutine_test
    async def test_redis_unreachable_is_a_quick_503(self) -> None:
        """
        With Redis found down, queries answer 503 at once, not after a hang, and say when to
        ask again.
        """
        link = RedisLink(
            reactor, RedisAddress(path="/nonexistent/redis.sock"), deadline=2, health_interval=0.05
        )
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        await wait_until(lambda: link.reachable is False)
        site = await self.site(link=link)
        started = time.monotonic()
        for path in (
            "/stats/metricas/guests",
            # Views that read many keys at once answer the same, not a 500.
            "/stats/metricas/guests/iterate?timespan=2010-02",
            "/stats/metricas/guests/timeserie?since=2010-02-01&until=2010-02-03",
        ):
            response, body = await fetch(site, path)
            self.assertEqual(response.status, 503, path)
            self.assertIn("Redis is unreachable", body["error"])
            self.assertEqual(response.header("Retry-After"), "5")
        self.assertLess(time.monotonic() - started, 1)

    @coroutine_test
    async def test_bearer_token(self) -> None:
        """
        With a token, requests without it (or with a wrong one) get a 401 with
        WWW-Authenticate; with it, the data.
        """
        site = await self.site(token="s3cret-token-0123456789")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            response, body = await fetch(site, "/stats", headers=headers)
            self.assertEqual(response.status, 401)
            self.assertIn("bearer token", body["error"])
            self.assertEqual(response.header("WWW-Authenticate"), 'Bearer realm="stats"')
        response, _ = await fetch(
            site,
            "/stats/metricas/guests",
            headers={"Authorization": "Bearer s3cret-token-0123456789"},
        )
        self.assertEqual(response.status, 200)

    @coroutine_test
    async def test_openapi_describes_what_is_served(self) -> None:
        """
        The OpenAPI document is generated from the route table and the metricas: each metrica
        has its paths, its axes are the filters (a fixed axis's choices as an enum) and
        ``by`` names one of them; every path answers with its required parameters.
        """
        site = await self.filled_site()
        response, served = await fetch(site, "/stats/openapi.json")
        self.assertEqual(served, json.loads(json.dumps(openapi_document(store=self.store_))))
        self.assertEqual(served["openapi"][:2], "3.")
        iterate = served["paths"]["/stats/metricas/guests/iterate"]["get"]
        [query] = iterate["parameters"]
        self.assertEqual((query["style"], query["explode"]), ("form", True))
        properties = query["schema"]["properties"]
        self.assertEqual(properties["by"]["enum"], ["gender", "age"])
        self.assertEqual(properties["gender"]["enum"], ["boy", "girl"])
        self.assertEqual(properties["month"]["maximum"], 12)
        self.assertFalse(query["schema"]["additionalProperties"])
        samples = {"scale": "day", "since": "2010-02-01", "until": "2010-02-03"}
        for path, spec in served["paths"].items():
            required = [
                name
                for parameter in spec["get"].get("parameters", [])
                for name in parameter["schema"].get("required", [])
            ]
            url = path + ("?" + "&".join(f"{n}={samples[n]}" for n in required) if required else "")
            response, body = await fetch(site, url)
            self.assertEqual(response.status, 200, url)
            if "text/plain" in spec["get"]["responses"]["200"]["content"]:
                # /stats/metrics: Prometheus's text, not JSON.
                self.assertTrue(response.header("content-type").startswith("text/plain"), url)
                continue
            self.assertIsInstance(body, dict, url)

    @coroutine_test
    async def test_sessions_view(self) -> None:
        """
        ``/stats/sessions`` shows live web sessions and visits, and the visits finished today
        with their average length.
        """
        site = await self.site(counting=True)
        await fetch(site, "/")
        _, body = await fetch(site, "/stats/sessions")
        self.assertEqual(body["active_clustered_sessions"], 1)
        self.assertEqual(body["finished"]["today"], {"count": 0, "average_length": None})
        await self.clusterer.flush()  # Both visits end (as at shutdown) and are counted.
        await self.store_.flush()
        _, body = await fetch(site, "/stats/sessions")
        # The fetches keep no cookies: first requests, which make no web session.
        self.assertEqual(body["active_web_sessions"], 0)
        self.assertEqual(body["active_clustered_sessions"], 0)
        self.assertEqual(body["cutoff"], 60)
        for period in ("today", "this_month", "all_time"):
            self.assertEqual(body["finished"][period], {"count": 2, "average_length": 0})


def test_stats_mount_keeps_the_application() -> None:
    """
    Mounting the stats tree in front of an application leaves its own paths alone.
    """
    from twisted.internet.task import Clock

    from ..http import get

    root = Resource()
    root.putChild(b"", Data(b"home", "text/plain"))
    root.putChild(b"page", Data(b"page", "text/plain"))
    site = Site(Mounted(root, {b"stats": Resource()}), reactor=Clock())
    assert get(site, "/").body == b"home"
    assert get(site, "/page").body == b"page"
