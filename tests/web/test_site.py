"""
Our Site: hardened cookies, the visitor identity, the session cap, and request events.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.static import Data
from twisted.web.test.requesthelper import DummyRequest
from zope.interface import implementer

from twisted_sessions import (
    CookiePolicy,
    EndReason,
    IRequestObserver,
    RequestEvent,
    Site,
)
from twisted_sessions.web import request as tracked_request
from twisted_sessions.web.request import path_names
from twisted_sessions.web.session import session_key

from ..http import Browser, get, open_channel, parse_response, request_bytes
from ..recorder import Recorder


class Slow(Resource):
    """
    Answers only when the test says so, to measure durations and aborts.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[Any] = []

    def render_GET(self, request: Any) -> object:
        self.pending.append(request)
        return NOT_DONE_YET


class Me(Resource):
    """
    Sets the application's own user identity from a query argument.
    """

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        name = request.args.get(b"name", [b""])[0].decode()
        if name:
            request.set_user(name)
        return b"hi"


class UsesSession(Resource):
    """
    A page that asks for its web session: the session exists from the first request on.
    """

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.getSession()
        return b"hello"


def make_site(clock: Clock | None = None, **settings: Any) -> tuple[Site, Recorder, Slow]:
    root = Resource()
    slow = Slow()
    root.putChild(b"", Data(b"hello", "text/plain"))
    root.putChild(b"slow", slow)
    root.putChild(b"me", Me())
    root.putChild(b"session", UsesSession())
    if clock is None:
        clock = Clock()
        clock.advance(5_000)
    site = Site(root, reactor=clock, **settings)
    recorder = Recorder()
    site.add_observer(recorder)
    return site, recorder, slow


class CookieTests(SynchronousTestCase):
    def test_cookies_are_httponly_and_samesite_lax(self) -> None:
        """
        Both cookies are HttpOnly and SameSite=Lax and not Secure over plain HTTP; the visitor
        cookie lives two years, the session cookie for the browser session.
        """
        site, _, _ = make_site()
        response = get(site, "/")
        session_cookie = response.set_cookies["TWISTED_SESSION"]
        visitor_cookie = response.set_cookies["TWISTED_VISITOR"]
        for raw in (session_cookie, visitor_cookie):
            self.assertIn("HttpOnly", raw)
            self.assertIn("SameSite=Lax", raw)
            self.assertNotIn("Secure", raw)
            self.assertIn("Path=/", raw)
        self.assertIn("Max-Age=63072000", visitor_cookie)
        self.assertNotIn("Max-Age", session_cookie)

    def test_cookies_are_secure_over_tls(self) -> None:
        """
        Over TLS both cookies carry the Secure attribute.
        """
        site, _, _ = make_site()
        response = get(site, "/", secure=True)
        self.assertIn("Secure", response.set_cookies["TWISTED_SESSION"])
        self.assertIn("Secure", response.set_cookies["TWISTED_VISITOR"])

    def test_cookie_names_are_configurable(self) -> None:
        """
        The session and visitor cookie names come from the CookiePolicy.
        """
        site, _, _ = make_site(cookies=CookiePolicy(session_cookie="sid", visitor_cookie="vid"))
        browser = Browser(site)
        browser.get("/")
        self.assertEqual(set(browser.cookies), {"sid", "vid"})
        browser.get("/")
        self.assertEqual(len(site.sessions), 1)

    def test_bad_session_cookies_get_a_fresh_session(self) -> None:
        """
        An unknown, empty, oversized or malformed session cookie value never causes an error:
        the client gets a 200 and a fresh session id, never the value it sent.
        """
        site, _, _ = make_site()
        known = Browser(site)
        known.get("/")
        uid = known.cookies["TWISTED_SESSION"]
        for value in ["", "0" * 64, uid.upper(), uid + "0", "x" * 10_000, "%00%ff", uid[:-1]]:
            response = get(site, "/", cookies={"TWISTED_SESSION": value})
            self.assertEqual(response.status, 200, value[:20])
            fresh = response.cookie("TWISTED_SESSION")
            self.assertIsNotNone(fresh, value[:20])
            self.assertNotEqual(fresh, value)
            self.assertNotEqual(fresh, uid)

    def test_session_ids_are_unguessable_and_unique(self) -> None:
        """
        Each new session gets a distinct 256-bit random id.
        """
        site, _, _ = make_site()
        ids = {get(site, "/").cookie("TWISTED_SESSION") for _ in range(200)}
        self.assertEqual(len(ids), 200)
        for uid in ids:
            assert uid is not None
            self.assertRegex(uid, "^[0-9a-f]{64}$")


