"""
``twistd -n sessions --ingest URL`` end to end, without the internet: a real feed on a real
port, a real Redis. Every kept event is counted once, sessions by event time are those of
``cluster()`` over the same events, and a kill -9 mid-feed followed by a restart (and a clean
restart after it) counts exactly one pass over the events.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from urllib.request import HTTPCookieProcessor, build_opener

import pytest
import requests
import schemathesis

from twisted_sessions.clustering import cluster, to_seconds

from ..redis_process import RedisProcess
from ..stats.test_metrics import scrape
from ..twistd_process import Twistd, run_twistd
from .feed_process import FeedProcess
from .fixture import items, kept

PATIENCE = 60.0
SINCE = "2026-01-01T00:00:00Z"


@pytest.fixture
def feeds() -> Iterator[list[FeedProcess]]:
    started: list[FeedProcess] = []
    yield started
    for feed in started:
        feed.stop()


def feed(feeds: list[FeedProcess], *args: str) -> FeedProcess:
    process = FeedProcess(*args).start()
    feeds.append(process)
    return process


def stats(server: Twistd, path: str = "") -> Any:
    return json.loads(server.get("stats" + path)[1])


def wait(condition: Callable[[], Any], what: str, timeout: float = PATIENCE) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout} s"
        time.sleep(0.1)


def counted(server: Twistd, metrica: str, **query: str) -> dict[str, Any]:
    path = f"/metricas/{metrica}"
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    found: dict[str, Any] = stats(server, path)
    return found


def by(server: Twistd, metrica: str, axis: str) -> dict[str, int]:
    answer = stats(server, f"/metricas/{metrica}/iterate?by={axis}")
    return {item["key"]: item["count"] for item in answer["items"] if item["count"]}


def finished_sessions(events: list[dict[str, Any]], cutoff: float = 3600, lateness: float = 60):
    """
    The sessions ``cluster()`` makes of ``events`` sorted by time that the feed's watermark
    has ended: those a cutoff older than the newest event the lateness let through.
    """
    watermark = max(to_seconds(e["meta"]["dt"]) for e in events) - lateness
    in_time = sorted(events, key=lambda e: to_seconds(e["meta"]["dt"]))
    sessions = list(cluster((e["user"], to_seconds(e["meta"]["dt"]), e) for e in in_time))
    return [s for s in sessions if watermark - s.end >= cutoff]


def open_sessions(events: list[dict[str, Any]], cutoff: float = 3600, lateness: float = 60) -> int:
    """
    How many sessions are open at the end of the feed: those of the events the watermark let
    through that it has not ended (a cutoff past their last event).
    """
    watermark = max(to_seconds(e["meta"]["dt"]) for e in events) - lateness
    released = sorted(
        (e for e in events if to_seconds(e["meta"]["dt"]) <= watermark),
        key=lambda e: to_seconds(e["meta"]["dt"]),
    )
    sessions = cluster((e["user"], to_seconds(e["meta"]["dt"]), None) for e in released)
    return sum(1 for s in sessions if watermark - s.end < cutoff)


def check_counts(server: Twistd, events: list[dict[str, Any]]) -> None:
    """
    The server's counts are those of one pass over ``events``.
    """
    assert counted(server, "recentchange")["count"] == len(events)
    assert by(server, "recentchange", "wiki") == Counter(e["wiki"] for e in events)
    assert by(server, "recentchange", "bot") == Counter(
        "true" if e["bot"] else "false" for e in events
    )
    assert by(server, "recentchange", "namespace") == Counter(str(e["namespace"]) for e in events)
    expected = finished_sessions(events)
    sessions = counted(server, "recentchange_sessions")
    assert sessions["count"] == len(expected)
    assert sessions["total"] == pytest.approx(sum(s.duration for s in expected), abs=0.01)
    session_events = counted(server, "recentchange_session_events")
    assert session_events["total"] == sum(s.event_count for s in expected)
    single = counted(server, "recentchange_sessions", single="yes")["count"]
    assert single == sum(1 for s in expected if s.event_count == 1)


def settled(server: Twistd) -> bool:
    index = stats(server)
    return index["gauges"]["writer_backlog"] == 0


def test_a_feed_is_counted_sessionized_and_marked(
    workdir: Path, servers: list[Twistd], feeds: list[FeedProcess]
) -> None:
    """
    A feed replayed from history, cut every 300 items: every kept event counted once by
    wiki, type, bot and namespace at its event time; the sessions its watermark ended are
    cluster()'s, counted, in /stats/sessions and on the visits stream; each user marked in
    the activity bitmaps; the feed's state in /stats.
    """
    source = feed(feeds, "--count", "2000", "--cut-every", "300")
    server = Twistd(
        workdir,
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--ingest",
        source.stream_url,
        "--ingest-since",
        SINCE,
    ).start()
    servers.append(server)
    events = kept(items(2000))
    wait(lambda: counted(server, "recentchange")["count"] == len(events), "all counted")
    wait(lambda: settled(server), "written")
    check_counts(server, events)
    state = stats(server)["feeds"]["recentchange"]
    assert state["connected"] and state["state"] == "connected"
    assert state["events_kept"] == 2000
    assert (state["events_bad"], state["error_events"], state["events_filtered"]) == (1, 1, 7)
    assert state["reconnects"] >= 6
    assert state["last_event_time"] == max(e["meta"]["dt"] for e in events)
    expected = finished_sessions(events)
    assert state["sessions_finished"] == len(expected)
    assert state["open_sessions"] == open_sessions(events)
    # What /stats and /stats/sessions say of the feed is what the OpenAPI document declares.
    document = schemathesis.openapi.from_url(server.url + "stats/openapi.json")
    for path in ("/stats", "/stats/sessions"):
        response = requests.get(server.url.rstrip("/") + path, timeout=10)
        assert document[path]["GET"].validate_response(response) is not False
    samples = scrape(server)
    assert samples['twisted_sessions_feed_events_kept_total{feed="recentchange"}'] == 2000
    assert samples['twisted_sessions_feed_connected{feed="recentchange"}'] == 1
    assert samples['twisted_sessions_feed_open_sessions{feed="recentchange"}'] == open_sessions(
        events
    )
    sessions = stats(server, "/sessions")["feeds"]["recentchange"]
    assert sessions["finished"]["all_time"]["count"] == len(expected)
    assert sessions["active_sessions"] == state["open_sessions"]
    # Marked: the distinct users of the feed on its first day.
    day = stats(server, "/activity/recentchange?scale=day&since=2026-01-05&until=2026-01-05")
    first_day = {e["user"] for e in events if e["meta"]["dt"].startswith("2026-01-05")}
    assert day["points"][0]["users"] == len(first_day)
    # Each finished session is a visit of the visits stream, marked with its feed.
    visits = []
    opener = build_opener()
    with opener.open(server.url + "stats/stream/visits?since=0", timeout=10) as stream:
        for line in stream:
            if line.startswith(b"data: "):
                visits.append(json.loads(line[6:]))
                if len(visits) == len(expected):
                    break
    assert {v["feed"] for v in visits} == {"recentchange"}
    assert sorted((v["user"], v["requests"]) for v in visits) == sorted(
        (s.user, s.event_count) for s in expected
    )


def test_kill_9_mid_feed_then_restarts_count_one_pass(
    workdir: Path, servers: list[Twistd], feeds: list[FeedProcess]
) -> None:
    """
    The consuming server is killed (SIGKILL) a third into the feed and started again, then
    stopped cleanly and started again: the counts and the finished sessions are those of one
    pass, and the open sessions are rebuilt, not ended twice.
    """
    redis = RedisProcess(workdir / "redis", appendonly=True)
    (workdir / "redis").mkdir()
    redis.start()
    try:
        source = feed(feeds, "--count", "2000", "--batch", "10", "--interval", "0.02")
        args = (
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--redis",
            f"unix://{redis.socket}",
            "--ingest",
            source.stream_url,
            "--ingest-since",
            SINCE,
            "--data-dir",
            "data",
        )
        first = Twistd(workdir, *args).start()
        servers.append(first)
        wait(lambda: counted(first, "recentchange")["count"] >= 600, "a third counted")
        first.signal(signal.SIGKILL)
        first.wait()
        events = kept(items(2000))
        second = Twistd(workdir, *args).start()
        servers.append(second)
        wait(lambda: counted(second, "recentchange")["count"] >= len(events), "all counted")
        wait(lambda: settled(second), "written")
        time.sleep(1.5)  # Any count twice would show by now: flushes are every second.
        check_counts(second, events)
        assert "resuming after event" in second.output
        open_before = stats(second)["feeds"]["recentchange"]["open_sessions"]
        second.signal(signal.SIGTERM)
        assert second.wait() in (0, -signal.SIGTERM)  # twistd re-raises SIGTERM when done.
        assert "shutdown complete" in second.output
        third = Twistd(workdir, *args).start()
        servers.append(third)
        wait(
            lambda: (
                stats(third)["feeds"]["recentchange"]["open_sessions"] == open_before
                and not stats(third)["feeds"]["recentchange"]["replaying"]
            ),
            "open sessions rebuilt",
        )
        wait(lambda: settled(third), "written")
        time.sleep(1.5)
        check_counts(third, events)
    finally:
        redis.stop()


def test_one_server_sessionizes_what_another_publishes(
    workdir: Path, servers: list[Twistd]
) -> None:
    """
    Server B consumes server A's ``requests`` stream, protected by a token: B counts A's
    requests by resource and status, and holds one open session per visitor of A.
    """
    (workdir / "a").mkdir()
    (workdir / "b").mkdir()
    token = workdir / "token"
    token.write_text("a-token-of-24-characters\n")
    a = Twistd(
        workdir / "a",
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--app",
        "tests.apps.pages",
        "--stats-token-file",
        str(token),
    )
    a.start()
    servers.append(a)
    a.wait_for(r"Redis at \S+ db 0 is reachable")
    b = Twistd(
        workdir / "b",
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--ingest",
        a.url + "stats/stream/requests",
        "--ingest-user",
        "user",
        "--ingest-time",
        "time",
        "--ingest-axes",
        "resource,status",
        "--ingest-name",
        "a_requests",
        "--ingest-lateness",
        "0",
        "--ingest-token-file",
        str(token),
    ).start()
    servers.append(b)
    wait(lambda: stats(b)["feeds"]["a_requests"]["connected"], "B connected to A")
    visitors = [build_opener(HTTPCookieProcessor(CookieJar())) for _ in range(5)]
    for round_ in range(8):
        for visitor in visitors:
            path = "a" if round_ % 2 else "b/1"
            with visitor.open(a.url + path, timeout=10) as response:
                response.read()
    wait(lambda: counted(b, "a_requests")["count"] == 40, "A's requests counted by B")
    state = stats(b)["feeds"]["a_requests"]
    assert state["open_sessions"] == 5
    assert by(b, "a_requests", "status") == {"200": 40}
    assert by(b, "a_requests", "resource") == {"/a": 20, "/b": 20}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ingest", "ftp://feed"), "--ingest needs an http(s) URL"),
        (("--ingest", "http://x/s", "--ingest-filter", "type"), "--ingest-filter"),
        (("--ingest", "http://x/s", "--ingest-since", "yesterday"), "--ingest-since"),
        (("--ingest", "http://x/s", "--ingest-lateness", "-1"), "--ingest-lateness"),
        (("--ingest", "http://x/s", "--ingest-mapper", "nope"), "--ingest-mapper"),
        (("--ingest", "http://x/a", "--ingest", "http://x/b", "--ingest-name", "f"), "single"),
        (("--ingest", "http://x/s", "--ingest-name", "Bad Name"), "--ingest-name"),
    ],
)
def test_bad_ingest_options_are_named(workdir: Path, args: tuple[str, ...], message: str) -> None:
    result = run_twistd(workdir, *args)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
