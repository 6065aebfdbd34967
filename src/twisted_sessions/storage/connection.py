"""
One call to open a link to wherever ``--redis`` points: one server, a Sentinel-watched
primary, or a Redis Cluster.
"""

from __future__ import annotations

from typing import Any

from .address import ClusterAddress, RedisTarget, SentinelAddress
from .cluster import ClusterLink
from .link import Link, RedisLink
from .sentinel import SentinelLink


def open_link(reactor: Any, target: RedisTarget, **options: Any) -> Link:
    """
    A link (not yet connected) to ``target``; ``options`` are :class:`RedisLink`'s
    (``deadline``, ``binary``, ``health_interval``).
    """
    if isinstance(target, ClusterAddress):
        return ClusterLink(reactor, target, **options)
    if isinstance(target, SentinelAddress):
        return SentinelLink(reactor, target, **options)
    return RedisLink(reactor, target, **options)