class VisitorTests(SynchronousTestCase):
    def test_visitor_identifies_user_across_web_sessions(self) -> None:
        """
        After the web session expired, the returning visitor gets a new web session but keeps
        its visitor id, so its requests are attributed to the same user.
        """
        clock = Clock()
        site, recorder, _ = make_site(clock, session_timeout=60)
        browser = Browser(site)
        browser.get("/")
        clock.advance(120)
        browser.get("/")
        first, second = recorder.requests
        self.assertNotEqual(first.session_key, second.session_key)
        self.assertEqual(first.user, second.user)
        self.assertEqual(first.user, browser.cookies["TWISTED_VISITOR"])

    def test_new_users_are_flagged(self) -> None:
        """
        A request whose visitor cookie did not come back made its user (``new_user``); the
        next, cookie returned, did not; a forged cookie is a new user; an application account
        is never one. Without visitor cookies, a request without a live session's cookie is.
        """
        site, recorder, _ = make_site()
        browser = Browser(site)
        browser.get("/")
        browser.get("/")
        get(site, "/", cookies={"TWISTED_VISITOR": "forged"})
        Browser(site).get("/me?name=alice")
        self.assertEqual([e.new_user for e in recorder.requests], [True, False, True, False])
        site, recorder, _ = make_site(cookies=CookiePolicy(visitor_cookie=None))
        browser = Browser(site)
        browser.get("/")
        browser.get("/")
        self.assertEqual([e.new_user for e in recorder.requests], [True, False])

    def test_forged_visitor_id_is_replaced(self) -> None:
        """
        A visitor cookie that does not have the issued shape is replaced, never used as a user.
        """
        site, recorder, _ = make_site()
        response = get(site, "/", cookies={"TWISTED_VISITOR": "admin"})
        self.assertNotEqual(recorder.requests[0].user, "admin")
        self.assertEqual(recorder.requests[0].user, response.cookie("TWISTED_VISITOR"))

    @given(
        st.binary(max_size=40)
        | st.text(alphabet="0123456789abcdef", min_size=30, max_size=34).map(str.encode)
        | st.builds(
            lambda digits, at, odd: (digits[:at] + odd + digits[at + 1 :]).encode(),
            st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
            st.sampled_from([0, 31]) | st.integers(0, 31),
            st.sampled_from(["A", "F", "g", " ", "\t", ";", "=", "é"]),
        )
    )
    def test_visitor_id_shape(self, value: bytes) -> None:
        """
        A visitor cookie is taken exactly when it is 32 lowercase hex digits, the shape the
        server issues: anything else (upper case, a digit short, spaces...) is not a visitor.
        """
        request = DummyRequest([b""])
        request.received_cookies = {b"TWISTED_VISITOR": value}
        _, visitor = CookiePolicy().read_ids(request)  # type: ignore[arg-type]
        if re.fullmatch(rb"[0-9a-f]{32}", value):
            self.assertEqual(visitor, value.decode("ascii"))
        else:
            self.assertIsNone(visitor)

    def test_application_identity_wins(self) -> None:
        """
        ``request.set_user(...)`` attributes the request (and the session) to the
        application's user; otherwise the Site's ``identify_user`` decides, then the visitor.
        """
        site, recorder, _ = make_site(
            identify_user=lambda request: "api-client" if request.path == b"/" else None
        )
        browser = Browser(site)
        browser.get("/me?name=alice")
        browser.get("/")
        browser.get("/me")
        users = [event.user for event in recorder.requests]
        self.assertEqual(users, ["alice", "api-client", browser.cookies["TWISTED_VISITOR"]])
        session = next(iter(site.sessions.values()))
        self.assertEqual(session.user, browser.cookies["TWISTED_VISITOR"])

    def test_basic_auth_user_still_available(self) -> None:
        """
        Tracking does not shadow Twisted's own ``request.getUser()`` (HTTP basic auth).
        """
        seen: list[bytes] = []

        class Whoami(Resource):
            isLeaf = True

            def render_GET(self, request: Any) -> bytes:
                seen.append(request.getUser())
                return b"ok"

        site = Site(Whoami(), reactor=Clock())
        channel, _ = open_channel(site)
        channel.dataReceived(request_bytes(headers={"Authorization": "Basic YWxpY2U6cHc="}))
        self.assertEqual(seen, [b"alice"])

    def test_visitor_cookie_off_makes_session_the_user(self) -> None:
        """
        With the visitor cookie off, no visitor cookie is set and each web session is a user.
        """
        site, recorder, _ = make_site(cookies=CookiePolicy(visitor_cookie=None))
        browser = Browser(site)
        browser.get("/")
        browser.get("/")
        self.assertEqual(set(browser.cookies), {"TWISTED_SESSION"})
        self.assertEqual({e.user for e in recorder.requests}, {recorder.requests[0].session_key})


