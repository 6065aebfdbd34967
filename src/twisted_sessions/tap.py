"""
``twistd sessions``: command-line options and the service tree (the composition root).

This is the only module that touches the global reactor, and it does so inside
:func:`makeService`, after twistd has installed the reactor the user chose.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from twisted.application.service import IService
from twisted.internet.endpoints import serverFromString
from twisted.python import reflect, usage
from twisted.web.resource import IResource

from .activity import BUILTIN, Activity
from .clustering.clusterer import (
    DEFAULT_MAX_EVENTS,
    DEFAULT_MAX_OPEN,
    DEFAULT_REMEMBERED_USERS,
    SessionClusterer,
)
from .counters.counting import Counting
from .counters.metrica import CounterStore
from .counters.writer import CounterWriter
from .ingest.eventstreams import since_text
from .ingest.feed import Feed
from .ingest.filters import parse_filter
from .ingest.mapping import RECENTCHANGE_AXES, FieldMapping, load_mapper
from .interfaces import ClusteredSession
from .server import SessionServer
from .stats.access import StatsAccess
from .stats.metrics import RequestTally
from .stats.resource import StatsResource
from .storage.address import RedisTarget, parse_redis_url
from .storage.connection import open_link
from .storage.embedded import EmbeddedRedis, RedisServerNotFound, find_redis_server
from .storage.presence import Presence, default_server_id
from .streams import BUILTIN_STREAMS, Streams
from .web.cookies import CookiePolicy
from .web.landing import LandingPage
from .web.site import DEFAULT_MAX_SESSIONS, Site


def _positive_seconds(option: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise usage.UsageError(f"--{option} must be a positive number of seconds, not {text!r}")
    return value


def _positive_int(option: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise usage.UsageError(f"--{option} must be a positive whole number, not {text!r}")
    return int(text)


def _choices(option: str, text: str, allowed: tuple[str, ...]) -> tuple[Any, ...]:
    """
    A comma-separated list of some of ``allowed``.

    :raises usage.UsageError: naming the option and the unknown items.
    """
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise usage.UsageError(
            f"--{option}: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(allowed)}"
        )
    return items


class Options(usage.Options):
    """
    Options of ``twistd sessions``.
    """

    synopsis = "[options]"
    longdesc = (
        "Run a session-tracking web server. With no --redis it starts its own redis-server "
        "(embedded, data in --data-dir). With --app it serves your resource tree with tracking."
    )

    optParameters = [
        ["port", "p", "tcp:8080", "Endpoint to listen on (e.g. tcp:8080, tcp:8080:interface=::)."],
        [
            "redis",
            None,
            None,
            "External Redis URL (redis://host:port/db, unix:///path.sock?db=N, "
            "redis+cluster://host:port[,host:port...] or "
            "redis+sentinel://host:port[,host:port...]/service[/db]); "
            "without it an embedded redis-server runs.",
        ],
        ["redis-server", None, None, "redis-server binary for the embedded Redis."],
        [
            "server-id",
            None,
            None,
            "This server's name among the site's servers, in /stats and its heartbeat "
            "(default: host name and port).",
        ],
        ["data-dir", "d", "sessions-data", "Directory of the embedded Redis's data."],
        ["session-timeout", None, "900", "Seconds without a request before a session expires."],
        ["max-session-age", None, None, "Seconds after which any session expires (none)."],
        [
            "cutoff",
            None,
            "3600",
            "Seconds without a request after which a user's clustered session ends.",
        ],
        [
            "session-hook",
            None,
            None,
            "A callable (package.module.attribute) called with every finished clustered session.",
        ],
        ["max-sessions", None, str(DEFAULT_MAX_SESSIONS), "Most live sessions kept in memory."],
        [
            "max-clustered-sessions",
            None,
            str(DEFAULT_MAX_OPEN),
            "Most open clustered sessions kept in memory (the first to end ends early).",
        ],
        [
            "max-session-events",
            None,
            str(DEFAULT_MAX_EVENTS),
            "Most requests kept per clustered session for hooks (all are counted).",
        ],
        [
            "remember-users",
            None,
            str(DEFAULT_REMEMBERED_USERS),
            "Most users whose visit count (a visit's user_index) is remembered.",
        ],
        ["session-cookie", None, "TWISTED_SESSION", "Name of the session cookie."],
        ["visitor-cookie", None, "TWISTED_VISITOR", "Name of the persistent visitor cookie."],
        [
            "app",
            None,
            None,
            "Your root resource as package.module.attribute (a resource or a callable making one).",
        ],
        ["stats-path", None, "stats", "Where the JSON stats tree is mounted (a path segment)."],
        [
            "stats-token-file",
            None,
            None,
            "A file holding a bearer token the stats tree requires (never the token itself).",
        ],
        [
            "activity-scales",
            None,
            "day,week,month,unique",
            "The bitmaps a mark lands in: day, week, month, and hour and unique if listed.",
        ],
        [
            "builtin-marks",
            None,
            ",".join(BUILTIN),
            "The built-in activity marks to make (comma-separated; empty for none).",
        ],
        [
            "streams",
            None,
            ",".join(BUILTIN_STREAMS),
            "The built-in live streams to publish (comma-separated; empty for none).",
        ],
        ["stream-history", None, "604800", "Seconds of events each stream keeps (7 days)."],
        ["stream-max-length", None, "100000", "The most events each stream keeps."],
        ["stream-heartbeat", None, "15", "Seconds between keep-alive comments on a stream."],
        ["stream-max-clients", None, "1000", "The most stream clients connected at once."],
        [
            "stream-max-clients-per-ip",
            None,
            "100",
            "The most stream clients connected at once from one address.",
        ],
        [
            "stream-client-buffer",
            None,
            str(1024 * 1024),
            "Bytes held back for a stream client that does not read, before it is dropped.",
        ],
        ["stream-domain", None, None, "The meta.domain of stream events (this host's name)."],
        ["ingest-user", None, "user", "Dotted path of the user in an ingested event."],
        ["ingest-time", None, "meta.dt", "Dotted path of the event time in an ingested event."],
        [
            "ingest-axes",
            None,
            ",".join(RECENTCHANGE_AXES),
            "Dotted paths an ingested feed's events are counted by (comma-separated).",
        ],
        [
            "ingest-mapper",
            None,
            None,
            "module:function taking an ingested event's data, returning (user, time, axis "
            "values in --ingest-axes order) or None; instead of --ingest-user/--ingest-time.",
        ],
        ["ingest-name", None, None, "The name of the (single) --ingest feed (from its URL)."],
        ["ingest-since", None, None, "Where a feed's first start begins (ISO 8601; now)."],
        [
            "ingest-cutoff",
            None,
            None,
            "Seconds between a user's feed events that end a session (--cutoff).",
        ],
        ["ingest-lateness", None, "60", "Seconds a feed event may come after newer ones."],
        ["ingest-idle-timeout", None, "60", "Seconds of feed silence before reconnecting."],
        ["ingest-token-file", None, None, "A bearer token sent to every --ingest feed."],
        ["shutdown-timeout", None, "10", "Seconds the shutdown (expire, flush, stop) may take."],
        ["redis-deadline", None, "2", "Seconds any Redis command may take."],
    ]
    optFlags = [
        ["no-visitor-cookie", None, "Do not set a visitor cookie: each web session is a user."],
        ["access-log", None, "Log every request (costs throughput)."],
        ["no-stats", None, "Do not serve the stats tree."],
        [
            "stats-public",
            None,
            "Without --stats-token-file, answer stats requests from any client (by default "
            "only loopback clients are answered).",
        ],
        ["no-count-requests", None, "Do not keep the built-in requests metrica."],
        ["no-count-sessions", None, "Do not keep the built-in sessions metricas."],
        ["no-activity", None, "Do not mark activity (bitmaps, cohorts): no site.activity."],
        ["no-streams", None, "Serve no live streams: no site.streams, no /stats/stream."],
        ["ingest-canary", None, "Keep the canary events of ingested feeds."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["stats-cors-origins"] = []
        self["ingest"] = []
        self["ingest-filters"] = []

    def opt_ingest(self, url: str) -> None:
        """
        Consume this EventStreams-style SSE feed and sessionize it (repeatable).
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise usage.UsageError(f"--ingest needs an http(s) URL, not {url!r}")
        self["ingest"].append(url)

    def opt_ingest_filter(self, text: str) -> None:
        """
        Keep only ingested events whose dotted path has this value (repeatable, all must
        match): type=edit, bot=false, type=edit,new for either.
        """
        try:
            self["ingest-filters"].append(parse_filter(text))
        except ValueError as error:
            raise usage.UsageError(f"--ingest-filter: {error}") from None

    def opt_stats_cors_origin(self, origin: str) -> None:
        """
        An origin (scheme://host[:port]) whose pages may read the stats tree from a browser
        (CORS); repeatable. Without it no CORS headers are sent.
        """
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise usage.UsageError(
                f"--stats-cors-origin must be an origin such as https://dash.example, "
                f"not {origin!r}"
            )
        self["stats-cors-origins"].append(origin)

    #: Set when parsing failed: twistd then prints the options' usage before the error.
    _failed = False

    def parseOptions(self, options: Any = None) -> None:
        """
        Parse; a bad option is one line naming it (twistd would print the whole help first,
        burying the error under 60 lines of options).
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as error:
            self._failed = True
            hint = "'twistd sessions --help' lists the options"
            raise usage.UsageError(f"{error} ({hint})") from None

    def getUsage(self, width: int | None = None) -> str:
        return "" if self._failed else super().getUsage(width)

    def postOptions(self) -> None:
        """
        Check every option and convert it, naming the option in any error.
        """
        if self["port"].isdigit():
            self["port"] = f"tcp:{self['port']}"  # --port 8080 means what people mean by it.
        # Parsing only: nothing listens until makeService, on the real reactor.
        try:
            serverFromString(cast(Any, None), self["port"])
        except (ValueError, KeyError, TypeError) as error:
            raise usage.UsageError(f"--port {self['port']!r} is not an endpoint: {error}") from None
        for option in (
            "session-timeout",
            "cutoff",
            "shutdown-timeout",
            "redis-deadline",
            "stream-history",
            "stream-heartbeat",
            "ingest-idle-timeout",
        ):
            self[option] = _positive_seconds(option, self[option])
        self._check_ingest()
        if self["max-session-age"] is not None:
            self["max-session-age"] = _positive_seconds("max-session-age", self["max-session-age"])
        for option in (
            "max-sessions",
            "max-clustered-sessions",
            "max-session-events",
            "remember-users",
            "stream-max-length",
            "stream-max-clients",
            "stream-max-clients-per-ip",
            "stream-client-buffer",
        ):
            self[option] = _positive_int(option, self[option])
        self["streams"] = _choices("streams", self["streams"], BUILTIN_STREAMS)
        if self["stream-domain"] is None:
            self["stream-domain"] = socket.gethostname()
        try:
            self["cookies"] = CookiePolicy(
                session_cookie=self["session-cookie"],
                visitor_cookie=None if self["no-visitor-cookie"] else self["visitor-cookie"],
            )
        except ValueError as error:
            message = str(error)
            for name in ("session_cookie", "visitor_cookie"):
                message = message.replace(name, "--" + name.replace("_", "-"))
            raise usage.UsageError(message) from None
        self["data-dir"] = Path(self["data-dir"])
        if self["redis"] is not None:
            try:
                self["redis-address"] = parse_redis_url(self["redis"])
            except ValueError as error:
                raise usage.UsageError(f"--redis: {error}") from None
        else:
            try:
                self["redis-server"] = find_redis_server(self["redis-server"])
            except RedisServerNotFound as error:
                raise usage.UsageError(str(error)) from None
        if self["app"] is not None:
            self["resource"] = load_app(self["app"])
        if self["session-hook"] is not None:
            self["hook"] = load_hook(self["session-hook"])
        self["activity-scales"] = _choices(
            "activity-scales", self["activity-scales"], ("hour", "day", "week", "month", "unique")
        )
        if not self["activity-scales"]:
            raise usage.UsageError("--activity-scales needs at least one scale")
        self["builtin-marks"] = _choices("builtin-marks", self["builtin-marks"], BUILTIN)
        path = self["stats-path"]
        if not path or "/" in path or path in (".", ".."):
            raise usage.UsageError(f"--stats-path must be one path segment, not {path!r}")
        self["stats-token"] = None
        if self["stats-token-file"] is not None:
            self["stats-token"] = _read_token(self["stats-token-file"])

    def _check_ingest(self) -> None:
        """
        The --ingest-* options, converted; errors name the option.
        """
        lateness = _non_negative_seconds("ingest-lateness", self["ingest-lateness"])
        self["ingest-lateness"] = lateness
        if self["ingest-cutoff"] is not None:
            self["ingest-cutoff"] = _positive_seconds("ingest-cutoff", self["ingest-cutoff"])
        if self["ingest-since"] is not None:
            try:
                self["ingest-since"] = since_text(self["ingest-since"])
            except ValueError as error:
                raise usage.UsageError(f"--ingest-since: {error}") from None
        axes = tuple(a.strip() for a in self["ingest-axes"].split(",") if a.strip())
        self["ingest-axes"] = axes
        if self["ingest-mapper"] is not None:
            try:
                self["ingest-mapper"] = load_mapper(self["ingest-mapper"])
            except ValueError as error:
                raise usage.UsageError(f"--ingest-mapper: {error}") from None
        if self["ingest-name"] is not None and len(self["ingest"]) > 1:
            raise usage.UsageError("--ingest-name names a single --ingest feed; there are more")
        names: list[str] = []
        for url in self["ingest"]:
            name = self["ingest-name"] or feed_name(url)
            if not FEED_NAME.fullmatch(name):
                raise usage.UsageError(
                    f"--ingest-name: a feed name is 1 to 40 lowercase letters, digits or _, "
                    f"starting with a letter, not {name!r}"
                )
            base, number = name, 2
            while name in names or name in RESERVED_METRICAS:
                name, number = f"{base}_{number}", number + 1
            names.append(name)
        self["ingest-names"] = names
        self["ingest-token"] = None
        if self["ingest-token-file"] is not None:
            self["ingest-token"] = _read_token(self["ingest-token-file"], "ingest-token-file")


def _load_named(option: str, name: str) -> Any:
    """
    The object named ``package.module.attribute`` (the working directory is importable, as
    ``python -m`` makes it), or ``path/to/file.py:attribute``.

    :raises usage.UsageError: naming ``option`` and why it cannot be loaded.
    """
    path, colon, attribute = name.rpartition(":")
    if colon and path.endswith(".py"):
        return _load_from_file(option, name, Path(path), attribute)
    if os.getcwd() not in sys.path and "" not in sys.path:
        # twistd does not put the working directory on the path; python -m and python do,
        # and the README's examples are run from the project directory.
        sys.path.insert(0, os.getcwd())
    try:
        return reflect.namedAny(name)
    except (
        reflect.ModuleNotFound,
        reflect.ObjectNotFound,
        reflect.InvalidName,
        AttributeError,
        ImportError,
        ValueError,
    ) as error:
        raise usage.UsageError(f"{option} {name!r} cannot be loaded: {error}") from None


def _load_from_file(option: str, name: str, path: Path, attribute: str) -> Any:
    """
    ``attribute`` of the Python file at ``path``, run as a module named after the file.
    """
    if not path.is_file():
        raise usage.UsageError(f"{option} {name!r}: there is no file {str(path)!r}")
    spec = importlib.util.spec_from_file_location(f"_sessions_app_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise usage.UsageError(f"{option} {name!r}: {str(path)!r} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise usage.UsageError(
            f"{option} {name!r}: importing {str(path)!r} raised {error!r}"
        ) from None
    if not attribute or not hasattr(module, attribute):
        raise usage.UsageError(f"{option} {name!r}: {str(path)!r} has no {attribute!r}")
    return getattr(module, attribute)


def load_app(name: str) -> IResource:
    """
    Load the user's root resource from ``package.module.attribute``.

    :raises usage.UsageError: naming ``--app`` and what went wrong.
    """
    found = _load_named("--app", name)
    is_resource_class = isinstance(found, type) and IResource.implementedBy(found)
    is_factory = callable(found) and not isinstance(found, type)
    if not IResource.providedBy(found) and (is_resource_class or is_factory):
        try:
            found = found()
        except Exception as error:
            raise usage.UsageError(f"--app {name!r} raised {error!r} when called") from None
    if not IResource.providedBy(found):
        raise usage.UsageError(
            f"--app {name!r} is {found!r}, which is not a twisted.web resource "
            "(nor a callable returning one)"
        )
    resource: IResource = found
    return resource


def _read_token(path: str, option: str = "stats-token-file") -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise usage.UsageError(f"--{option} {path!r} cannot be read: {error}") from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise usage.UsageError(f"--{option} {path!r} must hold one token of at least 16 characters")
    return token


def load_hook(name: str) -> Callable[[ClusteredSession], object]:
    """
    Load the ``--session-hook`` callable.

    :raises usage.UsageError: naming ``--session-hook`` and what went wrong.
    """
    found = _load_named("--session-hook", name)
    if not callable(found):
        raise usage.UsageError(f"--session-hook {name!r} is {found!r}, which is not callable")
    hook: Callable[[ClusteredSession], object] = found
    return hook


#: A feed's name: its metricas' and its activity event's.
FEED_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: Names a feed cannot take: the built-in metricas'.
RESERVED_METRICAS = frozenset({"requests", "sessions", "session_requests"})


def feed_name(url: str) -> str:
    """
    A feed's default name: its URL's last path segment (the stream names), in lowercase
    letters, digits and ``_`` (``.../v2/stream/recentchange`` is ``recentchange``).
    """
    segment = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1].lower()
    name = re.sub(r"[^a-z0-9]+", "_", segment).strip("_")[:40] or "feed"
    return name if name[0].isalpha() else f"feed_{name}"[:40]


def _non_negative_seconds(option: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise usage.UsageError(f"--{option} must be zero or more seconds, not {text!r}")
    return value


def build_feeds(
    reactor: Any,
    options: Options,
    store: CounterStore,
    activity: Activity | None,
    streams: Streams | None,
) -> list[Feed]:
    """
    The --ingest feeds, wired to the counters, the activity and the streams.
    """
    headers = {}
    if options["ingest-token"] is not None:
        headers["Authorization"] = f"Bearer {options['ingest-token']}"
    mapper = options["ingest-mapper"]
    mapping = mapper or FieldMapping(
        options["ingest-user"], options["ingest-time"], options["ingest-axes"]
    )
    return [
        Feed(
            reactor,
            name,
            url,
            store=store,
            mapping=mapping,
            axes=[path.rsplit(".", 1)[-1] for path in options["ingest-axes"]],
            filters=options["ingest-filters"],
            canary=bool(options["ingest-canary"]),
            since=options["ingest-since"],
            cutoff=options["ingest-cutoff"] or options["cutoff"],
            lateness=options["ingest-lateness"],
            activity=activity,
            streams=streams,
            source_options={"idle_timeout": options["ingest-idle-timeout"], "headers": headers},
        )
        for name, url in zip(options["ingest-names"], options["ingest"], strict=True)
    ]


def build_server(reactor: Any, options: Options) -> SessionServer:
    """
    Wire the server from checked options, on the given reactor.
    """
    embedded = None
    address: RedisTarget
    if options["redis"] is None:
        embedded = EmbeddedRedis(reactor, options["redis-server"], options["data-dir"])
        address = embedded.address
    else:
        address = options["redis-address"]
    redis = open_link(reactor, address, deadline=options["redis-deadline"])
    # Who may read the stats tree, in the words of the tree's own access rule.
    stats_mode = StatsAccess(options["stats-token"], bool(options["stats-public"])).mode
    resource = options.get("resource") or LandingPage(
        address.describe(),
        lambda: redis.connected,
        None if options["no-stats"] else options["stats-path"],
        stats_mode,
    )
    site = Site(
        resource,
        reactor=reactor,
        session_timeout=options["session-timeout"],
        max_session_age=options["max-session-age"],
        max_sessions=options["max-sessions"],
        cookies=options["cookies"],
        access_log=bool(options["access-log"]),
    )
    clusterer = SessionClusterer(
        reactor,
        cutoff=options["cutoff"],
        max_open=options["max-clustered-sessions"],
        max_events=options["max-session-events"],
        remember_users=options["remember-users"],
    )
    if options.get("hook") is not None:
        clusterer.add_sink(options["hook"])
    site.add_observer(clusterer)
    server = SessionServer(
        reactor,
        site,
        serverFromString(reactor, options["port"]),
        redis,
        embedded=embedded,
        shutdown_timeout=options["shutdown-timeout"],
    )
    # Flushed first at shutdown: every open clustered session is delivered before anything
    # that its sinks write to is flushed.
    server.add_flushable(clusterer)
    server.clusterer = clusterer
    writer = CounterWriter(reactor, redis, spool_path=options["data-dir"] / "counters.spool")
    store = server.counters = CounterStore(reactor, redis, writer)
    counting = Counting(
        store,
        count_requests=not options["no-count-requests"],
        count_sessions=not options["no-count-sessions"],
    )
    site.counting = counting
    site.add_observer(counting)
    clusterer.add_sink(counting)
    server.add_flushable(writer)
    activity = None
    if not options["no-activity"]:
        # Bitmaps are bytes: their own connection, which decodes nothing.
        binary = open_link(reactor, address, deadline=options["redis-deadline"], binary=True)
        activity = Activity(
            reactor,
            binary,
            scales=options["activity-scales"],
            builtin=options["builtin-marks"],
            spool_path=options["data-dir"] / "activity.spool",
        )
        site.activity = activity
        site.add_observer(activity)
        clusterer.add_sink(activity)
        server.activity = activity
        server.add_flushable(activity.writer)
    streams = None
    if not options["no-streams"]:
        streams = build_streams(reactor, options, address)
        site.streams = streams
        if "requests" in streams.builtin:
            site.add_observer(streams)
        clusterer.add_sink(streams)
        if activity is not None and "activity" in streams.builtin:
            activity.add_listener(streams.marked)
        server.streams = streams
        # After the clusterer and the activity: the visits and marks of the shutdown are
        # published before the last flush.
        server.add_flushable(streams.writer)
    feeds = build_feeds(reactor, options, store, activity, streams)
    server.feeds = feeds
    presence = server.presence = Presence(
        reactor, redis, options["server-id"] or default_server_id(options["port"])
    )
    if not options["no-stats"]:
        # The requests for /stats/metrics: a list append each, folded once a second.
        tally = RequestTally(reactor)
        site.add_observer(tally)
        server.tally = tally
        stats = StatsResource(
            store,
            site,
            clusterer,
            feeds=feeds,
            tally=tally,
            presence=presence,
            activity=activity,
            streams=streams,
            token=options["stats-token"],
            public=bool(options["stats-public"]),
            cors_origins=frozenset(options["stats-cors-origins"]),
        )
        server.stats_path = options["stats-path"]
        server.stats_mode = stats.access.mode
        site.mount(options["stats-path"].encode(), stats, tracked=False)
    return server


def build_streams(reactor: Any, options: Options, address: RedisTarget) -> Streams:
    """
    The live streams, on two binary Redis links of their own: one for writes and history, one
    for the reader's blocking ``XREAD`` (a blocked command holds its connection).
    """
    deadline = options["redis-deadline"]
    link = open_link(reactor, address, deadline=deadline, binary=True)
    # The reader blocks up to a second: its deadline is that plus the usual one.
    blocking = open_link(reactor, address, deadline=deadline + 1.0, binary=True)
    return Streams(
        reactor,
        link,
        blocking,
        builtin=options["streams"],
        history=options["stream-history"],
        max_length=options["stream-max-length"],
        domain=options["stream-domain"],
        heartbeat=options["stream-heartbeat"],
        max_clients=options["stream-max-clients"],
        max_clients_per_ip=options["stream-max-clients-per-ip"],
        client_buffer=options["stream-client-buffer"],
        spool_path=options["data-dir"] / "streams.spool",
    )


def makeService(options: Options) -> IService:
    """
    twistd's entry point: the server on the global reactor.
    """
    from twisted.internet import reactor

    server = build_server(reactor, options)
    tune_garbage_collector()
    return server


def tune_garbage_collector() -> None:
    """
    Keep the cyclic garbage collector's pauses short with many live sessions.

    Every live session is a handful of objects the collector scans in each full collection:
    with tens of thousands of them, CPython's default thresholds pause the server for around
    100 ms every few seconds under load (docs/benchmarks.md). What exists at start-up (modules,
    classes, the resource tree) is frozen out of collection for good, and young collections run
    less often; request garbage, which dies young, is still collected by them.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
