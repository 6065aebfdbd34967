"""
Where Redis is: parsing ``--redis`` URLs into a value the connection can use.

Accepted forms: ``redis://[:password@]host[:port][/db]`` and
``unix:///path/to/redis.sock[?db=N][&password=...]``.
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


def _db_number(text: str, url: str) -> int:
    if not text.isdigit() or int(text) > 1_000_000:
        raise ValueError(f"the database in Redis URL {url!r} must be a number, not {text!r}")
    return int(text)


def parse_redis_url(url: str) -> RedisAddress:
    """
    Parse a ``redis://`` or ``unix://`` URL.

    :raises ValueError: naming the URL and what is wrong with it.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"Redis URL {url!r} is malformed: {error}") from None
    query = parse_qs(parts.query)
    password = unquote(parts.password) if parts.password else None
    if "password" in query:
        password = query["password"][-1]
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
        f"Redis URL {url!r} must start with redis:// or unix:// "
        "(e.g. redis://localhost:6379/0 or unix:///run/redis.sock?db=0)"
    )