class CapTests(SynchronousTestCase):
    def test_cookieless_clients_cost_no_session(self) -> None:
        """
        A client that never returns the cookie is handed a session id per request, and no
        session: nothing is kept, nothing evicted, and each request is reported with the key
        of the id it was handed.
        """
        site, recorder, _ = make_site(max_sessions=100)
        responses = [get(site, "/") for _ in range(1_000)]
        self.assertEqual(len(site.sessions), 0)
        self.assertEqual(site.sessions_evicted, 0)
        self.assertEqual(recorder.sessions, [])
        keys = [event.session_key for event in recorder.requests]
        self.assertEqual(len(set(keys)), 1_000)
        uid = responses[0].cookie("TWISTED_SESSION")
        assert uid is not None
        self.assertEqual(keys[0], session_key(uid.encode()))

    def test_the_session_exists_once_its_cookie_comes_back(self) -> None:
        """
        The id a first response handed out, sent back, makes the session: begun with that
        first request (its start, its count), with the same key in both requests' events.
        """
        clock = Clock()
        clock.advance(5_000)
        site, recorder, _ = make_site(clock)
        browser = Browser(site)
        browser.get("/")
        self.assertEqual(len(site.sessions), 0)
        clock.advance(30)
        browser.get("/")
        [session] = site.sessions.values()
        self.assertEqual(session.uid, browser.cookies["TWISTED_SESSION"].encode())
        self.assertEqual((session.started, session.last_active), (5_000, 5_030))
        self.assertEqual(session.request_count, 2)
        self.assertEqual(len({e.session_key for e in recorder.requests}), 1)
        self.assertEqual(recorder.requests[0].session_key, session.key)

    def test_only_fresh_ids_of_this_server_come_back_as_sessions(self) -> None:
        """
        An id this server did not issue (forged, or another process's), one older than the
        session timeout, and one whose session ended (a logout) are new clients: they get a
        new id and no session.
        """
        clock = Clock()
        clock.advance(5_000)
        site, _, _ = make_site(clock, session_timeout=60)
        other, _, _ = make_site(clock, session_timeout=60)
        foreign = get(other, "/").cookie("TWISTED_SESSION")
        stale = get(site, "/").cookie("TWISTED_SESSION")
        ended = get(site, "/session").cookie("TWISTED_SESSION")
        assert foreign is not None and stale is not None and ended is not None
        [session] = site.sessions.values()
        session.expire()
        clock.advance(60)
        forged = "0" * 64
        for uid in (foreign, stale, forged, ended):
            response = get(site, "/", cookies={"TWISTED_SESSION": uid})
            self.assertNotEqual(response.cookie("TWISTED_SESSION"), uid)
        self.assertEqual(len(site.sessions), 0)
        # Within the timeout, an ended session's id stays refused.
        clock.advance(-60)
        response = get(site, "/", cookies={"TWISTED_SESSION": ended})
        self.assertNotEqual(response.cookie("TWISTED_SESSION"), ended)
        self.assertEqual(len(site.sessions), 0)

    def test_sessions_in_use_are_capped(self) -> None:
        """
        A page that uses its session makes one at every first request; the Site keeps at most
        ``max_sessions``, the evicted ones going through the normal expiry.
        """
        site, recorder, _ = make_site(max_sessions=100)
        for _ in range(1_000):
            get(site, "/session")
        self.assertEqual(len(site.sessions), 100)
        self.assertEqual(len(recorder.sessions), 900)
        self.assertEqual({s.reason for s in recorder.sessions}, {EndReason.EVICTED})
        self.assertEqual(site.sessions_evicted, 900)

    def test_least_recently_active_session_is_evicted(self) -> None:
        """
        At the cap the session evicted is the one idle longest, not the oldest: a visitor who
        keeps coming back keeps its session.
        """
        clock = Clock()
        site, _, _ = make_site(clock, max_sessions=3)
        loyal = Browser(site)
        loyal.get("/session")
        hooks: list[str] = []
        next(iter(site.sessions.values())).notifyOnExpire(lambda: hooks.append("loyal"))
        for _ in range(10):
            clock.advance(1)
            get(site, "/session")
            clock.advance(1)
            loyal.get("/session")
        self.assertEqual(len(site.sessions), 3)
        self.assertEqual(hooks, [])
        self.assertIn(loyal.cookies["TWISTED_SESSION"].encode(), site.sessions)

    def test_cookieless_flood_spares_returning_users(self) -> None:
        """
        At the cap, sessions whose cookie never came back (a crawler: one per request) are
        evicted first: a user who came back keeps the session even when idle longest; among
        users who all came back, the least recently active goes.
        """
        clock = Clock()
        site, _, _ = make_site(clock, max_sessions=4)
        returning = [Browser(site) for _ in range(2)]
        for browser in returning:
            browser.get("/session")
            clock.advance(1)
            browser.get("/session")
        hooks: list[bytes] = []
        for uid, session in site.sessions.items():
            session.notifyOnExpire(lambda uid=uid: hooks.append(uid))
        for _ in range(20):  # The crawler: its sessions take the two other places in turn.
            clock.advance(1)
            get(site, "/session")
        self.assertEqual(hooks, [])
        self.assertEqual(site.sessions_evicted, 18)
        kept = {b.cookies["TWISTED_SESSION"].encode() for b in returning}
        self.assertLessEqual(kept, set(site.sessions))
        # Users who come back leave the crawler's ranks (each newcomer's first request takes
        # a crawler session's place)...
        for newcomer in (Browser(site), Browser(site)):
            newcomer.get("/session")
            clock.advance(1)
            newcomer.get("/session")
        # ...and with no crawler session left, the least recently active user goes.
        clock.advance(1)
        get(site, "/session")
        first = returning[0].cookies["TWISTED_SESSION"].encode()
        self.assertEqual(hooks, [first])
        self.assertNotIn(first, site.sessions)


