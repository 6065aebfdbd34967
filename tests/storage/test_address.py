"""
Parsing ``--redis`` URLs.
"""

from __future__ import annotations

import pytest

from twisted_sessions.storage import RedisAddress, parse_redis_url


@pytest.mark.parametrize(
    "url, expected",
    [
        ("redis://localhost:6379/0", RedisAddress(host="localhost", port=6379, db=0)),
        ("redis://cache.internal/3", RedisAddress(host="cache.internal", port=6379, db=3)),
        ("redis://[::1]:7000", RedisAddress(host="::1", port=7000, db=0)),
        ("redis://u:p%40ss@h:1/2", RedisAddress(host="h", port=1, db=2, password="p@ss")),
        ("unix:///run/redis.sock", RedisAddress(path="/run/redis.sock", db=0)),
        ("unix:///run/redis.sock?db=5", RedisAddress(path="/run/redis.sock", db=5)),
    ],
)
def test_accepted_forms(url: str, expected: RedisAddress) -> None:
    """
    TCP and unix socket URLs, with database numbers and passwords.
    """
    parsed = parse_redis_url(url)
    assert parsed == expected
    assert parsed.password == expected.password


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://localhost:6379", "must start with redis:// or unix://"),
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
