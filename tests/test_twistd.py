"""
``twistd -n sessions`` end to end: a real process, a real port, the embedded redis-server.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .twistd_process import TWISTD, Twistd, live_processes_mentioning, run_twistd

#: twistd re-raises SIGTERM after a clean shutdown, so the exit status says "terminated".
CLEAN_EXIT = (0, -signal.SIGTERM)


def test_twistd_lists_the_plugin(tmp_path: Path) -> None:
    """
    After installation ``twistd --help`` lists the ``sessions`` subcommand.
    """
    result = subprocess.run(
        [*TWISTD, "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0
    assert any(line.split()[:1] == ["sessions"] for line in result.stdout.splitlines())


def test_serves_tracks_and_shuts_down_cleanly(workdir: Path, servers: list[Twistd]) -> None:
    """
    The server answers on its port, tracks the visitor's session across requests, uses its
    embedded Redis, and on SIGTERM expires the sessions, stops Redis and exits 0 with no
    redis-server left behind.
    """
    server = Twistd(workdir, "--port", "tcp:0:interface=127.0.0.1", "--data-dir", "data")
    servers.append(server.start())
    server.wait_for("embedded Redis ready")
    server.wait_for(r"Redis at unix:\S+ db 0 is reachable")
    assert f"stats tree at {server.url}stats/: loopback clients only" in server.output
    status, first = server.get()
    assert status == 200
    assert "served 1 request(s)" in first
    # It links to the statistics, and says who may read them.
    assert '<a href="/stats/dashboard/">' in first and '<a href="/stats/metrics">' in first
    assert "this machine only" in first
    _, second = server.get()
    assert "served 2 request(s)" in second
    assert "Redis (unix:" in second and "): connected." in second
    socket_path = str(workdir / "data" / "redis.sock")
    assert live_processes_mentioning(socket_path)
    server.signal(signal.SIGTERM)
    assert server.wait() in CLEAN_EXIT
    output = server.output
    assert "shutdown: expired 1 live session(s)" in output
    assert "embedded Redis stopped" in output
    assert "shutdown complete" in output
    assert "Traceback" not in output
    assert live_processes_mentioning(socket_path) == []
    assert (workdir / "data" / "appendonly.aof").exists()


def test_killed_server_leaves_no_redis(workdir: Path, servers: list[Twistd]) -> None:
    """
    Even SIGKILL of the server (no shutdown code runs) leaves no redis-server behind.
    """
    server = Twistd(workdir, "--port", "tcp:0:interface=127.0.0.1", "--data-dir", "data")
    servers.append(server.start())
    server.wait_for("embedded Redis ready")
    socket_path = str(workdir / "data" / "redis.sock")
    assert live_processes_mentioning(socket_path)
    server.signal(signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 10
    while live_processes_mentioning(socket_path):
        assert time.monotonic() < deadline, "the embedded redis-server outlived the server"
        time.sleep(0.05)


def test_shutdown_runs_application_hooks(workdir: Path, servers: list[Twistd]) -> None:
    """
    With ``--app``, the user's resource is served with tracking, and SIGTERM expires its
    sessions through the normal path: the application's notifyOnExpire hook runs.
    """
    server = Twistd(
        workdir,
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--data-dir",
        "data",
        "--app",
        "examples.short_session.make_root",
    )
    servers.append(server.start())
    status, body = server.get("logme")
    assert (status, body) == (200, "")
    server.signal(signal.SIGTERM)
    assert server.wait() in CLEAN_EXIT
    assert "has expired." in server.output


def test_clustered_sessions_delivered_at_shutdown(workdir: Path, servers: list[Twistd]) -> None:
    """
    Requests are clustered into visits; at SIGTERM every open visit is finished and handed to
    the ``--session-hook`` before the process exits.
    """
    server = Twistd(
        workdir,
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--data-dir",
        "data",
        "--app",
        "examples.counter.resource",
        "--session-hook",
        "examples.session_hook.print_visit",
    )
    servers.append(server.start())
    for _ in range(3):
        server.get("visit")
    server.signal(signal.SIGTERM)
    assert server.wait() in CLEAN_EXIT
    output = server.output
    assert "finishing 1 open clustered session(s)" in output
    assert "visit #0 of " in output
    assert "3 request(s) over 0 s, entering at /visit" in output


def test_external_redis_down_still_serves(workdir: Path, servers: list[Twistd]) -> None:
    """
    With ``--redis`` pointing at a Redis that is down, the server starts, serves pages, says
    so in its log, and still shuts down promptly.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Twistd(
        workdir,
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--redis",
        f"redis://127.0.0.1:{port}/0",
        "--shutdown-timeout",
        "5",
    )
    servers.append(server.start())
    status, body = server.get()
    assert status == 200
    assert "not connected" in body
    server.wait_for("is unreachable")
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait() in CLEAN_EXIT
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "args, option",
    [
        (["--session-timeout", "-5"], "--session-timeout"),
        (["--redis", "mysql://x"], "--redis"),
        (["--app", "nowhere.at.all"], "--app"),
        (["--no-such-option"], "--no-such-option"),
        (["--port", "nope"], "--port"),
    ],
)
def test_usage_errors_are_clear(workdir: Path, args: list[str], option: str) -> None:
    """
    A bad option stops twistd with an error naming the option and no traceback.
    """
    result = run_twistd(workdir, *args)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert option in output
    assert "Traceback" not in output
    # The error, not 60 lines of help burying it: twistd's synopsis, then one line naming
    # the option and where the help is.
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) <= 2, output
    assert option in lines[-1] and "twistd sessions --help" in lines[-1]


