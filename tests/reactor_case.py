"""
Helpers for trial tests on the real reactor: ``async def`` test methods, waiting for a
condition, and a TestCase with a CounterStore on the run's real Redis.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from twisted_sessions.counters import CounterStore
from twisted_sessions.storage import RedisLink

from .redis_process import RedisProcess


async def wait_until(condition: object, timeout: float = 10.0) -> None:
    """
    Let the reactor run until ``condition()`` is true.
    """
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await deferLater(reactor, 0.02, lambda: None)


def coroutine_test(method: Any) -> Any:
    """
    Run an ``async def`` test method on the reactor (trial waits for the Deferred).
    """

    def run(self: Any) -> Deferred[None]:
        return Deferred.fromCoroutine(method(self))

    run.__name__ = method.__name__
    run.__doc__ = method.__doc__
    return run


@pytest.mark.usefixtures("redis_for_class")
class MetricaTestCase(TestCase):
    """
    A TestCase whose ``store()`` is a CounterStore on the run's real Redis, emptied first.
    """

    redis_process: RedisProcess

    async def store(self) -> CounterStore:
        link = RedisLink(reactor, self.redis_process.address, deadline=2, health_interval=0.2)
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        await wait_until(lambda: link.connected)
        await link.execute("FLUSHDB")
        return CounterStore(reactor, link)
