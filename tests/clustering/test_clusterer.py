"""
The clusterer in the server: fed by a real Site's requests, driven by the reactor clock.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.static import Data
from zope.interface.verify import verifyObject

from twisted_sessions import IFlushable, IRequestObserver, ISessionObserver, Site
from twisted_sessions.clustering import Session, SessionClusterer
from twisted_sessions.events import RequestEvent

from ..http import Browser


class Logout(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.getSession().expire()
        return b"bye"


def make(cutoff: float = 600, **bounds: int) -> tuple[Site, SessionClusterer, list[Session], Clock]:
    clock = Clock()
    clock.advance(1_000_000)
    root = Resource()
    root.putChild(b"", Data(b"home", "text/plain"))
    root.putChild(b"page", Data(b"page", "text/plain"))
    root.putChild(b"logout", Logout())
    site = Site(root, reactor=clock, session_timeout=300)
    clusterer = SessionClusterer(clock, cutoff=cutoff, **bounds)
    site.add_observer(clusterer)
    finished: list[Session] = []
    clusterer.add_sink(finished.append)
    return site, clusterer, finished, clock


class ClusteringTests(SynchronousTestCase):
    def test_session_ends_on_the_clock_without_another_request(self) -> None:
        """
        A visitor's requests less than the cutoff apart form one clustered session, delivered
        as soon as the clock passes last request + cutoff, with no further request needed.
        """
        site, clusterer, finished, clock = make(cutoff=600)
        browser = Browser(site)
        browser.get("/")
        clock.advance(400)
        browser.get("/page")
        clock.advance(599)
        self.assertEqual(finished, [])
        self.assertEqual(clusterer.active_count, 1)
        clock.advance(1)
        [session] = finished
        self.assertEqual([e.path for e in session.events], ["/", "/page"])
        self.assertTrue(all(isinstance(e, RequestEvent) for e in session.events))
        self.assertEqual(session.user, browser.cookies["TWISTED_VISITOR"])
        self.assertEqual((session.start, session.end), (1_000_000, 1_000_400))
        self.assertEqual(clusterer.active_count, 0)

    def test_web_sessions_do_not_cut_a_visit(self) -> None:
        """
        The web session expiring (idle for its timeout) does not end the clustered session:
        the visitor comes back within the cutoff, with a new web session, same visit.
        """
        site, _, finished, clock = make(cutoff=600)
        browser = Browser(site)
        browser.get("/")
        clock.advance(500)
        browser.get("/page")
        clock.advance(600)
        [session] = finished
        self.assertEqual(session.event_count, 2)
        self.assertEqual(len({e.session_key for e in session.events}), 2)

    def test_visits_after_the_cutoff_are_new_sessions(self) -> None:
        """
        Returning after the cutoff starts the user's next session (index 1).
        """
        site, _, finished, clock = make(cutoff=600)
        browser = Browser(site)
        browser.get("/")
        clock.advance(700)
        browser.get("/")
        clock.advance(600)
        self.assertEqual([s.user_index for s in finished], [0, 1])

    def test_logout_ends_the_visit_at_once(self) -> None:
        """
        A web session the application expires (logout) ends the user's clustered session now.
        """
        site, _, finished, clock = make()
        browser = Browser(site)
        browser.get("/")
        clock.advance(5)
        browser.get("/logout")
        clock.advance(0)
        self.assertEqual(len(finished), 1)
        self.assertEqual([e.path for e in finished[0].events], ["/", "/logout"])

    def test_flush_delivers_open_sessions(self) -> None:
        """
        ``flush()`` (shutdown) finishes and delivers every open session, and no timer is left.
        """
        site, clusterer, finished, clock = make()
        Browser(site).get("/")
        Browser(site).get("/")
        self.successResultOf(clusterer.flush())
        self.assertEqual(len(finished), 2)
        self.assertEqual([c for c in clock.getDelayedCalls() if "_tick" in repr(c)], [])

    def test_failing_sink_is_isolated(self) -> None:
        """
        A sink that raises is logged; the next sink still gets the session.
        """
        site, clusterer, finished, clock = make()
        after: list[Session] = []

        def broken(session: Session) -> None:
            raise RuntimeError("sink bug")

        clusterer.add_sink(broken)
        clusterer.add_sink(after.append)
        Browser(site).get("/")
        clock.advance(600)
        self.assertEqual((len(finished), len(after)), (1, 1))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_sink_must_be_callable(self) -> None:
        """
        Attaching something that cannot take sessions is a TypeError naming it.
        """
        _, clusterer, _, _ = make()
        with self.assertRaises(TypeError):
            clusterer.add_sink(42)  # type: ignore[arg-type]

    def test_provides_its_interfaces(self) -> None:
        """
        The clusterer provides the seams it is plugged into.
        """
        _, clusterer, _, _ = make()
        for interface in (IRequestObserver, ISessionObserver, IFlushable):
            self.assertTrue(verifyObject(interface, clusterer))

    def test_open_sessions_are_bounded(self) -> None:
        """
        Past ``max_open`` open visits (a flood of cookieless clients), the visit that would end
        first is delivered at once, counted, and warned about once a minute, not per request.
        """
        site, clusterer, finished, clock = make(max_open=2)
        warnings: list[dict[str, Any]] = []
        observer = warnings.append
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        for _ in range(5):
            Browser(site).get("/")
            clock.advance(1)
        self.assertEqual(clusterer.active_count, 2)
        self.assertEqual((clusterer.evicted_count, len(finished)), (3, 3))
        self.assertEqual([s.start for s in finished], [1_000_000, 1_000_001, 1_000_002])
        evicted = [w for w in warnings if "end early" in w.get("log_format", "")]
        self.assertEqual(len(evicted), 1)
        self.assertEqual(evicted[0]["evicted"], 1)

    def test_a_hammering_visitor_keeps_bounded_events(self) -> None:
        """
        One visitor's many requests within the cutoff are one visit whose count, start and end
        are exact, keeping only its first ``max_events`` requests.
        """
        site, clusterer, finished, clock = make(max_events=3)
        browser = Browser(site)
        for number in range(10):
            browser.get(f"/page/{number}")
            clock.advance(1)
        self.successResultOf(clusterer.flush())
        [visit] = finished
        self.assertEqual(visit.event_count, 10)
        self.assertEqual([e.path for e in visit.events], ["/page/0", "/page/1", "/page/2"])
        self.assertEqual(visit.duration, 9)
