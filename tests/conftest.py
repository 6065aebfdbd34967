"""
Shared fixtures: one real Redis for the whole run, on a private unix socket.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .redis_process import RedisProcess
from .twistd_process import Twistd


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


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """
    A working directory for a ``twistd`` process, with a short path: the embedded Redis
    socket lives in its data directory.
    """
    return Path(tmp_path_factory.mktemp("tw"))


@pytest.fixture
def servers() -> Iterator[list[Twistd]]:
    """
    The ``twistd`` processes a test starts, killed after it.
    """
    started: list[Twistd] = []
    yield started
    for server in started:
        server.stop()