def test_busy_port_is_a_clear_error(workdir: Path) -> None:
    """
    A port that cannot be had stops the server with a message naming --port, no traceback,
    and no embedded Redis started.
    """
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_twistd(
            workdir, "--port", f"tcp:{port}:interface=127.0.0.1", "--data-dir", "data"
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "cannot listen on --port" in output
    assert "Traceback" not in output
    assert live_processes_mentioning(str(workdir / "data")) == []


def test_visitors_counted_end_to_end_and_kept_across_restart(
    workdir: Path, servers: list[Twistd]
) -> None:
    """
    Simulated visitors (with cookies, without, returning within the cutoff and after it) on
    a real port; SIGTERM flushes everything; after a restart on the same embedded Redis the
    HTTP stats equal the model computed from the traffic.
    """
    import json
    import time
    from http.cookiejar import CookieJar
    from urllib.error import HTTPError
    from urllib.request import HTTPCookieProcessor, build_opener, urlopen

    args = (
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--data-dir",
        "data",
        "--cutoff",
        "2",
        "--app",
        "tests.apps.pages",
    )
    server = Twistd(workdir, *args)
    servers.append(server.start())

    def browser() -> Any:
        return build_opener(HTTPCookieProcessor(CookieJar()))

    alice, bob = browser(), browser()
    for _ in range(3):
        alice.open(server.url + "a/1").read()  # one visit of 3 requests...
    with pytest.raises(HTTPError):
        alice.open(server.url + "made-up-" + "x" * 50)  # ...and a 404
    bob.open(server.url + "b").read()
    bob.open(server.url + "b/2").read()
    time.sleep(2.5)  # bob comes back after the cutoff: a second visit
    bob.open(server.url + "b").read()
    for _ in range(4):
        urlopen(server.url + "c").read()  # no cookies: four one-request visits
    server.signal(signal.SIGTERM)
    assert server.wait() in CLEAN_EXIT
    assert "finishing" in server.output

    again = Twistd(workdir, *args)
    servers.append(again.start())
    again.wait_for(r"Redis at unix:\S+ db 0 is reachable")  # until then, stats answer 503

    def stats(path: str) -> Any:
        with urlopen(again.url + "stats/" + path) as response:
            return json.loads(response.read())

    by_resource = {
        item["key"]: item["count"]
        for item in stats("metricas/requests/iterate?by=resource")["items"]
    }
    # Counted by the resource that rendered them; a made-up path is one "(not found)".
    assert by_resource == {"/a": 3, "/b": 3, "/c": 4, "(not found)": 1}
    sessions = stats("metricas/sessions")
    assert sessions["count"] == 1 + 2 + 4
    per_session = stats("metricas/session_requests")
    assert (per_session["count"], per_session["total"]) == (7, 11)
    single = stats("metricas/sessions?single=yes")
    assert single["count"] == 1 + 4  # bob's return and the four cookieless ones
    assert single["average"] == 0
    entries = {
        item["key"]: item["count"] for item in stats("metricas/sessions/iterate?by=entry")["items"]
    }
    assert entries == {"/a": 1, "/b": 2, "/c": 4}
    status = {
        item["key"]: item["count"]
        for item in stats("metricas/requests/iterate?by=status&resource=/a")["items"]
    }
    assert status["2xx"] == 3
    again.signal(signal.SIGTERM)
    assert again.wait() in CLEAN_EXIT


def test_activity_end_to_end_and_across_a_restart(workdir: Path, servers: list[Twistd]) -> None:
    """
    A real server marks its visitors active and their visits started; the README's queries
    answer over a real port (JSON and CSV); SIGTERM flushes the marks, and after a restart on
    the same embedded Redis they are all still there.
    """
    import json
    import time
    from datetime import UTC, datetime
    from http.cookiejar import CookieJar
    from urllib.request import HTTPCookieProcessor, Request, build_opener, urlopen

    args = ("--port", "tcp:0:interface=127.0.0.1", "--data-dir", "data", "--cutoff", "1")
    server = Twistd(workdir, *args)
    servers.append(server.start())
    server.wait_for(r"Redis at unix:\S+ db 0 is reachable")
    for _ in range(3):  # three visitors, each with their own cookies, twice each
        browser = build_opener(HTTPCookieProcessor(CookieJar()))
        browser.open(server.url).read()
        browser.open(server.url).read()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    query = f"stats/activity/active?scale=day&since={today}&until={today}"

    def users(event: str = "active") -> int:
        with urlopen(server.url + query.replace("active", event, 1), timeout=10) as answer:
            return int(json.load(answer)["points"][0]["users"])

    deadline = time.monotonic() + 10
    while users() < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert users() == 3
    with urlopen(server.url + "stats/activity", timeout=10) as answer:
        assert "active" in json.load(answer)["events"]
    cohort = "stats/cohort?primary=active&secondary=active&time_group=days&rows=2&cols=2"
    with urlopen(server.url + cohort, timeout=10) as answer:
        table = json.load(answer)
    assert table["totals"][-1] == 3 and table["rows"][-1][0] == 3
    csv_request = Request(server.url + cohort, headers={"Accept": "text/csv"})
    with urlopen(csv_request, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/csv")
        assert answer.read().decode().splitlines()[0] == "period,users,0,1"
    server.signal(signal.SIGTERM)
    assert server.wait() in CLEAN_EXIT
    restarted = Twistd(workdir, *args)
    servers.append(restarted.start())
    restarted.wait_for(r"Redis at unix:\S+ db 0 is reachable")
    server = restarted
    assert users() == 3
    # The visits ended at the shutdown: each visitor's was marked started.
    assert users("session:started") == 3
