"""
``--redis redis+sentinel://``: a primary that Redis Sentinel fails over, against a real primary,
replica and sentinel (Debian's ``redis-server``, the sentinel run with ``--sentinel``).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from twisted_sessions.deploy.processes import free_port, spawn, wait_for_port
from twisted_sessions.deploy.rediscluster import REDIS_CLI, REDIS_SERVER
from twisted_sessions.storage import RedisUnavailable, SentinelAddress, open_link, parse_redis_url
from twisted_sessions.storage.sentinel import SentinelLink

from ..reactor_case import coroutine_test, wait_until

#: A replica syncs at once (not after the default 5 s), so the test's data is on it.
SYNC_AT_ONCE = ["--repl-diskless-sync-delay", "0"]


class SentinelTests(TestCase):
    timeout = 90

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="ts-sentinel-")
        self.addCleanup(self._tmp.cleanup)
        directory = Path(self._tmp.name)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.addCleanup(self._stop_all)
        self.primary, self.replica, sentinel = free_port(), free_port(), free_port()
        for name, port, extra in (
            ("primary", self.primary, []),
            ("replica", self.replica, ["--replicaof", "127.0.0.1", str(self.primary)]),
        ):
            self._start(
                name,
                port,
                [REDIS_SERVER, "--port", str(port), "--save", "", *SYNC_AT_ONCE, *extra],
            )
        config = directory / "sentinel.conf"
        config.write_text(
            f"port {sentinel}\n"
            "bind 127.0.0.1\n"
            f"dir {directory}\n"
            f"sentinel monitor main 127.0.0.1 {self.primary} 1\n"
            "sentinel down-after-milliseconds main 1000\n"
            "sentinel failover-timeout main 10000\n"
        )
        self._start("sentinel", sentinel, [REDIS_SERVER, str(config), "--sentinel"])
        self.url = f"redis+sentinel://127.0.0.1:{sentinel}/main"

    def _start(self, name: str, port: int, command: list[str]) -> None:
        log = Path(self._tmp.name) / f"{name}.log"
        self.processes[name] = spawn(command, log)
        wait_for_port(port, self.processes[name], name, 15)

    def _replicated(self) -> bool:
        info = subprocess.run(
            [REDIS_CLI, "-p", str(self.replica), "info", "replication"],
            capture_output=True,
            text=True,
        ).stdout
        return "master_link_status:up" in info

    def _stop_all(self) -> None:
        for process in self.processes.values():
            process.kill()
            process.wait()

    @coroutine_test
    async def test_follows_the_primary_through_a_failover(self) -> None:
        address = parse_redis_url(self.url)
        assert isinstance(address, SentinelAddress)
        link = open_link(reactor, address, deadline=2, health_interval=0.2)
        assert isinstance(link, SentinelLink)
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        await wait_until(lambda: link.connected, timeout=15)
        await link.execute("SET", "before", "kept")
        # On the replica too (once it has synced): a failover keeps it.
        await wait_until(lambda: self._replicated(), timeout=15)
        self.assertEqual(await link.execute("WAIT", 1, 2000), 1)
        self.assertIn(f"tcp_port:{self.primary}", await link.execute("INFO", "server"))

        self.processes.pop("primary").kill()
        # Commands fail fast while there is no primary (nothing queues), then go to the
        # promoted replica once the sentinel names it.
        written = False
        for _ in range(300):
            try:
                await link.execute("SET", "after", "written")
                written = True
                break
            except RedisUnavailable:
                await _sleep(0.1)
        self.assertTrue(written, "no write reached the promoted replica within 30 s")
        self.assertIn(f"tcp_port:{self.replica}", await link.execute("INFO", "server"))
        self.assertEqual(await link.execute("GET", "before"), "kept")
        self.assertEqual(await link.execute("GET", "after"), "written")


async def _sleep(seconds: float) -> None:
    from twisted.internet.task import deferLater

    await deferLater(reactor, seconds, lambda: None)