class RequestEventTests(SynchronousTestCase):
    def test_event_describes_the_request(self) -> None:
        """
        On finish the Site reports user, arrival time, method, path without query, status,
        duration and a session key that is not the cookie value.
        """
        clock = Clock()
        clock.advance(1_700_000_000)
        site, recorder, slow = make_site(clock)
        channel, transport = open_channel(site)
        channel.dataReceived(request_bytes("GET", "/slow?x=1"))
        clock.advance(0.25)
        request = slow.pending.pop()
        request.setResponseCode(201)
        request.write(b"done")
        request.finish()
        [event] = recorder.requests
        response = parse_response(transport.value())
        self.assertEqual(event.user, response.cookie("TWISTED_VISITOR"))
        self.assertEqual(event.timestamp, 1_700_000_000)
        self.assertEqual((event.method, event.path, event.status), ("GET", "/slow", 201))
        self.assertAlmostEqual(event.duration, 0.25)
        self.assertFalse(event.aborted)
        uid = response.cookie("TWISTED_SESSION")
        assert uid is not None
        # No session yet (the cookie has not come back): the key of the id handed out.
        self.assertEqual(event.session_key, session_key(uid.encode()))
        self.assertNotIn(event.session_key, uid)

    def test_not_found_and_methods_are_reported(self) -> None:
        """
        Error responses are reported with their status, and the method as sent.
        """
        site, recorder, _ = make_site()
        get(site, "/missing")
        get(site, "/", method="POST")
        self.assertEqual(
            [(e.method, e.path, e.status) for e in recorder.requests],
            [("GET", "/missing", 404), ("POST", "/", 405)],
        )

    def test_aborted_request_is_reported_once(self) -> None:
        """
        A client that goes away before the response is reported as aborted, exactly once.
        """
        site, recorder, slow = make_site()
        channel, _ = open_channel(site)
        channel.dataReceived(request_bytes("GET", "/slow"))
        channel.connectionLost(Failure(ConnectionError("client left")))
        self.assertEqual([e.aborted for e in recorder.requests], [True])
        self.assertEqual(len(slow.pending), 1)

    def test_failing_observer_isolated(self) -> None:
        """
        An observer that raises is logged; other observers and the response are unaffected.
        """

        @implementer(IRequestObserver)
        class Broken:
            def request_finished(self, event: RequestEvent) -> None:
                raise ValueError("observer bug")

        site, recorder, _ = make_site()
        site.remove_observer(recorder)
        site.add_observer(Broken())
        site.add_observer(recorder)
        response = get(site, "/")
        self.assertEqual(response.body, b"hello")
        self.assertEqual(len(recorder.requests), 1)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_observer_must_declare_an_interface(self) -> None:
        """
        Attaching something that provides no observer interface is a TypeError naming it.
        """
        site, _, _ = make_site()
        with self.assertRaises(TypeError) as caught:
            site.add_observer(object())
        self.assertIn("IRequestObserver", str(caught.exception))

    def test_shutdown_expires_every_session(self) -> None:
        """
        ``expire_all`` ends every live session through the normal path, least recently
        active first, with the reason SHUTDOWN.
        """
        clock = Clock()
        site, recorder, _ = make_site(clock)
        first, second = Browser(site), Browser(site)
        first.get("/session")
        clock.advance(1)
        second.get("/session")
        clock.advance(1)
        first.get("/")
        self.assertEqual(site.expire_all(), 2)
        self.assertEqual(site.sessions, {})
        self.assertEqual([s.reason for s in recorder.sessions], [EndReason.SHUTDOWN] * 2)
        self.assertEqual([s.last_active for s in recorder.sessions], [1.0, 2.0])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"session_timeout": 0}, "session_timeout"),
        ({"max_session_age": -1}, "max_session_age"),
        ({"max_sessions": 0}, "max_sessions"),
        ({"max_sessions": 1.5}, "max_sessions"),
    ],
)
def test_bad_site_settings_name_the_setting(settings: dict[str, Any], message: str) -> None:
    """
    A bad Site setting is a ValueError naming the setting and the value.
    """
    with pytest.raises(ValueError, match=message):
        Site(Resource(), reactor=Clock(), **settings)


