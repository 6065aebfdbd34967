"""
A real Redis Cluster for tests: the local site's own :class:`LocalRedisCluster` (three
primaries of Debian's ``redis-server`` 7, made by ``redis-cli --cluster create``) in a
temporary directory, with redis-py clients to look at a node directly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import redis

from twisted_sessions.deploy.rediscluster import LocalRedisCluster


class RedisCluster(LocalRedisCluster):
    def __init__(self, primaries: int = 3, replicas: int = 0) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="ts-cluster-")
        super().__init__(Path(self._tmp.name), primaries, replicas)

    def start(self) -> RedisCluster:
        super().start()
        return self

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def stop(self) -> None:
        super().stop()
        self._tmp.cleanup()
