"""
The Redis Cluster router against a real three-primary cluster: keys go to the primary that
owns their slot, hash tags keep keys together, and a slot migrated under it is followed
through ASK, then MOVED.
"""

from __future__ import annotations

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from twisted_sessions.storage import (
    ClusterAddress,
    RedisAddress,
    RedisUnavailable,
    parse_redis_url,
)
from twisted_sessions.storage.cluster import (
    ClusterLink,
    ClusterRouter,
    command_key,
    crc16,
    key_slot,
)

from ..reactor_case import coroutine_test, wait_until
from .cluster_process import RedisCluster


def test_slots_are_redis_clusters() -> None:
    """
    CRC16 (XMODEM) and the hash tag rule, as Redis Cluster's specification gives them.
    """
    assert crc16(b"123456789") == 0x31C3
    assert key_slot("123456789") == 0x31C3 % 16384
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers")
    assert key_slot("foo{}{bar}") == crc16(b"foo{}{bar}") % 16384  # An empty tag: the key.
    assert key_slot("foo{{bar}}zap") == crc16(b"{bar") % 16384  # From the first {.
    assert key_slot("ts1:{m:requests}:all") == key_slot("m:requests")
    assert key_slot(b"\xff{x}") == key_slot("x")


def test_commands_are_routed_by_their_key() -> None:
    assert command_key(("HINCRBY", "k", "f", 1)) == "k"
    assert command_key(("EVAL", "return 1", 2, "a", "b")) == "a"
    assert command_key(("XREAD", "COUNT", 5, "BLOCK", 0, "STREAMS", "s1", "s2", "$", "$")) == "s1"
    with pytest.raises(ValueError, match="key="):
        command_key(("EVAL", "return 1", 0))
    with pytest.raises(ValueError, match="key="):
        command_key(("PING",))


class RouterTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.cluster = RedisCluster().start()
        self.addCleanup(self.cluster.stop)
        seeds = [RedisAddress(host="127.0.0.1", port=self.cluster.ports[0])]
        self.router = ClusterRouter(reactor, seeds, deadline=3)
        self.addCleanup(lambda: Deferred.fromCoroutine(self.router.disconnect()))

    @coroutine_test
    async def test_keys_land_on_the_primary_that_owns_their_slot(self) -> None:
        keys = [f"key:{n}" for n in range(200)]
        for n, key in enumerate(keys):
            await self.router.execute("SET", key, f"v{n}")
        owners = {self.cluster.owner(key_slot(key)) for key in keys}
        self.assertEqual(owners, set(self.cluster.ports))  # Spread over all three.
        for n, key in enumerate(keys):
            direct = self.cluster.client(self.cluster.owner(key_slot(key))).get(key)
            self.assertEqual(direct, f"v{n}".encode())
            self.assertEqual(await self.router.execute("GET", key), f"v{n}")
        # A script's keys share a hash tag, so one primary runs it.
        script = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])"
        reply = await self.router.execute("EVAL", script, 2, "{t}:a", "{t}:b", "x")
        self.assertEqual(reply, 1)
        self.assertEqual(self.router.redirections, 0)

    @coroutine_test
    async def test_a_migrating_slot_is_followed_by_ask_then_moved(self) -> None:
        key = "migrating-key"
        await self.router.execute("SET", key, "before")
        slot = key_slot(key)
        source = self.cluster.owner(slot)
        target = next(port for port in self.cluster.ports if port != source)
        source_id, target_id = self.cluster.node_id(source), self.cluster.node_id(target)
        src, dst = self.cluster.client(source), self.cluster.client(target)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", key)
        # The key moved, the slot not yet: the source answers ASK for it.
        self.assertEqual(await self.router.execute("GET", key), "before")
        self.assertEqual(self.router.redirections, 1)
        self.assertEqual(self.router.owners[slot], ("127.0.0.1", source))  # ASK: still there.
        for port in self.cluster.ports:
            self.cluster.client(port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        # The slot moved: MOVED, and the router remembers the new owner.
        await self.router.execute("SET", key, "after")
        self.assertEqual(self.router.redirections, 2)
        self.assertEqual(self.router.owners[slot], ("127.0.0.1", target))
        self.assertEqual(dst.get(key), b"after")
        self.assertEqual(await self.router.execute("GET", key), "after")
        self.assertEqual(self.router.redirections, 2)


class ClusterLinkTests(TestCase):
    """
    The cluster behind the Link face the writers use: ``--redis redis+cluster://``.
    """

    timeout = 60

    def setUp(self) -> None:
        self.cluster = RedisCluster().start()
        self.addCleanup(self.cluster.stop)

    def link(self, binary: bool = False) -> ClusterLink:
        address = parse_redis_url(f"redis+cluster://127.0.0.1:{self.cluster.ports[1]}")
        assert isinstance(address, ClusterAddress)
        link = ClusterLink(reactor, address, deadline=3, health_interval=0.2, binary=binary)
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        return link

    @coroutine_test
    async def test_learns_every_primary_from_one_seed(self) -> None:
        link = self.link()
        await wait_until(lambda: link.connected and link.reachable)
        self.assertEqual(
            sorted(port for _, port in link.router.primaries()), sorted(self.cluster.ports)
        )
        self.assertGreater(await link.ping(), 0)
        self.assertIn("redis_version", await link.execute("INFO", "server"))

    @coroutine_test
    async def test_a_blocking_xread_goes_to_its_streams_slot(self) -> None:
        """
        ``XREAD ... STREAMS key ...`` is routed by its first stream, not by ``COUNT``'s number
        (the streams' keys share one hash tag, so one XREAD reads them all).
        """
        link, reader = self.link(binary=True), self.link(binary=True)
        await wait_until(lambda: link.connected and reader.connected)
        keys = ["ts1:{s}:stream:a", "ts1:{s}:stream:b"]
        waiting = reader.execute("XREAD", "COUNT", 10, "BLOCK", 2000, "STREAMS", *keys, "$", "$")
        await deferLater(reactor, 0.2, lambda: None)
        await link.execute("XADD", keys[1], "*", "d", "hello")
        reply = await waiting
        self.assertEqual(reply[0][0], keys[1].encode())
        self.assertEqual(reply[0][1][0][1], [b"d", b"hello"])

    @coroutine_test
    async def test_a_cluster_that_cannot_be_reached_is_an_outage(self) -> None:
        """
        Every node down: commands fail with ``RedisUnavailable`` (the writers keep their work
        and retry), within the deadline, and the link says it is not reachable.
        """
        link = self.link()
        await wait_until(lambda: link.connected)
        for port in list(self.cluster.ports):
            self.cluster.kill(port)
        with self.assertRaises(RedisUnavailable):
            await link.execute("SET", "k", "v")
        await wait_until(lambda: link.reachable is False)
        self.assertFalse(link.connected)
