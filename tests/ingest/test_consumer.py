"""
The Twisted consumer against a real feed on a real port: every event once, in order, across
cut connections and a feed gone silent, resumed with Last-Event-ID; and sessions by event
time equal to ``cluster()`` over the same events.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web.client import ResponseDone
from twisted.web.http_headers import Headers

from twisted_sessions.clustering import cluster, to_seconds
from twisted_sessions.ingest import EventStreams, EventTimeSessions
from twisted_sessions.ingest.source import EventSource, SourceStopped

from ..reactor_case import coroutine_test
from .feed_process import FeedProcess
from .fixture import items, kept


class ConsumerTests(TestCase):
    timeout = 60

    def feed(self, *args: str) -> FeedProcess:
        process = FeedProcess(*args).start()
        self.addCleanup(process.stop)
        return process

    def consume(
        self,
        url: str,
        total: int,
        on_item: Callable[[dict[str, Any]], object] | None = None,
        **options: Any,
    ) -> tuple[EventStreams, list[Any]]:
        received: list[dict[str, Any]] = []
        stream = EventStreams(reactor, url=url, retry=0.05, **options)
        stream.set_maximum_items(total)
        self.addCleanup(stream.stop)
        stream.start(on_item or received.append)
        return stream, received

    @coroutine_test
    async def test_every_event_once_in_order_across_cut_connections(self) -> None:
        """
        The feed cuts each connection mid-event after 45 items: the half-received event is
        dropped, the reconnection sends the last whole event's id, and the consumer sees
        every kept event exactly once, in order; canary events are dropped, the event that
        is not JSON and the error event are counted and skipped.
        """
        feed = self.feed("--count", "600", "--cut-every", "45")
        expected = kept(items(600))
        stream, received = self.consume(feed.stream_url, len(expected))
        await stream.done
        self.assertEqual([e["id"] for e in received], [e["id"] for e in expected])
        self.assertEqual(received, expected)
        self.assertEqual((stream.bad, stream.errors, stream.filtered), (1, 1, 2))
        log = feed.log()
        self.assertGreaterEqual(len(log), 600 // 45)
        self.assertIsNone(log[0]["last_event_id"])
        offsets = [json.loads(entry["last_event_id"])[0]["offset"] for entry in log[1:]]
        # Each resumes after the last whole item of the connection before: 45 items later.
        self.assertEqual(offsets, [45 * n - 1 for n in range(1, len(log))])
        assert stream.source is not None
        self.assertEqual(stream.source.reconnects, len(log) - 1)

    @coroutine_test
    async def test_a_silent_feed_is_closed_and_resumed(self) -> None:
        """
        The first connection goes silent after 100 items (no event, no heartbeat) but stays
        open: the idle watchdog closes it and the consumer resumes after item 100.
        """
        feed = self.feed("--count", "300", "--stall-after", "100")
        expected = kept(items(300))
        stream, received = self.consume(feed.stream_url, len(expected), idle_timeout=0.5)
        await stream.done
        self.assertEqual(received, expected)
        log = feed.log()
        self.assertEqual(len(log), 2)
        self.assertEqual(json.loads(log[1]["last_event_id"])[0]["offset"], 99)

    @coroutine_test
    async def test_maximum_items_counts_kept_events_only(self) -> None:
        feed = self.feed("--count", "400")
        stream, received = self.consume(feed.stream_url, 50)
        stream.register_filter(type="edit", bot=False)
        await stream.done
        expected = [e for e in kept(items(400)) if e["type"] == "edit" and not e["bot"]][:50]
        self.assertEqual(received, expected)

    @coroutine_test
    async def test_since_starts_at_a_time(self) -> None:
        """
        ``since`` as a MediaWiki timestamp reaches the feed as ISO 8601, and the feed starts
        there.
        """
        feed = self.feed("--count", "300")
        events = kept(items(300))
        middle = events[150]["meta"]["dt"]
        mediawiki = middle[:19].replace("-", "").replace("T", "").replace(":", "")
        stream, received = self.consume(feed.stream_url, 10, since=mediawiki)
        await stream.done
        self.assertEqual(feed.log()[0]["since"], middle[:19] + "Z")
        start = to_seconds(middle[:19] + "Z")
        first = next(n for n, e in enumerate(events) if to_seconds(e["meta"]["dt"]) >= start)
        self.assertEqual(received, events[first : first + 10])

    @coroutine_test
    async def test_a_refused_stream_stops_with_the_status_named(self) -> None:
        feed = self.feed("--count", "10")
        stream, _ = self.consume(feed.url + "v2/stream/nope", 10)
        with self.assertRaises(SourceStopped) as caught:
            await stream.done
        self.assertIn("404", str(caught.exception))

    @coroutine_test
    async def test_sessions_by_event_time_equal_cluster_over_the_same_events(self) -> None:
        """
        Events up to 40 s out of order, consumed live with a lateness of 60 s, make the
        sessions ``cluster()`` makes of the same events sorted by time (a file).
        """
        feed = self.feed("--count", "2000", "--cut-every", "300")
        expected_events = kept(items(2000))
        sessions = EventTimeSessions(cutoff=3600, lateness=60)
        ours: list[tuple[str, list[int]]] = []
        number = 0

        def add(event: dict[str, Any]) -> None:
            nonlocal number
            number += 1
            when = to_seconds(event["meta"]["dt"])
            for session in sessions.add(event["user"], when, number, event["id"]):
                ours.append((session.user, sorted(session.events)))

        # The sessionizer consumes the events as they arrive.
        stream, _ = self.consume(feed.stream_url, len(expected_events), add)
        await stream.done
        ours += [(s.user, sorted(s.events)) for s in sessions.finish()]
        self.assertEqual(sessions.late, 0)
        in_time = sorted(expected_events, key=lambda e: to_seconds(e["meta"]["dt"]))
        reference = [
            (s.user, sorted(s.events))
            for s in cluster((e["user"], to_seconds(e["meta"]["dt"]), e["id"]) for e in in_time)
        ]
        self.assertEqual(sorted(ours), sorted(reference))
        self.assertGreater(len(reference), 40)  # Users have several sessions.


class _Refusing:
    """
    An agent whose every request fails at once (a refused connection).
    """

    def __init__(self) -> None:
        self.attempts = 0

    def request(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        self.attempts += 1
        return fail(ConnectionRefusedError("refused"))


class BackoffTests(TestCase):
    def test_waits_double_up_to_the_maximum_then_the_server_retry_rules(self) -> None:
        """
        Failed attempts wait retry, 2x, 4x... up to max_delay; a ``retry:`` from the server
        replaces the base; stop() stops trying.
        """
        clock = Clock()
        agent = _Refusing()
        source = EventSource(
            clock, "http://feed.invalid/s", lambda e: None, retry=1, max_delay=5, agent=agent
        )
        source.start()
        waits = []
        for _ in range(5):
            waits.append(source._wait.getTime() - clock.seconds())  # type: ignore[union-attr]
            clock.advance(waits[-1])
        self.assertEqual(waits, [1, 2, 4, 5, 5])
        self.assertEqual(agent.attempts, 6)
        source.parser.retry = 250  # As if the server had sent "retry: 250".
        source._failures = 0
        clock.advance(source._wait.getTime() - clock.seconds())  # type: ignore[union-attr]
        self.assertAlmostEqual(source._wait.getTime() - clock.seconds(), 0.25)  # type: ignore[union-attr]
        source.stop()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(source.state, "stopped")


class _Answering:
    """
    An agent whose every request gets one answer (no body).
    """

    def __init__(self, code: int, kind: bytes) -> None:
        self.code, self.kind = code, kind
        self.attempts = 0

    def request(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        self.attempts += 1
        return succeed(_Response(self.code, Headers({b"content-type": [self.kind]})))


class _Response:
    """
    A response without a body, as an agent gives it.
    """

    version = (b"HTTP", 1, 1)
    phrase = b"answer"
    length = 0
    request = None
    previousResponse = None

    def __init__(self, code: int, headers: Headers) -> None:
        self.code, self.headers = code, headers

    def deliverBody(self, protocol: Any) -> None:
        protocol.connectionLost(Failure(ResponseDone()))


class RefusalTests(TestCase):
    def source(self, code: int, kind: bytes) -> tuple[Clock, _Answering, EventSource]:
        clock, agent = Clock(), _Answering(code, kind)
        source = EventSource(clock, "http://feed.invalid/s", lambda e: None, agent=agent)
        source.done.addErrback(lambda f: f.trap(SourceStopped))
        source.start()
        return clock, agent, source

    def test_an_html_page_or_a_404_stops_the_source(self) -> None:
        """
        What asking again will not change stops at once, with the answer in the state.
        """
        for code, kind in ((200, b"text/html"), (404, b"application/json")):
            clock, agent, source = self.source(code, kind)
            self.assertEqual(agent.attempts, 1)
            self.assertIn(str(code), source.state)
            self.assertEqual(clock.getDelayedCalls(), [])

    def test_a_503_is_asked_again(self) -> None:
        clock, agent, source = self.source(503, b"text/html")
        self.assertEqual(source.state, "waiting")
        clock.advance(3)
        self.assertEqual(agent.attempts, 2)
        source.stop()
