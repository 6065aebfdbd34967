"""
Visitors for the multi-server tests: each a browser-like client with its own cookie jar,
driven through HAProxy from a pool of threads, recording what the site answered.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from typing import Any
from urllib.request import HTTPCookieProcessor, build_opener

import attrs


@attrs.define
class Traffic:
    """
    What the visitors did: each answered request's time and status, by visitor.
    """

    answered: list[tuple[float, int, int]] = attrs.field(factory=list)  # (time, visitor, status)
    failed: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def ok(self) -> list[tuple[float, int]]:
        return [(when, visitor) for when, visitor, status in self.answered if status == 200]

    def ok_between(self, start: float, end: float) -> int:
        return sum(1 for when, _ in self.ok() if start <= when <= end)


def visit(
    url: str,
    visitors: range,
    requests: int,
    traffic: Traffic,
    pause: float = 0.0,
    threads: int = 8,
    between: Callable[[int], None] | None = None,
) -> Traffic:
    """
    Each visitor makes ``requests`` requests (keeping its cookies), ``pause`` seconds apart;
    ``between(n)`` runs before each visitor's request number ``n``.
    """

    def one(visitor: int) -> None:
        opener = build_opener(HTTPCookieProcessor(CookieJar()))
        for number in range(requests):
            if between is not None:
                between(number)
            try:
                with opener.open(f"{url}/page/{visitor}/{number}", timeout=10) as response:
                    response.read()
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                with traffic._lock:
                    traffic.failed += 1
                continue
            with traffic._lock:
                traffic.answered.append((time.time(), visitor, status))
            if pause:
                time.sleep(pause)

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(one, visitor) for visitor in visitors]:
            future.result()
    return traffic


def get_json(url: str) -> Any:
    """
    A stats document, over loopback.
    """
    opener = build_opener()
    with opener.open(url, timeout=10) as response:
        return json.loads(response.read())


def wait_for(produce: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 20) -> Any:
    """
    Poll ``produce()`` until ``check`` holds of its value; that value (or the last, failing).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = produce()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def stream_events(url: str, stream: str, since: str, count: int, idle: float = 3.0) -> list[Any]:
    """
    The events of ``stream`` since ``since`` (history, as NDJSON), until ``count`` came or
    none came for ``idle`` seconds.
    """
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=idle)
    connection.request(
        "GET", f"/stats/stream/{stream}?since={since}", headers={"Accept": "application/json"}
    )
    response = connection.getresponse()
    events = []
    try:
        while len(events) < count:
            line = response.readline()
            if not line:
                break
            if line.strip():
                events.append(json.loads(line))
    except TimeoutError:
        pass
    finally:
        connection.close()
    return events
