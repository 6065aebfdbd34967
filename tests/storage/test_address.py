"""
Parsing ``--redis`` URLs.
"""

from __future__ import annotations

import pytest

from twisted_sessions.storage import (
    ClusterAddress,
    RedisAddress,
    RedisTarget,
    SentinelAddress,
    parse_redis_url,
)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("redis://localhost:6379/0", RedisAddress(host="localhost", port=6379, db=0)),
        ("redis://cache.internal/3", RedisAddress(host="cache.internal", port=6379, db=3)),
        ("redis://[::1]:7000", RedisAddress(host="::1", port=7000, db=0)),
        ("redis://u:p%40ss@h:1/2", RedisAddress(host="h", port=1, db=2, password="p@ss")),
        ("unix:///run/redis.sock", RedisAddress(path="/run/redis.sock", db=0)),
        ("unix:///run/redis.sock?db=5", RedisAddress(path="/run/redis.sock", db=5)),
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001",
            ClusterAddress(
                (RedisAddress(host="10.0.0.1", port=7000), RedisAddress(host="10.0.0.2", port=7001))
            ),
        ),
        (
            "redis+cluster://:s%40cret@h:7000/0",
            ClusterAddress((RedisAddress(host="h", port=7000),), password="s@cret"),
        ),
        (
            "redis+sentinel://s1,s2:26380/mymaster",
            SentinelAddress((("s1", 26379), ("s2", 26380)), "mymaster"),
        ),
        (
            "redis+sentinel://:pw@[::1]:26379/cache/3",
            SentinelAddress((("::1", 26379),), "cache", db=3, password="pw"),
        ),
    ],
)
def test_accepted_forms(url: str, expected: RedisTarget) -> None:
    """
    TCP and unix socket URLs, with database numbers and passwords; a cluster's seed nodes; the
    sentinels of a service, with Sentinel's own port by default.
    """
    parsed = parse_redis_url(url)
    assert parsed == expected
    assert parsed.password == expected.password


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://localhost:6379", "must start with redis://, unix://, redis+cluster://"),
        ("redis+cluster://h1", "give 'h1' a port"),
        ("redis+cluster://h1:7000,:7001", "names no host in ':7001'"),
        ("redis+cluster://h1:7000/2", "database 0 only"),
        ("redis+sentinel://s1:26379", "must name the service"),
        ("redis+sentinel://s1:26379/svc/x", "must be a number"),
        ("localhost:6379", "must start with"),
        ("redis://:6379/0", "names no host"),
        ("redis://localhost:99999/0", "malformed"),
        ("redis://localhost:6379/zero", "must be a number"),
        ("unix://relative.sock", "three slashes"),
        ("unix:///run/redis.sock?db=-1", "must be a number"),
    ],
)
def test_bad_urls_are_named(url: str, fragment: str) -> None:
    """
    A bad URL is a ValueError that quotes the URL and says what is wrong.
    """
    with pytest.raises(ValueError) as caught:
        parse_redis_url(url)
    assert fragment in str(caught.value)
    assert repr(url) in str(caught.value)
