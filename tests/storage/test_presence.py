"""
Heartbeats: each server of a site is listed by every other while it beats, leaves the list at
once when it stops, and lapses from it a TTL after it was killed.
"""

from __future__ import annotations

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from twisted_sessions.storage import RedisLink
from twisted_sessions.storage.presence import Presence, default_server_id

from ..reactor_case import coroutine_test, wait_until
from ..redis_process import RedisProcess


def test_default_ids_name_host_and_port() -> None:
    assert default_server_id("tcp:8081:interface=127.0.0.1").endswith(":8081")
    assert default_server_id("8082").endswith(":8082")


def test_the_interval_must_be_below_the_ttl() -> None:
    with pytest.raises(ValueError, match="interval"):
        Presence(Clock(), None, "a", interval=15, ttl=15)  # type: ignore[arg-type]


@pytest.mark.usefixtures("redis_for_class")
class PresenceTests(TestCase):
    redis_process: RedisProcess

    def setUp(self) -> None:
        self.link = RedisLink(reactor, self.redis_process.address, deadline=2)
        self.link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(self.link.disconnect()))
        # The heartbeats' own time: scores and lapses follow it, not the wall clock.
        self.clock = Clock()
        self.clock.advance(1_000_000)

    def server(self, name: str) -> Presence:
        presence = Presence(self.clock, self.link, name, interval=5, ttl=15)
        presence.start()
        self.addCleanup(lambda: presence._beat.stop() if presence._beat.running else None)  # type: ignore[union-attr]
        return presence

    @coroutine_test
    async def test_servers_see_each_other_and_the_dead_lapse(self) -> None:
        await self.link.execute("DEL", "ts1:{f}:servers")
        one, two = self.server("one"), self.server("two")
        await wait_until(lambda: one.heartbeats and two.heartbeats)
        self.clock.advance(5)  # Both beat again: each now sees the other.
        await wait_until(lambda: one.heartbeats > 1 and two.heartbeats > 1)
        self.assertEqual(one.alive(), ["one", "two"])
        self.assertEqual(two.alive(), ["one", "two"])

        two._beat.stop()  # type: ignore[union-attr]  # Killed: no more beats, no goodbye.
        for _ in range(3):
            beats = one.heartbeats
            self.clock.advance(5)
            await wait_until(lambda b=beats: one.heartbeats > b)  # type: ignore[misc]
        # 15 s after two's last beat: its score has run out.
        self.assertEqual(one.alive(), ["one"])

        three = self.server("three")
        await wait_until(lambda: three.heartbeats)
        self.assertEqual(three.alive(), ["one", "three"])
        await three.stop()  # A clean stop leaves the list at once.
        beats = one.heartbeats
        self.clock.advance(5)
        await wait_until(lambda: one.heartbeats > beats)
        self.assertEqual(one.alive(), ["one"])
        self.assertIsNone(await self.link.execute("GET", "ts1:{f}:server:three"))

    @coroutine_test
    async def test_no_list_without_recent_heartbeats(self) -> None:
        """
        While no heartbeat gets through (Redis away), the list is not reported stale for ever.
        """
        one = self.server("lonely")
        await wait_until(lambda: one.heartbeats)
        self.assertIn("lonely", one.alive() or [])
        one._beat.stop()  # type: ignore[union-attr]
        self.clock.advance(16)
        self.assertIsNone(one.alive())
