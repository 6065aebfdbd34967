"""
RedisLink against a real redis-server: lazy, self-healing, and no call without a deadline.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from twisted_sessions.storage import (
    RedisAddress,
    RedisLink,
    RedisTimeout,
    RedisUnavailable,
    parse_redis_url,
)

from ..reactor_case import wait_until
from ..redis_process import RedisProcess


@pytest.mark.usefixtures("redis_for_class")
class RedisLinkTests(TestCase):
    redis_process: RedisProcess

    def link(self, address: RedisAddress, deadline: float = 1.0) -> RedisLink:
        link = RedisLink(reactor, address, deadline=deadline, health_interval=0.05)
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        return link

    async def _commands_round_trip(self) -> None:
        link = self.link(self.redis_process.address)
        await wait_until(lambda: link.connected)
        await link.execute("SET", "ts:test:link", "42")
        self.assertEqual(await link.execute("GET", "ts:test:link"), 42)
        self.assertGreater(await link.ping(), 0)

    def test_commands_round_trip(self) -> Deferred[None]:
        """
        Commands reach the real server and replies come back.
        """
        return Deferred.fromCoroutine(self._commands_round_trip())

    async def _fails_fast_when_redis_is_absent(self) -> None:
        missing = RedisAddress(path=str(Path(tempfile.gettempdir()) / "ts-no-such-redis.sock"))
        link = self.link(missing, deadline=0.5)
        started = time.monotonic()
        with self.assertRaises(RedisUnavailable):
            await link.execute("PING")
        # The first call waited for a first connection, one deadline at most.
        self.assertLess(time.monotonic() - started, 0.9)
        await wait_until(lambda: link.reachable is False)
        started = time.monotonic()
        with self.assertRaises(RedisUnavailable):
            await link.execute("PING")
        self.assertLess(time.monotonic() - started, 0.1)

    def test_fails_fast_when_redis_is_absent(self) -> Deferred[None]:
        """
        With Redis down, connect() returns at once, the first call fails within one deadline
        and, once the health check noticed, calls fail at once (nothing queues forever).
        """
        return Deferred.fromCoroutine(self._fails_fast_when_redis_is_absent())

    async def _first_call_waits_for_a_starting_redis(self) -> None:
        own = RedisProcess().start()
        self.addCleanup(own.stop)
        own.kill()
        link = self.link(own.address, deadline=3)
        reply = link.execute("PING")
        # Redis comes up a moment after the first request (as the embedded one does).
        await deferLater(reactor, 0.3, own.start)
        self.assertEqual(await reply, "PONG")

    def test_first_call_waits_for_a_starting_redis(self) -> Deferred[None]:
        """
        A command sent before the first connection (a query in a server's first second) waits
        for Redis to come up, within the deadline, instead of failing with a 503.
        """
        return Deferred.fromCoroutine(self._first_call_waits_for_a_starting_redis())

    async def _slow_reply_hits_deadline(self) -> None:
        link = self.link(self.redis_process.address, deadline=0.3)
        pauser = self.link(self.redis_process.address)
        await wait_until(lambda: link.connected and pauser.connected)
        await pauser.execute("CLIENT", "PAUSE", "1500")
        started = time.monotonic()
        with self.assertRaises(RedisTimeout):
            await link.execute("GET", "ts:test:paused")
        self.assertLess(time.monotonic() - started, 1.0)
        # The link recovers once Redis answers again.
        await deferLater(reactor, 1.3, lambda: None)
        await wait_until(lambda: link.connected)
        self.assertEqual(await link.execute("PING"), "PONG")

    def test_slow_reply_hits_deadline(self) -> Deferred[None]:
        """
        A command Redis does not answer in time fails with RedisTimeout after the deadline,
        not when Redis gets round to it.
        """
        return Deferred.fromCoroutine(self._slow_reply_hits_deadline())

    async def _recovers_when_connection_setup_fails(self) -> None:
        pauser = self.link(self.redis_process.address, deadline=5)
        await wait_until(lambda: pauser.connected)
        await pauser.execute("CLIENT", "PAUSE", "1000")
        # SELECT (database 3) times out while connecting: txredisapi itself gives up for good.
        link = self.link(RedisAddress(path=self.redis_process.address.path, db=3), deadline=0.3)
        await wait_until(lambda: link.reachable is False)
        await wait_until(lambda: link.reachable is True, timeout=15)
        await link.execute("SET", "ts:test:db3", "here")
        self.assertEqual(await link.execute("GET", "ts:test:db3"), "here")
        self.assertIsNone(await pauser.execute("GET", "ts:test:db3"), "db 3, not db 0")

    def test_recovers_when_connection_setup_fails(self) -> Deferred[None]:
        """
        A Redis that is paused (or loading its data) while the link connects makes the client
        library give up reconnecting for good; the link starts it again and recovers.
        """
        return Deferred.fromCoroutine(self._recovers_when_connection_setup_fails())

    async def _reconnects_after_restart(self) -> None:
        own = RedisProcess().start()
        self.addCleanup(own.stop)
        link = self.link(own.address)
        await wait_until(lambda: link.reachable is True)
        own.kill()
        await wait_until(lambda: link.reachable is False)
        with self.assertRaises((RedisUnavailable, RedisTimeout)):
            await link.execute("PING")
        own.start()
        await wait_until(lambda: link.reachable is True, timeout=20)
        self.assertEqual(await link.execute("PING"), "PONG")

    def test_reconnects_after_restart(self) -> Deferred[None]:
        """
        When Redis dies and comes back, the link reconnects by itself.
        """
        return Deferred.fromCoroutine(self._reconnects_after_restart())

    async def _closing_is_not_an_outage(self) -> None:
        pauser = self.link(self.redis_process.address, deadline=5)
        link = self.link(self.redis_process.address, deadline=2)
        await wait_until(lambda: pauser.connected and link.reachable is True)
        warnings: list[str] = []

        def observe(event: dict[str, object]) -> None:
            if event.get("log_level") == LogLevel.warn:
                warnings.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        # Redis holds every command: the next health check's PING stays in flight...
        await pauser.execute("CLIENT", "PAUSE", "500")
        await deferLater(reactor, 0.15, lambda: None)
        # ...while the server shuts down and closes the link.
        await link.disconnect()
        await deferLater(reactor, 0.6, lambda: None)
        self.assertEqual([w for w in warnings if "unreachable" in w], [])

    def test_closing_is_not_an_outage(self) -> Deferred[None]:
        """
        Closing the link (at shutdown) while a health check waits for its reply is not
        logged as Redis being unreachable.
        """
        return Deferred.fromCoroutine(self._closing_is_not_an_outage())

    async def _closing_fails_waiting_commands(self) -> None:
        missing = RedisAddress(path=str(Path(tempfile.gettempdir()) / "ts-no-such-redis.sock"))
        link = RedisLink(reactor, missing, deadline=5, health_interval=10)
        link.connect()
        waiting = link.execute("PING")
        started = time.monotonic()
        await link.disconnect()
        with self.assertRaises(RedisUnavailable):
            await waiting
        self.assertLess(time.monotonic() - started, 1)
        # The command's five-second deadline is not left pending in the reactor.
        deadlines = [
            call
            for call in reactor.getDelayedCalls()
            if call.getTime() > started + 4 and "timeItOut" in repr(call)
        ]
        self.assertEqual(deadlines, [])

    def test_closing_fails_waiting_commands(self) -> Deferred[None]:
        """
        A command still waiting for the link's first connection fails as soon as the link is
        closed (at shutdown), instead of holding the shutdown for its deadline.
        """
        return Deferred.fromCoroutine(self._closing_fails_waiting_commands())


def test_password_never_shown() -> None:
    """
    A password in the URL reaches the connection but never a description or repr (logs).
    """
    address = parse_redis_url("redis://:s3cret@db.example:6380/2")
    assert address.password == "s3cret"
    assert "s3cret" not in address.describe()
    assert "s3cret" not in repr(address)
