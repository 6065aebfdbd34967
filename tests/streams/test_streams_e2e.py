"""
Live streams over a real port, read by the clients people use: ``sseclient`` and Pywikibot's
own ``EventStreams``; every event once, in order, across cuts, restarts and servers.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import HTTPCookieProcessor

import pytest
import sseclient

from ..redis_process import RedisProcess
from ..twistd_process import Twistd

#: Seconds a test waits for events it expects.
PATIENCE = 20.0


def start(workdir: Path, servers: list[Twistd], *args: str) -> Twistd:
    """
    A server with the publishing app (``tests.apps.publisher``), ready to publish.
    """
    server = Twistd(
        workdir,
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--app",
        "tests.apps.publisher",
        *args,
    )
    if "--data-dir" not in args:
        server.args = (*server.args, "--data-dir", "data")
    server.start()
    servers.append(server)
    server.wait_for(r"Redis at \S+ db 0 is reachable")
    return server


def publish(server: Twistd, stream: str, count: int, first: int = 0, size: int = 0) -> None:
    status, _ = server.get(f"publish?stream={stream}&n={count}&start={first}&size={size}")
    assert status == 200


def wait_known(server: Twistd, stream: str) -> None:
    """
    Wait until ``server`` knows ``stream`` (a HEAD of it is a 200, not a 400).
    """
    parts = urlsplit(server.url)
    deadline = time.monotonic() + PATIENCE
    while True:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.request("HEAD", f"/stats/stream/{stream}")
        status = connection.getresponse().status
        connection.close()
        if status == 200:
            return
        assert status == 400 and time.monotonic() < deadline, status
        time.sleep(0.05)


def now_ms() -> int:
    return int(time.time() * 1000)


def messages(client: sseclient.SSEClient, count: int) -> list[tuple[str, dict[str, Any]]]:
    """
    The next ``count`` message events (id and data) of an sseclient stream.
    """
    found: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + PATIENCE
    for event in client:
        if event.event == "message" and event.data:
            found.append((event.id, json.loads(event.data)))
            if len(found) == count:
                return found
        assert time.monotonic() < deadline, f"only {len(found)} of {count} events came"
    raise AssertionError(f"the stream ended after {len(found)} of {count} events")


def test_sseclient_gets_every_event_once_in_order(workdir: Path, servers: list[Twistd]) -> None:
    """
    Events published after ``since`` reach an sseclient once each, in order, with an event
    type, an id and data as EventStreams sends them ($schema and meta beside the fields);
    each is written to Redis once and read back once, whatever the number of clients.
    """
    server = start(workdir, servers, "--streams", "")  # Only the application's events.
    publish(server, "signups", 0)
    since = now_ms()
    client = sseclient.SSEClient(
        server.url + f"stats/stream/signups?since={since}", timeout=PATIENCE
    )
    for first in range(0, 300, 100):
        publish(server, "signups", 100, first)
    received = messages(client, 300)
    assert [data["n"] for _, data in received] == list(range(300))
    event_id, data = received[0]
    assert json.loads(event_id)[0]["stream"] == "signups"
    assert data["$schema"] == "/twisted-sessions/signups/1.0.0"
    assert data["meta"]["stream"] == "signups"
    assert data["meta"]["dt"].endswith("Z")
    assert len({data["meta"]["id"] for _, data in received}) == 300
    gauges = json.loads(server.get("stats")[1])["streams"]
    assert gauges["stream_events_written"] == 300
    assert gauges["stream_events_read"] == 300
    assert gauges["connected_clients"] == {"signups": 1}


def test_a_cut_connection_resumes_with_its_last_id(workdir: Path, servers: list[Twistd]) -> None:
    """
    A client that loses its connection in the middle of a stream and reconnects with the id
    of the last event it got (``Last-Event-ID``) loses nothing and gets nothing twice.
    """
    server = start(workdir, servers)
    publish(server, "signups", 0)
    url = server.url + f"stats/stream/signups?since={now_ms()}"
    client = sseclient.SSEClient(url, timeout=PATIENCE)
    publish(server, "signups", 100)
    first = messages(client, 40)
    client.resp.close()  # Cut, with 60 events published and not yet read.
    publish(server, "signups", 100, 100)
    resumed = sseclient.SSEClient(url, last_id=first[-1][0], timeout=PATIENCE)
    rest = messages(resumed, 160)
    assert [data["n"] for _, data in first + rest] == list(range(200))


def test_pywikibot_eventstreams_reads_and_filters(workdir: Path, servers: list[Twistd]) -> None:
    """
    Pywikibot's own EventStreams client reads our stream unchanged: its register_filter
    (bot=True, matched by identity) and set_maximum_items work on our events.
    """
    from pywikibot.comms.eventstreams import EventStreams

    server = start(workdir, servers)
    publish(server, "signups", 1, 999)  # The stream exists before Pywikibot connects.
    since = now_ms()
    publish(server, "signups", 40)
    stream = EventStreams(url=server.url + f"stats/stream/signups?since={since}", site=None)
    stream.register_filter(bot=True)
    stream.set_maximum_items(10)
    got = list(stream)
    assert [event["n"] for event in got] == list(range(0, 20, 2))
    assert all(event["meta"]["stream"] == "signups" for event in got)


def test_server_side_filters_follow_pywikibot(workdir: Path, servers: list[Twistd]) -> None:
    """
    ``?bot=true`` keeps the events whose bot is true (not 1, not "true"); a key an event lacks
    matches nothing; a value given twice matches either.
    """
    server = start(workdir, servers)
    since = now_ms()
    publish(server, "signups", 10)
    base = server.url + f"stats/stream/signups?since={since}"
    evens = messages(sseclient.SSEClient(base + "&bot=true", timeout=PATIENCE), 5)
    assert [data["n"] for _, data in evens] == [0, 2, 4, 6, 8]
    picked = messages(sseclient.SSEClient(base + "&n=3&n=7", timeout=PATIENCE), 2)
    assert [data["n"] for _, data in picked] == [3, 7]
    odd = messages(sseclient.SSEClient(base + "&kind=odd&bot=false", timeout=PATIENCE), 1)
    assert odd[0][1]["n"] == 1
    # Nothing matches a missing key: the stream stays open and silent (only comments).
    lines = read_raw(server, "stats/stream/signups?since=0&missing=1", seconds=1.5)
    assert b"data:" not in lines


def read_raw(
    server: Twistd, path: str, seconds: float, headers: dict[str, str] | None = None
) -> bytes:
    """
    What a stream sends in ``seconds`` (raw bytes of the body).
    """
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=seconds)
    connection.request("GET", "/" + path, headers=headers or {})
    response = connection.getresponse()
    assert response.status == 200, response.read()
    body = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            chunk = response.read1(65536)
            if not chunk:
                break
            body += chunk
    except TimeoutError:
        pass
    connection.close()
    return body


def test_ndjson_for_accept_json(workdir: Path, servers: list[Twistd]) -> None:
    """
    ``Accept: application/json`` gets one JSON object a line instead of SSE.
    """
    server = start(workdir, servers)
    publish(server, "signups", 3)
    body = read_raw(server, "stats/stream/signups?since=0", 1.5, {"Accept": "application/json"})
    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert [line["n"] for line in lines] == [0, 1, 2]
    assert b"event:" not in body


def test_bad_requests_are_named_400s(workdir: Path, servers: list[Twistd]) -> None:
    """
    An unknown stream, a bad since, a bad Last-Event-ID and a bad filter value are 400s with
    a JSON body naming the problem; the headers EventSource needs are sent on a good one.
    """
    server = start(workdir, servers)
    publish(server, "signups", 1)
    parts = urlsplit(server.url)
    cases = [
        ("/stats/stream/signups,nope", {}, "no such stream: nope"),
        ("/stats/stream/Bad%20Name", {}, "a stream name is"),
        ("/stats/stream/signups?since=yesterday", {}, "since must be"),
        ("/stats/stream/signups", {"Last-Event-ID": "42"}, "Last-Event-ID"),
        ("/stats/stream/signups?bot=%22x", {}, "filter value"),
    ]
    for path, headers, problem in cases:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = json.loads(response.read())
        assert response.status == 400, (path, body)
        assert problem in body["error"], (path, body)
        connection.close()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", "/stats/stream/signups")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert response.getheader("X-Accel-Buffering") == "no"
    assert response.read1(100).startswith(b":ok\nretry: ")
    connection.close()


def test_connection_caps_answer_429(workdir: Path, servers: list[Twistd]) -> None:
    """
    Past the per-address cap a new stream client gets a 429 with a JSON body; when one
    leaves, a new one is let in.
    """
    server = start(workdir, servers, "--stream-max-clients-per-ip", "2")
    publish(server, "signups", 1)
    parts = urlsplit(server.url)
    open_ones = []
    for _ in range(2):
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.request("GET", "/stats/stream/signups")
        assert connection.getresponse().status == 200
        open_ones.append(connection)
    refused = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    refused.request("GET", "/stats/stream/signups")
    response = refused.getresponse()
    assert response.status == 429
    assert "most stream connections (2)" in json.loads(response.read())["error"]
    open_ones.pop().close()
    deadline = time.monotonic() + PATIENCE
    while True:
        again = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        again.request("GET", "/stats/stream/signups")
        status = again.getresponse().status
        again.close()
        if status == 200:
            break
        assert time.monotonic() < deadline, "the closed client's place was never freed"
        time.sleep(0.1)


def test_the_total_cap_answers_429(workdir: Path, servers: list[Twistd]) -> None:
    """
    Past --stream-max-clients in all, a new stream client gets a 429 naming the cap.
    """
    server = start(workdir, servers, "--stream-max-clients", "1")
    publish(server, "signups", 0)
    parts = urlsplit(server.url)
    first = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    first.request("GET", "/stats/stream/signups")
    assert first.getresponse().status == 200
    second = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    second.request("GET", "/stats/stream/signups")
    response = second.getresponse()
    assert response.status == 429
    assert response.getheader("Retry-After") == "10"
    assert "most stream clients (1)" in json.loads(response.read())["error"]
    first.close()


def test_restart_in_the_middle_resumes_from_history(workdir: Path, servers: list[Twistd]) -> None:
    """
    The server restarts while a client reads: the client reconnects with its last id to the
    restarted server and gets the rest, from the history in Redis, once each.
    """
    server = start(workdir, servers)
    publish(server, "signups", 0)
    url = server.url + f"stats/stream/signups?since={now_ms()}"
    client = sseclient.SSEClient(url, timeout=PATIENCE)
    publish(server, "signups", 50)
    first = messages(client, 20)
    server.signal(signal.SIGTERM)
    assert server.wait() in (0, -signal.SIGTERM)  # twistd re-raises the signal it stopped on
    assert "shutdown complete" in server.output
    again = start(workdir, servers)
    publish(again, "signups", 50, 50)
    resumed = sseclient.SSEClient(
        again.url + "stats/stream/signups", last_id=first[-1][0], timeout=PATIENCE
    )
    rest = messages(resumed, 80)
    assert [data["n"] for _, data in first + rest] == list(range(100))


def test_a_client_sees_what_another_server_publishes(
    workdir: Path, servers: list[Twistd], redis_process: RedisProcess
) -> None:
    """
    Two servers sharing one Redis: a client of one gets the events the other publishes, and
    resumes on either with the same id.
    """
    redis = f"unix://{redis_process.socket}"
    (workdir / "one").mkdir()
    (workdir / "two").mkdir()
    one = start(workdir / "one", servers, "--redis", redis)
    two = start(workdir / "two", servers, "--redis", redis)
    stream = f"shared-{os.getpid()}-{time.monotonic_ns()}"
    publish(two, stream, 1)
    wait_known(one, stream)  # Once two's first flush has written it to Redis.
    since = now_ms()
    client = sseclient.SSEClient(one.url + f"stats/stream/{stream}?since={since}")
    publish(two, stream, 30, 1)
    got = messages(client, 30)
    assert [data["n"] for _, data in got] == list(range(1, 31))
    client.resp.close()
    publish(one, stream, 10, 31)
    on_two = sseclient.SSEClient(
        two.url + f"stats/stream/{stream}", last_id=got[14][0], timeout=PATIENCE
    )
    assert [data["n"] for _, data in messages(on_two, 25)] == list(range(16, 41))


def test_builtin_streams_carry_no_session_ids_or_cookies(
    workdir: Path, servers: list[Twistd]
) -> None:
    """
    The requests, visits and activity streams report a user's requests and visit with the
    visitor shown as a hash: no cookie value and no session id appears in any of them.
    """
    server = start(workdir, servers, "--cutoff", "1")
    since = now_ms()
    client = sseclient.SSEClient(
        server.url + f"stats/stream/requests,visits,activity?since={since}", timeout=PATIENCE
    )
    for path in ("a", "b", "a/deeper"):
        assert server.get(path)[0] == 200
    got = messages(client, 6)  # 3 requests, the marks, the visit (after its 1 s cutoff)
    deadline = time.monotonic() + PATIENCE
    while not any(data["meta"]["stream"] == "visits" for _, data in got):
        got += messages(client, 1)
        assert time.monotonic() < deadline
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for _, data in got:
        by_stream.setdefault(data["meta"]["stream"], []).append(data)
    requests = by_stream["requests"]
    assert [r["resource"] for r in requests[:3]] == ["/a", "/b", "/a"]
    assert {r["status"] for r in requests[:3]} == {200}
    visit = by_stream["visits"][0]
    assert visit["requests"] == 3 and visit["entry"] == "/a" and visit["exit"] == "/a"
    assert visit["end_reason"] == "cutoff"
    users = {r["user"] for r in requests} | {visit["user"]}
    assert len(users) == 1 and next(iter(users)).startswith("v-")
    jars = [h.cookiejar for h in server.opener.handlers if isinstance(h, HTTPCookieProcessor)]
    cookies = [cookie.value for cookie in jars[0]]
    assert len(cookies) == 2  # The session's and the visitor's.
    everything = json.dumps(got)
    for value in cookies:
        assert value not in everything


@pytest.fixture
def slow_socket() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def test_a_slow_client_is_dropped_at_its_bound(
    workdir: Path, servers: list[Twistd], slow_socket: list[socket.socket]
) -> None:
    """
    A client that reads one byte a second is disconnected once more than its buffer bound is
    held back for it (counted in /stats), while a fast client keeps getting every event
    promptly.
    """
    server = start(workdir, servers, "--stream-client-buffer", "65536")
    publish(server, "signups", 1)
    parts = urlsplit(server.url)
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect((parts.hostname, parts.port))
    slow_socket.append(slow)
    slow.sendall(b"GET /stats/stream/signups HTTP/1.1\r\nHost: x\r\n\r\n")
    fast = sseclient.SSEClient(server.url + f"stats/stream/signups?since={now_ms()}")
    latencies = []
    for batch in range(20):
        published = time.monotonic()
        publish(server, "signups", 50, 1 + batch * 50, size=2000)
        messages(fast, 50)
        latencies.append(time.monotonic() - published)
        slow.recv(1)
    _, body = server.get("stats")
    gauges = json.loads(body)["streams"]
    assert gauges["slow_client_disconnects"] == 1, gauges
    assert max(latencies) < 2.0, latencies
    assert "read slower than its events came" in server.output


def test_clients_stay_through_a_redis_outage(
    workdir: Path, servers: list[Twistd], tmp_path: Path
) -> None:
    """
    Redis goes away and comes back: a connected client stays connected and gets every event
    published meanwhile, once, when Redis is back.
    """
    redis = RedisProcess(tmp_path, appendonly=True).start()
    try:
        server = start(workdir, servers, "--redis", f"unix://{redis.socket}")
        publish(server, "signups", 0)
        client = sseclient.SSEClient(
            server.url + f"stats/stream/signups?since={now_ms()}", timeout=PATIENCE
        )
        publish(server, "signups", 10)
        before = messages(client, 10)
        redis.kill()
        publish(server, "signups", 10, 10)  # Waits in the writer.
        redis.start()
        publish(server, "signups", 10, 20)
        after = messages(client, 20)
        assert [data["n"] for _, data in before + after] == list(range(30))
        assert "stream reader: Redis is back" in server.output
    finally:
        redis.stop()


def test_resuming_inside_a_batch_of_requests(workdir: Path, servers: list[Twistd]) -> None:
    """
    The requests of one flush are one entry in Redis: a client cut after some of them
    resumes with its last id and gets the rest of that entry and what follows, once each.
    """
    server = start(workdir, servers)
    url = server.url + f"stats/stream/requests?since={now_ms()}"
    client = sseclient.SSEClient(url, timeout=PATIENCE)
    # What the stream must show: these resources in this order, each once (two requests may
    # share a millisecond: their times alone cannot tell them apart).
    sent = [f"/{name}" for name in "abcacbbcaabc"]
    for resource in sent:
        assert server.get(resource[1:])[0] == 200
    first = messages(client, 5)
    client.resp.close()
    assert any("." in json.loads(event_id)[0]["id"] for event_id, _ in first[1:]), first
    resumed = sseclient.SSEClient(url, last_id=first[-1][0], timeout=PATIENCE)
    rest = messages(resumed, 7)
    assert [data["resource"] for _, data in first + rest] == sent
    times = [data["time"] for _, data in first + rest]
    assert times == sorted(times)
    ids = [json.loads(event_id)[0]["id"] for event_id, _ in first + rest]
    assert len(set(ids)) == 12


def test_heartbeats_and_last_event_id_over_since(workdir: Path, servers: list[Twistd]) -> None:
    """
    An idle stream gets a comment line every --stream-heartbeat seconds (proxies keep it
    open; SSE clients ignore it); a client sending both Last-Event-ID and since resumes after
    the id: the id wins.
    """
    server = start(workdir, servers, "--stream-heartbeat", "0.3")
    publish(server, "signups", 0)
    since = now_ms()
    publish(server, "signups", 6)
    got = messages(sseclient.SSEClient(server.url + f"stats/stream/signups?since={since}"), 6)
    idle = read_raw(server, "stats/stream/signups", 1.5)
    assert idle.count(b":\n") >= 3, idle
    resumed = sseclient.SSEClient(
        server.url + f"stats/stream/signups?since={since}", last_id=got[3][0], timeout=PATIENCE
    )
    assert [data["n"] for _, data in messages(resumed, 2)] == [4, 5]
