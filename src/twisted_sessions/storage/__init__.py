"""
Redis: the link every other part talks through, where it is, the embedded server, and the keys.

- :mod:`.link`: :class:`RedisLink`, one lazy txredisapi connection; every command has a
  deadline and fails fast while Redis is unreachable.
- :mod:`.address`: :class:`RedisAddress` and ``--redis`` URL parsing.
- :mod:`.embedded`: :class:`EmbeddedRedis`, the ``redis-server`` child process of
  ``twistd sessions`` without ``--redis`` (started through ``_orphan_guard``).
- :mod:`.keys`: every Redis key string, built in this one module.

It imports nothing else of the package.
"""

from .address import RedisAddress, parse_redis_url
from .embedded import EmbeddedRedis
from .link import RedisLink, RedisTimeout, RedisUnavailable, gather

__all__ = [
    "EmbeddedRedis",
    "RedisAddress",
    "RedisLink",
    "RedisTimeout",
    "RedisUnavailable",
    "gather",
    "parse_redis_url",
]
