"""
An Activity on the run's real Redis, emptied first, with bitmapist pointed at the same server.
"""

from __future__ import annotations

from typing import Any

import bitmapist
import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from twisted_sessions.activity import Activity
from twisted_sessions.storage import RedisLink

from ..reactor_case import wait_until
from ..redis_process import RedisProcess


@pytest.mark.usefixtures("redis_for_class")
class ActivityTestCase(TestCase):
    redis_process: RedisProcess

    async def binary_link(self, process: RedisProcess | None = None, **options: Any) -> RedisLink:
        where = (process or self.redis_process).address
        link = RedisLink(reactor, where, deadline=1, health_interval=0.1, binary=True, **options)
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        await wait_until(lambda: link.connected)
        return link

    async def activity(self, flush: bool = True, **options: Any) -> Activity:
        link = await self.binary_link()
        await link.execute("FLUSHDB")
        found = Activity(reactor, link, **options)
        if flush:
            self.addCleanup(found.writer.stop)
        return found

    def bitmapist(self) -> str:
        """
        bitmapist's system name for the same Redis (redis-py, over the same unix socket).
        """
        bitmapist.setup_redis(
            "twisted-sessions-tests",
            "localhost",
            0,
            unix_socket_path=str(self.redis_process.socket),
        )
        return "twisted-sessions-tests"
