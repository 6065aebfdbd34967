"""
Our Session: a real inactivity timeout, reliable hooks, per-session state, absolute lifetime.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import server as stock
from twisted.web.resource import Resource
from zope.interface import implementer

from twisted_sessions import EndReason, ISessionObserver, Session, SessionSummary, Site
from twisted_sessions.web.session import session_key

from ..http import Browser


class ShortSession(Session):
    sessionTimeout = 60


class _SessionPage(Resource):
    """
    A page that uses its web session (``getSession``): the session exists from the first
    request on, as in an application that keeps per-session state.
    """

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.getSession()
        return b"hello"


def page() -> Resource:
    return _SessionPage()


def clock_at(start: float = 1_000_000.0) -> Clock:
    clock = Clock()
    clock.advance(start)
    return clock


@implementer(ISessionObserver)
class SessionRecorder:
    def __init__(self) -> None:
        self.ended: list[SessionSummary] = []

    def session_ended(self, summary: SessionSummary) -> None:
        self.ended.append(summary)


class InactivityTimeoutTests(SynchronousTestCase):
    def test_subclass_timeout_expires_idle_session(self) -> None:
        """
        A subclass's ``sessionTimeout`` is how long a session lives without requests: it is
        alive just before, and gone at exactly the timeout (a gap of the timeout ends it).
        """
        clock = clock_at()
        site = Site(page(), reactor=clock)
        site.sessionFactory = ShortSession
        browser = Browser(site)
        browser.get("/")
        self.assertEqual(len(site.sessions), 1)
        clock.advance(59.999)
        self.assertEqual(len(site.sessions), 1)
        clock.advance(0.001)
        self.assertEqual(len(site.sessions), 0)

    def test_requests_with_cookie_keep_session_alive(self) -> None:
        """
        Every request carrying the cookie touches the session: a visitor coming back every
        50 s keeps one session for five minutes, and it ends 60 s after the last visit.
        """
        clock = clock_at()
        site = Site(page(), reactor=clock)
        site.sessionFactory = ShortSession
        browser = Browser(site)
        browser.get("/")
        first = browser.cookies["TWISTED_SESSION"]
        for _ in range(6):
            clock.advance(50)
            response = browser.get("/")
            self.assertIsNone(response.cookie("TWISTED_SESSION"), "no new session was needed")
        self.assertEqual(browser.cookies["TWISTED_SESSION"], first)
        session = next(iter(site.sessions.values()))
        self.assertEqual(session.request_count, 7)
        clock.advance(59)
        self.assertEqual(len(site.sessions), 1)
        clock.advance(1)
        self.assertEqual(len(site.sessions), 0)

    def test_stock_twisted_session_dies_at_fixed_age(self) -> None:
        """
        The difference we fix: stock Twisted does not touch a session found by cookie, so
        the same visitor pattern loses its session 60 s after it was created.
        """

        class StockShort(stock.Session):
            sessionTimeout = 60

        class Visit(Resource):
            isLeaf = True

            def render_GET(self, request: Any) -> bytes:
                request.getSession()
                return b"ok"

        clock = clock_at()
        site = stock.Site(Visit(), reactor=clock)
        site.sessionFactory = StockShort
        browser = Browser(site)
        browser.get("/")
        first = browser.cookies["TWISTED_SESSION"]
        clock.advance(50)
        browser.get("/")
        clock.advance(50)
        browser.get("/")
        self.assertNotEqual(browser.cookies["TWISTED_SESSION"], first)

    def test_site_setting_overrides_class_timeout(self) -> None:
        """
        ``Site(session_timeout=...)`` (the ``--session-timeout`` option) applies to every
        session of the Site, whatever the session class says.
        """
        clock = clock_at()
        site = Site(page(), reactor=clock, session_timeout=10)
        site.sessionFactory = ShortSession
        Browser(site).get("/")
        clock.advance(10)
        self.assertEqual(len(site.sessions), 0)

    def test_shortened_timeout_of_a_live_session_applies_from_its_next_request(self) -> None:
        """
        An application may shorten one session's timeout (say, for a sensitive page): from its
        next request on the session ends that much after its last request, not at the deadline
        it had before.
        """
        clock = clock_at()
        site = Site(page(), reactor=clock)
        browser = Browser(site)
        browser.get("/")
        session = next(iter(site.sessions.values()))
        session.sessionTimeout = 30
        clock.advance(10)
        browser.get("/")
        self.assertEqual(session.expires_at, 1_000_040.0)
        clock.advance(29.9)
        self.assertFalse(session.ended)
        clock.advance(0.1)
        self.assertTrue(session.ended)

    def test_default_timeout_is_fifteen_minutes(self) -> None:
        """
        Without any setting a session lives 900 s without requests.
        """
        clock = clock_at()
        site = Site(page(), reactor=clock)
        Browser(site).get("/")
        clock.advance(899)
        self.assertEqual(len(site.sessions), 1)
        clock.advance(1)
        self.assertEqual(len(site.sessions), 0)


class HookTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = clock_at()
        self.site = Site(page(), reactor=self.clock)
        self.session = self.site.makeSession()

    def test_raising_hook_does_not_stop_others(self) -> None:
        """
        Every hook runs even if an earlier one raises; the failure is logged with its
        traceback.
        """
        calls: list[str] = []

        def broken() -> None:
            calls.append("broken")
            raise RuntimeError("hook bug")

        self.session.notifyOnExpire(lambda: calls.append("first"))
        self.session.notifyOnExpire(broken)
        self.session.notifyOnExpire(lambda: calls.append("last"))
        self.session.expire()
        self.assertEqual(calls, ["first", "broken", "last"])
        [logged] = self.flushLoggedErrors(RuntimeError)
        self.assertEqual(str(logged.value), "hook bug")

    def test_expire_twice_is_harmless(self) -> None:
        """
        ``expire()`` a second time does nothing: hooks ran once, no error.
        """
        calls: list[int] = []
        self.session.notifyOnExpire(lambda: calls.append(1))
        self.session.expire()
        self.session.expire()
        self.assertEqual(calls, [1])
        self.assertNotIn(self.session.uid, self.site.sessions)

    def test_hook_may_touch_and_register_hooks(self) -> None:
        """
        A hook may touch the session (it stays expired) and register another hook (which
        runs too); the expiry timer does not fire again.
        """
        calls: list[str] = []

        def touching() -> None:
            self.session.touch()
            self.session.notifyOnExpire(lambda: calls.append("late"))
            calls.append("touching")

        self.session.notifyOnExpire(touching)
        self.clock.advance(900)
        self.assertEqual(calls, ["touching", "late"])
        self.assertTrue(self.session.ended)
        self.clock.advance(10_000)
        self.assertEqual(calls, ["touching", "late"])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_hook_registered_after_expiry_runs_at_once(self) -> None:
        """
        A hook registered on an already expired session is not silently lost.
        """
        self.session.expire()
        calls: list[int] = []
        self.session.notifyOnExpire(lambda: calls.append(1))
        self.assertEqual(calls, [1])

    def test_observer_hears_why_session_ended(self) -> None:
        """
        After the hooks, the Site's session observers get the session's summary and reason.
        """
        recorder = SessionRecorder()
        self.site.add_observer(recorder)
        hooks: list[int] = []
        self.session.notifyOnExpire(lambda: hooks.append(len(recorder.ended)))
        self.clock.advance(900)
        self.assertEqual(hooks, [0], "hooks run before observers")
        [summary] = recorder.ended
        self.assertEqual(summary.reason, EndReason.IDLE)
        self.assertEqual(summary.session_key, self.session.key)
        self.assertEqual(summary.started, 1_000_000.0)
        self.assertEqual(summary.ended, 1_000_900.0)


class LifetimeTests(SynchronousTestCase):
    def test_max_session_age_expires_active_session(self) -> None:
        """
        With ``max_session_age`` an active session is expired at that age, through the
        normal path (hooks run), with the reason MAX_AGE.
        """
        clock = clock_at()
        site = Site(page(), reactor=clock, max_session_age=100)
        recorder = SessionRecorder()
        site.add_observer(recorder)
        browser = Browser(site)
        browser.get("/")
        session = next(iter(site.sessions.values()))
        hooks: list[int] = []
        session.notifyOnExpire(lambda: hooks.append(1))
        for _ in range(9):
            clock.advance(10)
            browser.get("/")
        self.assertEqual(len(site.sessions), 1)
        clock.advance(10)
        self.assertEqual(len(site.sessions), 0)
        self.assertEqual(hooks, [1])
        self.assertEqual([s.reason for s in recorder.ended], [EndReason.MAX_AGE])
        browser.get("/")
        self.assertEqual(len(site.sessions), 1, "the visitor gets a fresh session")

    def test_session_knows_start_activity_and_requests(self) -> None:
        """
        A session knows when it started, when it was last active and how many requests it
        served.
        """
        clock = clock_at()
        site = Site(page(), reactor=clock)
        browser = Browser(site)
        browser.get("/")
        clock.advance(30)
        browser.get("/")
        clock.advance(12)
        browser.get("/")
        session = next(iter(site.sessions.values()))
        self.assertEqual(session.started, 1_000_000.0)
        self.assertEqual(session.last_active, 1_000_042.0)
        self.assertEqual(session.request_count, 3)

    def test_stock_seed_style_standalone_session(self) -> None:
        """
        A session made without a Site (as in the tutorial's adaption example) works when
        given a clock, and its state is kept by adaption.
        """
        from examples.counter import ICounter

        session = Session(None, None, reactor=Clock())
        data = ICounter(session)
        self.assertIs(data, ICounter(session))
        self.assertEqual(data.value, 0)


def expiry_timers(clock: Clock) -> list[str]:
    """
    The names of the pending expiry timers (per-session checks and the Site's sweep).
    """
    names = [getattr(call.func, "__name__", "") for call in clock.getDelayedCalls()]
    return [name for name in names if name in ("_sweep", "_deadline_reached")]


class OneTimerTests(SynchronousTestCase):
    def test_sessions_sharing_a_timeout_share_one_timer(self) -> None:
        """
        However many sessions are live, those sharing the Site's timeout (and absolute
        lifetime, if any) cost one pending timer, not one each; a session whose settings
        differ keeps its own.
        """
        clock = clock_at()
        site = Site(page(), reactor=clock)
        aged = Site(page(), reactor=clock, max_session_age=60)
        for _ in range(50):
            Browser(site).get("/")
            Browser(aged).get("/")
            clock.advance(1)
        self.assertEqual(expiry_timers(clock), ["_sweep", "_sweep"])
        browser = Browser(site)
        browser.get("/")
        site.sessions[browser.cookies["TWISTED_SESSION"].encode()].sessionTimeout = 1800
        browser.get("/")
        self.assertEqual(sorted(expiry_timers(clock)), ["_deadline_reached", "_sweep", "_sweep"])
        clock.advance(1800)
        self.assertEqual((len(site.sessions), len(aged.sessions)), (0, 0))
        self.assertEqual(expiry_timers(clock), [], "no timer is left once all have ended")

    def test_a_lengthened_timeout_does_not_hold_back_the_others(self) -> None:
        """
        A session given a longer timeout, even before its next request, does not delay the
        expiry of the sessions after it: it gets a timer of its own, and ends on its own.
        """
        clock = clock_at()
        site = Site(page(), reactor=clock, session_timeout=60)
        first, second = Browser(site), Browser(site)
        first.get("/")
        clock.advance(10)
        second.get("/")
        long_lived = site.sessions[first.cookies["TWISTED_SESSION"].encode()]
        long_lived.sessionTimeout = 600
        clock.advance(60)
        self.assertEqual(list(site.sessions.values()), [long_lived])
        clock.advance(529.9)
        self.assertFalse(long_lived.ended)
        clock.advance(0.1)
        self.assertTrue(long_lived.ended)

    def test_lifetime_and_idle_expiry_match_the_model(self) -> None:
        """
        With a Site-wide absolute lifetime too, seeded random traffic: at every step a session
        is alive exactly while it is younger than the lifetime and less than the timeout has
        passed since its last request; it ended for its age or its idleness, whichever came
        first (its age when both did), its hooks run once.
        """
        reasons: set[EndReason] = set()
        for seed in range(20):
            rng = random.Random(seed)
            clock = clock_at()
            site = Site(page(), reactor=clock, session_timeout=30, max_session_age=70)
            recorder = SessionRecorder()
            site.add_observer(recorder)
            browsers = [Browser(site) for _ in range(8)]
            started: dict[bytes, float] = {}
            last_request: dict[bytes, float] = {}
            for _ in range(150):
                browser = rng.choice(browsers)
                browser.get("/")
                uid = browser.cookies["TWISTED_SESSION"].encode()
                started.setdefault(uid, clock.seconds())
                last_request[uid] = clock.seconds()
                clock.advance(rng.choice([0, 1, 4, 12, 29, 30, 31, 50, 70]))
                now = clock.seconds()
                for known, last in last_request.items():
                    alive = now - last < 30 and now - started[known] < 70
                    self.assertEqual(known in site.sessions, alive, (seed, known, now))
            expected = {}
            for uid, last in last_request.items():
                if uid not in site.sessions:
                    aged_out = started[uid] + 70 <= last + 30
                    expected[session_key(uid)] = EndReason.MAX_AGE if aged_out else EndReason.IDLE
            ended = {s.session_key: s.reason for s in recorder.ended}
            self.assertEqual(ended, expected, seed)
            reasons.update(ended.values())
        self.assertEqual(reasons, {EndReason.MAX_AGE, EndReason.IDLE}, "both limits reached")

    def test_expiry_matches_the_model_under_random_traffic(self) -> None:
        """
        Seeded random traffic of many visitors (requests, idle spells, some sessions given
        another timeout while handling a request): at every step a session is alive exactly
        while less than its timeout has passed since its last request, and its hooks ran
        exactly when it ended. A timeout changed after a request applies from the next request
        if shorter (the request was served under the old one), at once if longer.
        """
        for seed in range(20):
            rng = random.Random(seed)
            clock = clock_at()
            site = Site(page(), reactor=clock, session_timeout=30)
            browsers = [Browser(site) for _ in range(8)]
            last_request: dict[bytes, float] = {}
            timeouts: dict[bytes, float] = {}
            served_under: dict[bytes, float] = {}
            ended: set[bytes] = set()
            for _ in range(120):
                browser = rng.choice(browsers)
                browser.get("/")
                uid = browser.cookies["TWISTED_SESSION"].encode()
                last_request[uid] = clock.seconds()
                session = site.sessions[uid]
                if uid not in timeouts:
                    session.notifyOnExpire(lambda uid=uid, ended=ended: ended.add(uid))  # type: ignore[misc]
                    timeouts[uid] = 30
                served_under[uid] = timeouts[uid]
                if rng.random() < 0.1:
                    timeouts[uid] = session.sessionTimeout = rng.choice([5, 45])
                clock.advance(rng.choice([0, 1, 4, 12, 29, 30, 31, 50]))
                now = clock.seconds()
                for known, last in last_request.items():
                    alive = now - last < max(timeouts[known], served_under[known])
                    self.assertEqual(known in site.sessions, alive, (seed, known, now, last))
                    self.assertEqual(known in ended, not alive, (seed, known))
