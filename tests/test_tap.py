"""
``twistd sessions`` options, checked apart from the service tree.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.web.resource import IResource

from twisted_sessions.events import RequestEvent
from twisted_sessions.storage import RedisAddress
from twisted_sessions.tap import Options, build_server
from twisted_sessions.web.cookies import CookiePolicy


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_defaults() -> None:
    """
    With no options: port 8080, embedded Redis with the bundled binary, 900 s sessions.
    """
    options = parse()
    assert options["port"] == "tcp:8080"
    assert options["redis"] is None
    assert "redis-server" in options["redis-server"]
    assert options["data-dir"] == Path("sessions-data")
    assert options["session-timeout"] == 900.0
    assert options["max-sessions"] == 100_000
    assert options["cookies"] == CookiePolicy()


def test_all_options_convert() -> None:
    """
    Every option is checked and converted to the type the server uses.
    """
    options = parse(
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--redis",
        "redis://127.0.0.1:6390/4",
        "--session-timeout",
        "60",
        "--max-session-age",
        "3600",
        "--max-sessions",
        "500",
        "--session-cookie",
        "sid",
        "--no-visitor-cookie",
        "--shutdown-timeout",
        "3",
        "--app",
        "examples.counter.resource",
    )
    assert options["redis-address"] == RedisAddress(host="127.0.0.1", port=6390, db=4)
    assert (options["session-timeout"], options["max-session-age"]) == (60.0, 3600.0)
    assert options["max-sessions"] == 500
    assert options["cookies"] == CookiePolicy(session_cookie="sid", visitor_cookie=None)
    assert options["shutdown-timeout"] == 3.0
    assert IResource.providedBy(options["resource"])


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--port", "nonsense:1"], "--port"),
        (["--port", "tcp:notaport"], "--port"),
        (["--session-timeout", "-5"], "--session-timeout"),
        (["--session-timeout", "soon"], "--session-timeout"),
        (["--session-timeout", "inf"], "--session-timeout"),
        (["--max-session-age", "0"], "--max-session-age"),
        (["--cutoff", "0"], "--cutoff"),
        (["--session-hook", "examples.nothing.here"], "--session-hook"),
        (["--session-hook", "examples.counter.resource"], "--session-hook"),
        (["--max-sessions", "0"], "--max-sessions"),
        (["--max-clustered-sessions", "-1"], "--max-clustered-sessions"),
        (["--max-session-events", "many"], "--max-session-events"),
        (["--max-sessions", "1e3"], "--max-sessions"),
        (["--shutdown-timeout", "nan"], "--shutdown-timeout"),
        (["--redis", "http://localhost"], "--redis"),
        (["--redis-server", "/nonexistent/redis-server"], "--redis-server"),
        (["--session-cookie", "bad name"], "--session-cookie"),
        (["--app", "no.such.module.thing"], "--app"),
        (["--app", "examples.counter.ICounter"], "--app"),
    ],
)
def test_bad_values_name_the_option(argv: list[str], option: str) -> None:
    """
    A bad value is a usage error (what twistd prints without a traceback) naming the option.
    """
    with pytest.raises(usage.UsageError) as caught:
        parse(*argv)
    assert option in str(caught.value)


def test_cutoff_and_hook_reach_the_clusterer() -> None:
    """
    ``--cutoff`` sets the clusterer's cutoff (default an hour) and ``--session-hook`` is
    attached as a sink; the clusterer is flushed first at shutdown.
    """
    assert build_server(Clock(), parse()).clusterer.cutoff == 3600.0  # type: ignore[union-attr]
    options = parse("--cutoff", "1800", "--session-hook", "examples.session_hook.print_visit")
    server = build_server(Clock(), options)
    assert server.clusterer is not None
    assert server.clusterer.cutoff == 1800.0
    # The clusterer first (its sinks may count and mark), then the writers.
    assert server.counters is not None and server.activity is not None
    assert server.flushables == [
        server.clusterer,
        server.counters.writer,
        server.activity.writer,
        server.streams.writer,
    ]
    assert options["hook"].__name__ == "print_visit"


def test_clustered_session_bounds_reach_the_clusterer() -> None:
    """
    ``--max-clustered-sessions`` and ``--max-session-events`` bound the clusterer's memory.
    """
    options = parse("--max-clustered-sessions", "5", "--max-session-events", "2")
    clusterer = build_server(Clock(), options).clusterer
    assert clusterer is not None
    visits: list[Any] = []
    clusterer.add_sink(visits.append)
    for user in "aaabcdef":
        clusterer.request_finished(request_event(user))
    assert (clusterer.active_count, clusterer.evicted_count) == (5, 1)
    # The oldest single-request visit made room, not the visit in progress...
    assert [(v.user, len(v.events), v.event_count) for v in visits] == [("b", 1, 1)]
    clusterer.flush()
    # ...which keeps its first two requests' events and counts all three.
    assert [(v.user, len(v.events), v.event_count) for v in visits][1] == ("a", 2, 3)


def request_event(user: str) -> RequestEvent:
    return RequestEvent(user, 1_000.0, "GET", "/", 200, 0.001, "key", False, "/")


def test_build_server_wires_the_options() -> None:
    """
    The service is built from the options on the reactor it is given.
    """
    clock = Clock()
    options = parse(
        "--redis", "redis://127.0.0.1:6390/0", "--session-timeout", "42", "--max-sessions", "7"
    )
    server = build_server(clock, options)
    assert server.embedded is None
    assert server.redis.address.port == 6390
    assert server.site.session_timeout == 42.0
    assert server.site.max_sessions == 7
    assert server.site.reactor is clock


def test_stats_tree_is_mounted_where_asked(tmp_path: Path) -> None:
    """
    ``--stats-path`` moves the stats tree in front of the application, ``--no-stats`` removes
    it; the application's own pages are served either way.
    """
    from .http import get

    def served(*argv: str) -> dict[str, tuple[int, bytes]]:
        options = parse("--app", "examples.counter.resource", *argv)
        site = build_server(Clock(), options).site
        return {
            path: (r.status, r.body)
            for path in ("/", "/stats", "/numbers")
            for r in [get(site, path)]
        }

    default = served()
    assert default["/stats"][0] == 200 and b'"metricas"' in default["/stats"][1]
    assert b"Visit #1" in default["/"][1]
    moved = served("--stats-path", "numbers")
    assert moved["/numbers"][0] == 200
    assert b'"self": "/numbers/metricas/requests"' in moved["/numbers"][1]
    assert moved["/stats"] == default["/"] == moved["/"]
    hidden = served("--no-stats")
    assert hidden["/stats"] == hidden["/numbers"] == default["/"]


def test_stats_options(tmp_path: Path) -> None:
    """
    The stats token comes from a file (never the command line) and must be a real token; the
    stats path is one segment.
    """
    token = tmp_path / "token"
    token.write_text("0123456789abcdef0123\n")
    assert parse("--stats-token-file", str(token))["stats-token"] == "0123456789abcdef0123"
    token.write_text("short")
    for argv, option in (
        (["--stats-token-file", str(token)], "--stats-token-file"),
        (["--stats-token-file", str(tmp_path / "missing")], "--stats-token-file"),
        (["--stats-path", "a/b"], "--stats-path"),
    ):
        with pytest.raises(usage.UsageError, match=option):
            parse(*argv)


def test_startup_log_names_the_real_address() -> None:
    """
    A port on every interface is logged as such (``0.0.0.0``, ``[::]``), not as 127.0.0.1, and
    a TLS port as ``https://``.
    """
    from twisted.internet.address import IPv4Address, IPv6Address

    from twisted_sessions.server import _describe

    class Port:
        def __init__(self, host: object, factory: object = None) -> None:
            self._host, self.factory = host, factory

        def getHost(self) -> object:
            return self._host

    class TLSMemoryBIOFactory:
        pass

    assert _describe(Port(IPv4Address("TCP", "0.0.0.0", 8080))) == "http://0.0.0.0:8080/"  # type: ignore[arg-type]
    assert _describe(Port(IPv6Address("TCP", "::", 8080))) == "http://[::]:8080/"  # type: ignore[arg-type]
    tls = Port(IPv4Address("TCP", "127.0.0.1", 8443), TLSMemoryBIOFactory())
    assert _describe(tls) == "https://127.0.0.1:8443/"  # type: ignore[arg-type]


def test_port_number_alone_means_tcp_and_remembered_users_is_an_option() -> None:
    """
    ``--port 8080`` is ``tcp:8080``; ``--remember-users`` bounds the clusterer's memory of
    users like the other caps, and a bad value names the option.
    """
    assert parse("--port", "8080")["port"] == "tcp:8080"
    options = parse("--redis", "redis://127.0.0.1:6390/0", "--remember-users", "5000")
    clusterer = build_server(Clock(), options).clusterer
    assert clusterer is not None and clusterer._cache._remember == 5000
    with pytest.raises(usage.UsageError, match="--remember-users"):
        parse("--remember-users", "0")


def test_app_from_a_file_path(tmp_path: Path) -> None:
    """
    ``--app path/to/file.py:name`` loads a resource from a file that is not importable as a
    module (after a plain ``pip install .``, ``examples`` is not); a missing file or name is a
    usage error naming ``--app`` and the file.
    """
    from twisted.web.resource import IResource

    app = tmp_path / "site_app.py"
    app.write_text(
        "from twisted.web.static import Data\nroot = Data(b'from a file', 'text/plain')\n"
    )
    resource = parse("--app", f"{app}:root")["resource"]
    assert IResource.providedBy(resource)
    for bad, says in (
        (f"{tmp_path / 'nope.py'}:root", "there is no file"),
        (f"{app}:missing", "has no 'missing'"),
    ):
        with pytest.raises(usage.UsageError, match=says) as raised:
            parse("--app", bad)
        assert "--app" in str(raised.value)


def test_app_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    A module in the working directory is found, as ``python -m`` would find it.
    """
    (tmp_path / "cwd_site_app.py").write_text(
        "from twisted.web.static import Data\nroot = Data(b'here', 'text/plain')\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert parse("--app", "cwd_site_app.root")["resource"] is not None


def test_activity_options() -> None:
    """
    Activity is on by default (day, week, month and ever bitmaps, every built-in mark, its own
    binary Redis link); ``--activity-scales`` and ``--builtin-marks`` choose, ``--no-activity``
    turns it off, and a wrong name is a usage error naming the option and the choices.
    """
    server = build_server(Clock(), parse())
    activity = server.activity
    assert activity is not None and server.site.activity is activity
    assert activity.writer.scales == ("day", "week", "month", "unique")
    assert activity.builtin == {"active", "user:logged_in", "user:logged_out", "session:started"}
    assert activity.link.binary and activity.link is not server.redis
    chosen = build_server(
        Clock(), parse("--activity-scales", "hour,day,unique", "--builtin-marks", "active")
    ).activity
    assert chosen is not None
    assert chosen.writer.scales == ("hour", "day", "unique")
    assert chosen.builtin == {"active"}
    off = build_server(Clock(), parse("--no-activity"))
    assert off.activity is None and off.site.activity is None
    for option, value in (("--activity-scales", "day,fortnight"), ("--builtin-marks", "lunch")):
        with pytest.raises(usage.UsageError, match=option) as raised:
            parse(option, value)
        assert "choose from" in str(raised.value)
    with pytest.raises(usage.UsageError, match="at least one scale"):
        parse("--activity-scales", "")


def test_stream_options() -> None:
    """
    Streams are on by default (visits, requests and activity built in, 7 days of history, the
    caps), ``--streams`` chooses the built-in ones, ``--no-streams`` turns them off (no
    site.streams, no /stats/stream); a bad value is a usage error naming the option.
    """
    server = build_server(Clock(), parse())
    streams = server.streams
    assert streams is not None and server.site.streams is streams
    assert streams.builtin == ("visits", "requests", "activity")
    assert streams.writer.history == 7 * 86_400 and streams.writer.max_length == 100_000
    assert streams.link.binary and streams.blocking.binary
    assert streams.blocking.deadline > streams.reader.block
    # The requests stream is fed by the writer's append itself, bound on the Site.
    assert streams in server.site.observers.request_observers
    chosen = build_server(
        Clock(),
        parse(
            "--streams",
            "visits",
            "--stream-history",
            "60",
            "--stream-max-clients",
            "5",
            "--stream-max-clients-per-ip",
            "2",
            "--stream-client-buffer",
            "4096",
            "--stream-domain",
            "example.org",
        ),
    ).streams
    assert chosen is not None
    assert chosen.builtin == ("visits",)
    assert (
        chosen
        not in build_server(Clock(), parse("--streams", "visits")).site.observers.request_observers
    )
    assert (chosen.writer.history, chosen.max_clients, chosen.max_clients_per_ip) == (60, 5, 2)
    assert (chosen.client_buffer, chosen.reader.domain) == (4096, "example.org")
    off = build_server(Clock(), parse("--no-streams"))
    assert off.streams is None and off.site.streams is None
    with pytest.raises(usage.UsageError, match="--streams") as raised:
        parse("--streams", "visits,gossip")
    assert "choose from" in str(raised.value)
    for option in ("--stream-max-clients", "--stream-client-buffer", "--stream-max-length"):
        with pytest.raises(usage.UsageError, match=option):
            parse(option, "0")
    with pytest.raises(usage.UsageError, match="--stream-heartbeat"):
        parse("--stream-heartbeat", "-1")