@pytest.mark.parametrize(
    "policy, message",
    [
        ({"session_cookie": "bad name"}, "session_cookie"),
        ({"visitor_cookie": "a;b"}, "visitor_cookie"),
        ({"session_cookie": "x", "visitor_cookie": "x"}, "must differ"),
        ({"visitor_max_age": 0}, "visitor_max_age"),
    ],
)
def test_bad_cookie_policy_names_the_setting(policy: dict[str, Any], message: str) -> None:
    """
    A cookie name that would break the Set-Cookie header is refused up front.
    """
    with pytest.raises(ValueError, match=message):
        CookiePolicy(**policy)


class PathNameTests(SynchronousTestCase):
    def test_names_of_a_path(self) -> None:
        """
        An event carries the path as text and its first segment as the resource, also for
        paths too long to be remembered, and for bytes that are not UTF-8.
        """
        long_path = b"/search/" + b"x" * 1000 + b"?q=1"
        self.assertEqual(path_names(b"/page/3?x=1"), ("/page/3?x=1", "/page"))
        self.assertEqual(path_names(b"/"), ("/", "/"))
        self.assertEqual(path_names(long_path), (long_path.decode(), "/search"))
        self.assertEqual(path_names(b"/caf\xe9/x"), ("/caf\ufffd/x", "/caf\ufffd"))

    def test_a_huge_url_is_cut_in_events(self) -> None:
        """
        The path an event (and so every visit that keeps it) carries is at most 1,024 bytes
        of the URL and an ellipsis: a flood of 16 KB URLs cannot blow up the kept visits.
        """
        huge = b"/page/" + b"z" * 16_000
        text, resource = path_names(huge)
        self.assertEqual(text, huge[:1024].decode() + "\u2026")
        self.assertEqual(resource, "/page")

    def test_remembered_paths_are_bounded(self) -> None:
        """
        A crawler inventing paths cannot make the server keep their names without bound:
        long paths are never remembered, and at most a few thousand short ones are.
        """
        for number in range(2000):
            path_names(b"/long/%d/" % number + b"y" * 10_000)
        for number in range(10_000):
            path_names(b"/short/%d" % number)
        remembered = tracked_request._path_names
        self.assertLessEqual(len(remembered), 4096)
        self.assertLessEqual(sum(len(path) for path in remembered), 4096 * 256)


