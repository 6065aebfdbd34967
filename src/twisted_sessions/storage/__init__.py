"""
Redis: the link every other part talks through, where it is, the embedded server, and the keys.

- :mod:`.link`: :class:`RedisLink`, one lazy txredisapi connection; every command has a
  deadline and fails fast while Redis is unreachable.
- :mod:`.address`: :class:`RedisAddress`, :class:`ClusterAddress`, :class:`SentinelAddress`
  and ``--redis`` URL parsing.
- :mod:`.cluster`: :class:`ClusterLink`, Redis Cluster (a slot-aware router over links).
- :mod:`.sentinel`: :class:`SentinelLink`, a primary that Sentinel fails over.
- :mod:`.connection`: :func:`open_link`, the right link for an address.
- :mod:`.embedded`: :class:`EmbeddedRedis`, the ``redis-server`` child process of
  ``twistd sessions`` without ``--redis`` (started through ``_orphan_guard``).
- :mod:`.keys`: every Redis key string, built in this one module.

It imports nothing else of the package.
"""

from .address import ClusterAddress, RedisAddress, RedisTarget, SentinelAddress, parse_redis_url
from .connection import open_link
from .embedded import EmbeddedRedis
from .link import Link, RedisLink, RedisTimeout, RedisUnavailable, gather

__all__ = [
    "ClusterAddress",
    "EmbeddedRedis",
    "Link",
    "RedisAddress",
    "RedisLink",
    "RedisTarget",
    "RedisTimeout",
    "RedisUnavailable",
    "SentinelAddress",
    "gather",
    "open_link",
    "parse_redis_url",
]
