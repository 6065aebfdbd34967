"""
A feed in the server's pipeline, on the real reactor and a real Redis: while Redis is away
the feed stops reading instead of dropping counts, and goes on where it stopped.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from twisted_sessions.counters import CounterStore, CounterWriter
from twisted_sessions.ingest import Feed
from twisted_sessions.storage import RedisLink

from ..reactor_case import coroutine_test, wait_until
from ..redis_process import RedisProcess
from .feed_process import FeedProcess
from .fixture import items, kept


class FeedTests(TestCase):
    timeout = 90

    def setUp(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="ts-feed-"))  # A short unix socket path.
        self.addCleanup(shutil.rmtree, directory, True)
        self.redis = RedisProcess(directory, appendonly=True).start()
        self.addCleanup(self.redis.stop)

    @coroutine_test
    async def test_redis_away_pauses_the_feed_and_nothing_is_lost(self) -> None:
        source = FeedProcess("--count", "2000", "--batch", "10", "--interval", "0.01").start()
        self.addCleanup(source.stop)
        link = RedisLink(reactor, self.redis.address, deadline=0.5, health_interval=0.1)
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        await wait_until(lambda: link.connected)
        writer = CounterWriter(reactor, link, flush_interval=0.2, max_pending=20_000)
        store = CounterStore(reactor, link, writer)
        writer.start()
        self.addCleanup(writer.stop)
        feed = Feed(
            reactor,
            "rc",
            source.stream_url,
            store=store,
            since="2026-01-01T00:00:00Z",
            source_options={"retry": 0.05},
        )
        await feed.start()
        self.addCleanup(feed.stop)
        await wait_until(lambda: feed.number >= 300, timeout=30)
        self.redis.kill()
        await wait_until(lambda: feed.gauges()["paused"], timeout=30)
        held = feed.number
        await deferLater(reactor, 1.0, lambda: None)
        self.assertEqual(feed.number, held)  # Stopped reading: the events wait upstream.
        self.redis.start()
        events = kept(items(2000))
        await wait_until(lambda: feed.number == len(events) and writer.backlog == 0, timeout=60)
        await writer.send()
        self.assertEqual(writer.dropped, 0)
        self.assertGreaterEqual(feed.pauses, 1)
        self.assertEqual(await feed.events_metrica.total(), len(events))
        by_wiki = Counter(e["wiki"] for e in events)
        for wiki, count in by_wiki.items():
            self.assertEqual(await feed.events_metrica.filter(wiki=wiki).total(), count)

    @coroutine_test
    async def test_a_python_mapper_chooses_user_time_and_axes(self) -> None:
        """
        A callable mapping: its user, its time (here whole seconds), its axis values; ``None``
        leaves an event out, counted.
        """
        source = FeedProcess("--count", "500").start()
        self.addCleanup(source.stop)
        link = RedisLink(reactor, self.redis.address, deadline=1, health_interval=0.1)
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        await wait_until(lambda: link.connected)
        store = CounterStore(reactor, link)

        def humans_by_wiki(data: dict[str, Any]) -> tuple[str, int, tuple[str]] | None:
            if data["bot"]:
                return None
            return data["user"], data["timestamp"], (data["wiki"],)

        feed = Feed(
            reactor,
            "humans",
            source.stream_url,
            store=store,
            mapping=humans_by_wiki,
            axes=["wiki"],
            since="2026-01-01T00:00:00Z",
        )
        await feed.start()
        self.addCleanup(feed.stop)
        events = kept(items(500))
        await wait_until(lambda: feed.number == len(events), timeout=30)
        await store.flush()
        humans = [e for e in events if not e["bot"]]
        self.assertEqual(feed.unmapped, len(events) - len(humans))
        self.assertEqual(await feed.events_metrica.total(), len(humans))
        for wiki, count in Counter(e["wiki"] for e in humans).items():
            self.assertEqual(await feed.events_metrica.filter(wiki=wiki).total(), count)
        self.assertEqual(feed.gauges()["events_left_out"], len(events) - len(humans))