def test_resource_is_what_rendered_and_made_up_paths_are_one_value() -> None:
    """
    A request's resource is the first segment its tree consumed (``/a`` for ``/a/x`` served
    by the ``a`` leaf), one value for every 404, and ``/`` for everything a leaf root
    serves: 200 made-up paths from one client are one resource, not 200.
    """
    from twisted.internet.task import Clock
    from twisted.web.static import Data

    from ..apps import pages

    recorder = Recorder()
    site = Site(pages(), reactor=Clock())
    site.add_observer(recorder)
    get(site, "/a/x")
    get(site, "/b")
    for number in range(200):
        get(site, f"/made-up-{number}")
    resources = [event.resource for event in recorder.requests]
    assert resources[:2] == ["/a", "/b"]
    assert set(resources[2:]) == {"(not found)"}
    leaf = Data(b"hi", "text/plain")
    leaf.isLeaf = True
    leaf_site = Site(leaf, reactor=Clock())
    leaf_site.add_observer(recorder)
    get(leaf_site, "/anything/at/all")
    assert recorder.requests[-1].resource == "/"


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n", 431),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: %s\r\n" % (n, b"c" * 1000) for n in range(20))
            + b"\r\n",
            431,
        ),
    ],
    ids=["long request line", "long header", "too many header bytes"],
)
def test_requests_over_the_limits_get_a_status_not_a_bare_close(raw: bytes, status: int) -> None:
    """
    A request line or headers over Twisted's 16 KB limits get 414 or 431 (Twisted itself
    closes without a word, or says 400), and the connection is closed.
    """
    from twisted.internet.task import Clock

    site = Site(Resource(), reactor=Clock())
    channel, transport = open_channel(site)
    channel.dataReceived(raw)
    response = parse_response(transport.value())
    assert response.status == status
    assert transport.disconnecting
