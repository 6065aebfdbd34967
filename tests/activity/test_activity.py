"""
Marking and reading activity on a real Redis: coalescing, dense ids, NOT relative to the known
users, HyperLogLog estimates, Flask-Bitmapist's cohort table, and the marks' guarantees (a
Redis killed mid-load, a shutdown with Redis away, a full backlog).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.static import Data

from twisted_sessions import Site
from twisted_sessions.activity import Activity, Period
from twisted_sessions.clustering import SessionClusterer
from twisted_sessions.storage import RedisAddress, RedisLink
from twisted_sessions.storage.keys import USER_NEXT, activity_key

from ..http import open_channel, request_bytes
from ..reactor_case import coroutine_test, wait_until
from ..redis_process import RedisProcess
from .case import ActivityTestCase

DAY = datetime(2026, 3, 4, 12, tzinfo=UTC)


class MarkingTests(ActivityTestCase):
    @coroutine_test
    async def test_marks_coalesce_into_one_bit_per_bitmap(self) -> None:
        """
        A user marked 50 times in a second is one bit per bitmap, and one flush writes each
        bitmap in one call; users get dense ids 0, 1, 2... whatever their names.
        """
        activity = await self.activity()
        for _ in range(50):
            activity.mark("active", "a" * 32, DAY)
        activity.mark("active", "f" * 32, DAY)
        activity.mark("active", 12345678901234, DAY)
        self.assertEqual(activity.writer.backlog, 3)
        await activity.writer.flush()
        # SADD of the event, 4 bitmaps (day, week, month, ever), the day's and ever's
        # HyperLogLogs (a week's or a month's estimate counts the union of its days), and the
        # ids' script.
        self.assertEqual(activity.writer.calls_sent, 8)
        for suffix in ("2026-3-4", "W2026-10", "2026-3", "u"):
            data = await activity.link.execute("GET", activity_key("active", suffix))
            self.assertEqual(data, b"\xe0", suffix)  # Ids 0, 1 and 2: one byte.
        self.assertEqual(await activity.link.execute("GET", USER_NEXT), b"3")
        names = set((await activity.users_of([0, 1, 2])).values())
        self.assertEqual(names, {"a" * 32, "f" * 32, "12345678901234"})
        self.assertEqual(await activity.event_names(), ["active"])

    @coroutine_test
    async def test_not_is_relative_to_the_known_users(self) -> None:
        """
        ``~active`` is the known users who were not active: not bitmapist's "every bit up to
        the last byte" (its issues #14 and #28).
        """
        activity = await self.activity()
        for user in ("a", "b", "c", "d", "e"):
            activity.mark("signup", user, DAY)
        activity.mark("active", "b", DAY)
        activity.mark("active", "d", DAY)
        await activity.writer.flush()
        day = Period.of(DAY, "day")
        inactive = ~activity.events("active", day)
        self.assertEqual(await inactive.count(), 3)
        self.assertEqual(
            set((await activity.users_of(await inactive.ids())).values()), {"a", "c", "e"}
        )
        signed_not_active = activity.events("signup", day) & ~activity.events("active", day)
        self.assertEqual(await signed_not_active.count(), 3)

    @coroutine_test
    async def test_unique_users_as_hyperloglog_estimates(self) -> None:
        """
        Each bucket also has a HyperLogLog: a month of 2,000 distinct users is estimated
        within a few percent, in one call (a year's 12 months in one call too).
        """
        activity = await self.activity()
        for user in range(2000):
            activity.mark("active", f"visitor-{user}", DAY + timedelta(days=user % 20))
        await activity.writer.flush()
        month = activity.events("active", Period.of(DAY, "month"))
        self.assertEqual(await month.count(), 2000)
        estimate = await month.estimate()
        self.assertLess(abs(estimate - 2000), 2000 * 0.05)
        year = activity.events("active", Period.of(DAY, "year"))
        self.assertEqual(await year.estimate(), estimate)

    @coroutine_test
    async def test_bad_event_names_are_named(self) -> None:
        activity = await self.activity()
        for bad in ("", "has space", "x" * 101, "-leading", "trackist_*"):
            with self.assertRaises(ValueError) as raised:
                activity.mark(bad, "someone")
            self.assertIn(repr(bad), str(raised.exception))
        with self.assertRaises(ValueError) as raised:
            activity.mark("active")
        self.assertIn("give user=", str(raised.exception))

    @coroutine_test
    async def test_cohort_table_with_and_without_replacement(self) -> None:
        """
        Flask-Bitmapist's ``get_cohort``: rows of cohorts, cells of returning users, the
        future ``None``; without replacement a user counts in the first period they return
        in only. Totals and averages add up.
        """
        activity = await self.activity()
        monday = datetime(2026, 2, 2, 9, tzinfo=UTC)
        # Week 0: a, b, c sign up; a comes back in weeks 1 and 2, b in week 2.
        for user in "abc":
            activity.mark("signup", user, monday)
            activity.mark("active", user, monday)
        activity.mark("active", "a", monday + timedelta(weeks=1))
        activity.mark("active", "a", monday + timedelta(weeks=2))
        activity.mark("active", "b", monday + timedelta(weeks=2))
        # Week 1: d signs up, active that week only.
        activity.mark("signup", "d", monday + timedelta(weeks=1))
        activity.mark("active", "d", monday + timedelta(weeks=1))
        await activity.writer.flush()
        now = monday + timedelta(weeks=2, days=1)
        options = {"time_group": "weeks", "num_rows": 3, "num_cols": 3, "now": now}
        table = await activity.cohort("signup", "active", **options)
        self.assertEqual(table.totals, [3, 1, 0])
        self.assertEqual(table.rows, [[3, 0, 0], [1, 0, None], [None, None, None]])
        again = await activity.cohort("signup", "active", with_replacement=True, **options)
        self.assertEqual(again.rows, [[3, 1, 2], [1, 0, None], [None, None, None]])
        self.assertEqual(again.row_totals, [6, 1, 0])
        self.assertEqual(again.column_totals, [4, 1, 2])
        averages = again.column_averages
        for found, expected in zip(averages, [100.0, (100 / 3 + 0) / 2, 200 / 3], strict=True):
            self.assertAlmostEqual(found, expected)
        self.assertEqual([p.label for p in again.periods], ["2026-W06", "2026-W07", "2026-W08"])

    @coroutine_test
    async def test_the_decorator_marks_the_current_requests_user(self) -> None:
        """
        ``@activity.marks(event)`` marks whoever the rendered request belongs to, at each call
        (Flask-Bitmapist's ``@mark`` took its user once, at import), and the built-in marks
        follow the site: ``active`` per request, ``user:logged_in`` at the first
        ``set_user``, ``user:logged_out`` when the application expires that session,
        ``session:started`` per clustered visit.
        """
        activity = await self.activity()

        class Page(Resource):
            isLeaf = True

            @activity.marks("page:seen")
            def render_GET(self, request: object) -> bytes:
                return b"page"

        class Login(Resource):
            isLeaf = True

            def render_GET(self, request: object) -> bytes:
                request.set_user("account-7")  # type: ignore[attr-defined]
                return b"in"

        class Logout(Resource):
            isLeaf = True

            def render_GET(self, request: object) -> bytes:
                request.getSession().expire()  # type: ignore[attr-defined]
                return b"out"

        root = Resource()
        root.putChild(b"page", Page())
        root.putChild(b"login", Login())
        root.putChild(b"logout", Logout())
        root.putChild(b"", Data(b"home", "text/plain"))
        site = Site(root, reactor=reactor)
        self.addCleanup(site.expire_all)
        clusterer = SessionClusterer(reactor, cutoff=60)
        site.add_observer(clusterer)
        clusterer.add_sink(activity)
        site.add_observer(activity)
        site.activity = activity
        cookies: dict[str, str] = {}
        visitors = []
        for path in ("/page", "/page", "/login", "/page", "/logout"):
            channel, transport = open_channel(site)
            header = "; ".join(f"{k}={v}" for k, v in cookies.items())
            channel.dataReceived(
                request_bytes("GET", path, headers={"Cookie": header} if header else None)
            )
            for line in transport.value().split(b"\r\n"):
                if line.lower().startswith(b"set-cookie:"):
                    name, _, rest = line.split(b":", 1)[1].strip().partition(b"=")
                    cookies[name.decode()] = rest.split(b";")[0].decode()
            visitors.append(cookies.get("TWISTED_VISITOR"))
            channel.connectionLost(Failure(ConnectionError("done")))
        await clusterer.flush()
        await activity.writer.flush()
        day = Period.of(datetime.fromtimestamp(reactor.seconds(), UTC), "day")
        reader = activity.reader()

        async def who(event: str) -> set[str]:
            ids = await activity.events(event, day, reader).ids()
            return set((await activity.users_of(ids)).values())

        visitor = visitors[0]
        self.assertEqual(await who("page:seen"), {visitor})
        self.assertEqual(await who("user:logged_in"), {"account-7"})
        self.assertEqual(await who("user:logged_out"), {"account-7"})
        self.assertIn(visitor, await who("active"))
        self.assertTrue(await who("session:started"))


class MarkGuaranteeTests(ActivityTestCase):
    @coroutine_test
    async def test_redis_killed_mid_load_loses_no_mark(self) -> None:
        """
        Marks made while Redis is killed and restarted (twice) are all written once it is
        back: the flushes that failed are retried whole, and SETBIT makes retries harmless.
        """
        process = RedisProcess(appendonly=True).start()
        self.addCleanup(process.stop)
        link = await self.binary_link(process)
        activity = Activity(reactor, link, flush_interval=0.05)
        activity.writer.start()
        self.addCleanup(activity.writer.stop)
        users = [f"user-{n}" for n in range(3000)]
        for chunk in range(30):
            for user in users[chunk * 100 : (chunk + 1) * 100]:
                activity.mark("active", user, DAY)
            if chunk in (10, 20):
                process.kill()
                await deferLater(reactor, 0.2, lambda: None)
                process.start()
            await deferLater(reactor, 0.02, lambda: None)
        await wait_until(lambda: link.connected, timeout=20)
        await wait_until(lambda: activity.writer.backlog == 0, timeout=20)
        self.assertEqual(activity.writer.dropped, 0)
        count = await activity.events("active", Period.of(DAY, "day")).count()
        self.assertEqual(count, 3000)

    @coroutine_test
    async def test_marks_spooled_at_shutdown_are_replayed(self) -> None:
        """
        With Redis away at shutdown, the marks go to this writer's spool file; the next start
        (on Redis again) writes them and removes the file.
        """
        spool = Path(self.mktemp()) / "activity.spool"
        away = RedisLink(
            reactor, RedisAddress(path="/nonexistent/r.sock"), deadline=0.5, binary=True
        )
        away.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(away.disconnect()))
        down = Activity(reactor, away, spool_path=spool)
        for user in range(40):
            down.mark("active", f"u{user}", DAY)
        await down.writer.flush()
        [spooled] = spool.parent.glob("activity-*.spool")
        self.assertEqual(len(json.loads(spooled.read_text().splitlines()[0])[2]), 40)
        up = await self.activity(spool_path=spool, flush_interval=0.05)
        up.writer.start()
        await wait_until(lambda: not list(spool.parent.glob("activity*.spool")))
        self.assertEqual(await up.events("active", Period.of(DAY, "month")).count(), 40)

    @coroutine_test
    async def test_a_full_backlog_drops_and_counts(self) -> None:
        """
        While Redis is away at most ``max_pending`` marks wait; further ones are dropped,
        counted and warned about, never kept without bound.
        """
        away = RedisLink(
            reactor, RedisAddress(path="/nonexistent/r.sock"), deadline=0.2, binary=True
        )
        away.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(away.disconnect()))
        activity = Activity(reactor, away, max_pending=100)
        for user in range(150):
            activity.mark("active", f"u{user}", DAY)
        self.assertEqual((activity.writer.backlog, activity.writer.dropped), (100, 50))
        await activity.writer.send()
        self.assertEqual(activity.writer.backlog, 100)


class ActiveMarkTests(ActivityTestCase):
    @coroutine_test
    async def test_clients_that_never_keep_cookies_take_no_ids(self) -> None:
        """
        ``active`` marks a visitor from their second request on (their cookie came back), and
        ``session:started`` a visit with such a request: a client that never returns cookies
        makes a new user per request, and would otherwise take a new id and Redis memory, for
        good, with each.
        """
        activity = await self.activity()
        root = Resource()
        root.putChild(b"", Data(b"home", "text/plain"))
        site = Site(root, reactor=reactor)
        self.addCleanup(site.expire_all)
        site.add_observer(activity)
        clusterer = SessionClusterer(reactor, cutoff=60)
        site.add_observer(clusterer)
        clusterer.add_sink(activity)
        for _ in range(20):  # a bot: never a cookie back
            channel, _ = open_channel(site)
            channel.dataReceived(request_bytes("GET", "/"))
            channel.connectionLost(Failure(ConnectionError("done")))
        channel, transport = open_channel(site)
        channel.dataReceived(request_bytes("GET", "/"))
        channel.connectionLost(Failure(ConnectionError("done")))
        cookie = "; ".join(
            line.split(b":", 1)[1].split(b";")[0].strip().decode()
            for line in transport.value().split(b"\r\n")
            if line.lower().startswith(b"set-cookie:")
        )
        channel, _ = open_channel(site)
        channel.dataReceived(request_bytes("GET", "/", headers={"Cookie": cookie}))
        channel.connectionLost(Failure(ConnectionError("done")))
        await clusterer.flush()  # every visit ends: the bot's 20 and the visitor's
        await activity.writer.flush()
        today = Period.of(datetime.fromtimestamp(reactor.seconds(), UTC), "day")
        self.assertEqual(await activity.events("active", today).count(), 1)
        self.assertEqual(await activity.events("session:started", today).count(), 1)
        self.assertEqual(await activity.link.execute("GET", USER_NEXT), b"1")

    @coroutine_test
    async def test_applications_small_integer_ids_are_used_as_they_are(self) -> None:
        """
        With ``integer_ids``, integer users are their own offsets (no id assigned), and NOT is
        relative to the ids marked.
        """
        activity = await self.activity(integer_ids=True)
        for user in (5, 9, 12):
            activity.mark("signup", user, DAY)
        activity.mark("active", 9, DAY)
        await activity.writer.flush()
        day = Period.of(DAY, "day")
        self.assertEqual(await activity.events("signup", day).ids(), [5, 9, 12])
        self.assertEqual(await (~activity.events("active", day)).ids(), [5, 12])
        self.assertEqual(activity.ids.assigned_calls, 0)
