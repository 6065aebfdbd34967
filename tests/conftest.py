"""
Shared fixtures: one real Redis for the whole run, on a private unix socket.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .redis_process import RedisProcess


@pytest.fixture(scope="session")
def redis_process() -> Iterator[RedisProcess]:
    """
    A real redis-server started for this test run and stopped after it.
    """
    server = RedisProcess().start()
    yield server
    server.stop()


@pytest.fixture
def redis_for_class(request: pytest.FixtureRequest, redis_process: RedisProcess) -> None:
    """
    Give a trial TestCase the shared server as ``self.redis_process``.
    """
    request.cls.redis_process = redis_process
