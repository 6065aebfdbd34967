"""
Where Redis is: parsing ``--redis`` URLs into a value the connection can use.

Accepted forms: ``redis://[:password@]host[:port][/db]``,
``unix:///path/to/redis.sock[?db=N][&password=...]``,
``redis+cluster://[:password@]host:port[,host:port...]`` (a Redis Cluster: any of its nodes, to
learn the rest from) and ``redis+sentinel://[:password@]host:port[,host:port...]/service[/db]``
(a primary that Sentinel fails over: the sentinels and the service name they watch).
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import attrs

DEFAULT_PORT = 6379


@attrs.frozen
class RedisAddress:
    """
    A Redis server to connect to: a TCP host and port, or a unix socket path, and a database.

    ``password`` is kept out of ``repr`` and :meth:`describe` so that it never reaches a log.
    """

    host: str | None = None
    port: int = DEFAULT_PORT
    path: str | None = None
    db: int = 0
    password: str | None = attrs.field(default=None, repr=False)

    def describe(self) -> str:
        """
        A loggable description without the password.
        """
        where = f"unix:{self.path}" if self.path is not None else f"{self.host}:{self.port}"
        return f"{where} db {self.db}"


@attrs.frozen
class ClusterAddress:
    """
    A Redis Cluster: seed nodes to learn its topology from (one is enough; all is safer).

    A cluster has one database only, number 0.
    """

    seeds: tuple[RedisAddress, ...]
    password: str | None = attrs.field(default=None, repr=False)

    def describe(self) -> str:
        """
        A loggable description without the password.
        """
        return "cluster " + ",".join(f"{seed.host}:{seed.port}" for seed in self.seeds)


@attrs.frozen
class SentinelAddress:
    """
    A primary watched by Redis Sentinel: the sentinels to ask, and the service's name.
    """

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str | None = attrs.field(default=None, repr=False)

    def describe(self) -> str:
        """
        A loggable description without the password.
        """
        where = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"sentinel {self.service} via {where} db {self.db}"


#: Where the server's Redis is: one server, a cluster, or a primary behind Sentinel.
RedisTarget = RedisAddress | ClusterAddress | SentinelAddress

#: Sentinel's own port, when a sentinel's is not given.
SENTINEL_PORT = 26379


def _hosts(url: str, netloc: str, default_port: int | None) -> list[tuple[str, int]]:
    """
    The ``host:port`` list of a cluster or sentinel URL (after any ``password@``).
    """
    hosts = []
    for item in netloc.rpartition("@")[2].split(","):
        try:
            parts = urlsplit(f"redis://{item}")
            port = parts.port
        except ValueError as error:
            raise ValueError(f"Redis URL {url!r}: {item!r} is malformed: {error}") from None
        if not parts.hostname:
            raise ValueError(f"Redis URL {url!r} names no host in {item!r} (host:port)")
        if port is None:
            if default_port is None:
                raise ValueError(f"Redis URL {url!r}: give {item!r} a port (host:port)")
            port = default_port
        hosts.append((parts.hostname, port))
    return hosts


def _db_number(text: str, url: str) -> int:
    if not text.isdigit() or int(text) > 1_000_000:
        raise ValueError(f"the database in Redis URL {url!r} must be a number, not {text!r}")
    return int(text)


def parse_redis_url(url: str) -> RedisTarget:
    """
    Parse a ``redis://``, ``unix://``, ``redis+cluster://`` or ``redis+sentinel://`` URL.

    :raises ValueError: naming the URL and what is wrong with it.
    """
    try:
        parts = urlsplit(url)
        # A cluster's or sentinels' netloc lists several host:port: no one port to read.
        port = None if parts.scheme.startswith("redis+") else parts.port
    except ValueError as error:
        raise ValueError(f"Redis URL {url!r} is malformed: {error}") from None
    query = parse_qs(parts.query)
    password = unquote(parts.password) if parts.password else None
    if "password" in query:
        password = query["password"][-1]
    if parts.scheme == "redis+cluster":
        if parts.path.strip("/") not in ("", "0"):
            raise ValueError(f"Redis URL {url!r}: a cluster has database 0 only")
        seeds = tuple(
            RedisAddress(host=host, port=port) for host, port in _hosts(url, parts.netloc, None)
        )
        return ClusterAddress(seeds, password=password)
    if parts.scheme == "redis+sentinel":
        path = [part for part in parts.path.split("/") if part]
        if not path or len(path) > 2:
            raise ValueError(
                f"Redis URL {url!r} must name the service Sentinel watches "
                "(redis+sentinel://host:port[,host:port]/service[/db])"
            )
        return SentinelAddress(
            tuple(_hosts(url, parts.netloc, SENTINEL_PORT)),
            path[0],
            db=_db_number(path[1] if len(path) == 2 else "0", url),
            password=password,
        )
    if parts.scheme == "redis":
        if not parts.hostname:
            raise ValueError(f"Redis URL {url!r} names no host (redis://host:port/db)")
        db_text = parts.path.strip("/") or query.get("db", ["0"])[-1]
        return RedisAddress(
            host=parts.hostname,
            port=port if port is not None else DEFAULT_PORT,
            db=_db_number(db_text, url),
            password=password,
        )
    if parts.scheme == "unix":
        if not parts.path or parts.netloc:
            raise ValueError(
                f"Redis URL {url!r} must be unix:///absolute/path.sock (three slashes)"
            )
        return RedisAddress(
            path=parts.path,
            db=_db_number(query.get("db", ["0"])[-1], url),
            password=password,
        )
    raise ValueError(
        f"Redis URL {url!r} must start with redis://, unix://, redis+cluster:// or "
        "redis+sentinel:// (e.g. redis://localhost:6379/0, unix:///run/redis.sock?db=0, "
        "redis+cluster://10.0.0.1:7000,10.0.0.2:7000 or redis+sentinel://10.0.0.1:26379/mymaster)"
    )
