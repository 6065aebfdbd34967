"""
``/stats/metrics``: the server's figures in the Prometheus text format, for the Grafana an
operator already runs.

The format and the families are ``prometheus_client``'s (its registry, its metric families,
its ``generate_latest``); what is ours is one collector that reads, at scrape time, what the
server counts anyway: web sessions, visits open and ended by reason, the counter and activity
writers, Redis, the streams, the consumed feeds, and the requests.

Why not ``prometheus_client.twisted.MetricsResource``: it is a WSGI resource, which runs the
collectors on a thread pool (our state belongs to the reactor thread) and imports the global
reactor (only the composition root may). ``generate_latest`` is called here, in the reactor.

Requests are not counted with ``Counter.labels().inc()`` and ``Histogram.observe()`` on the
request path (locks and a bucket search: 2.0 us a request, measured with timeit here; the
whole path is about 130 us): :class:`RequestTally` appends each finished request to a list
(0.03 us), as the ``requests`` stream does, and folds the list into totals once a second and
at each scrape.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from twisted.internet.task import LoopingCall
from zope.interface import implementer

from ..interfaces import IRequestObserver
from ..storage.cluster import ClusterLink
from .responses import JSONLeaf, Text

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ..activity.tracker import Activity
    from ..clustering.clusterer import SessionClusterer
    from ..counters.metrica import CounterStore
    from ..events import RequestEvent
    from ..ingest.feed import Feed
    from ..streams.hub import Streams
    from ..web.site import Site

#: The request-duration histogram's buckets (seconds): prometheus_client's defaults, which
#: suit web requests.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_PREFIX = "twisted_sessions"
_STATUS = attrgetter("status")
_DURATION = attrgetter("duration")
#: The status class of each valid code (anything else counts as 5xx, as the requests metrica).
_STATUS_CLASS = {code: f"{code // 100}xx" for code in range(100, 600)}


@implementer(IRequestObserver)
class RequestTally:
    """
    Requests by status class, and a histogram of their durations, kept cheaply: a request
    costs a list append; the list is folded into the totals once a second (``start``) and
    before each scrape.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._pending: list[RequestEvent] = []
        #: What a Site calls for each finished request: the list's own append.
        self.request_finished = self._pending.append
        self.by_class: dict[str, int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)  # The last one is +Inf.
        self.duration_sum = 0.0
        self._loop: LoopingCall | None = None

    def start(self) -> None:
        """
        Fold once a second, so that the list stays short without scrapes.
        """
        loop = LoopingCall(self.fold)
        loop.clock = self._clock
        self._loop = loop
        loop.start(1.0, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def fold(self) -> None:
        """
        Add the requests finished since the last fold to the totals.
        """
        pending = self._pending
        if not pending:
            return
        events = pending[:]
        del pending[:]  # The same list: the Site holds its append.
        # In C as much as can be (Counter, map, sorted, bisect): the fold was 6,100
        # instructions a request in Python, more than the 0.8 of bare twisted.web allowed.
        by_class = self.by_class
        for status, count in Counter(map(_STATUS, events)).items():
            name = _STATUS_CLASS.get(status, "5xx")
            by_class[name] = by_class.get(name, 0) + count
        durations = sorted(map(_DURATION, events))
        self.duration_sum += sum(durations)
        buckets, below = self.buckets, 0
        for index, bound in enumerate(BUCKETS):
            at = bisect_right(durations, bound)  # Prometheus's buckets hold values <= bound.
            buckets[index] += at - below
            below = at
        buckets[-1] += len(durations) - below


class ServerCollector:
    """
    The server's figures as metric families, read when Prometheus scrapes.
    """

    def __init__(
        self,
        store: CounterStore,
        site: Site | None = None,
        clusterer: SessionClusterer | None = None,
        activity: Activity | None = None,
        streams: Streams | None = None,
        feeds: Sequence[Feed] = (),
        tally: RequestTally | None = None,
    ) -> None:
        self.store, self.site, self.clusterer = store, site, clusterer
        self.activity, self.streams, self.feeds, self.tally = activity, streams, feeds, tally

    def collect(self) -> Iterator[Metric]:
        if self.site is not None:
            yield _gauge("web_sessions", "Web sessions live now.", len(self.site.sessions))
        clusterer = self.clusterer
        if clusterer is not None:
            yield _gauge(
                "visits_open", "Clustered sessions (visits) open now.", clusterer.active_count
            )
            ended = CounterMetricFamily(
                f"{_PREFIX}_visits_ended",
                "Visits ended, by why: cutoff, evicted, logout, shutdown.",
                labels=["reason"],
            )
            for reason, count in sorted(clusterer.ended_by_reason.items()):
                ended.add_metric([reason], count)
            yield ended
        if self.tally is not None:
            yield from request_families(self.tally)
        writer = self.store.writer
        yield _gauge("counter_backlog", "Counter increments waiting for Redis.", writer.backlog)
        yield _counter("counter_kicks_dropped", "Kicks dropped by a full backlog.", writer.dropped)
        yield _gauge(
            "redis_reachable",
            "Whether Redis answers (1) or not (0).",
            int(self.store.link.connected),
        )
        links = [self.store.link]
        links += [self.activity.link] if self.activity is not None else []
        links += [self.streams.link, self.streams.blocking] if self.streams is not None else []
        cluster = [link for link in links if isinstance(link, ClusterLink)]
        if cluster:
            yield _counter(
                "redis_cluster_redirections",
                "Commands Redis Cluster redirected (MOVED or ASK): slots migrating or moved.",
                sum(link.router.redirections for link in cluster),
            )
        if self.activity is not None:
            marks = self.activity.writer
            yield _gauge("activity_backlog", "Activity marks waiting for Redis.", marks.backlog)
            yield _counter(
                "activity_marks_dropped", "Marks dropped by a full backlog.", marks.dropped
            )
        if self.streams is not None:
            yield from self._streams(self.streams)
        if self.feeds:
            yield from self._feeds(self.feeds)

    def _streams(self, streams: Streams) -> Iterator[Metric]:
        gauges = streams.gauges()
        clients = GaugeMetricFamily(
            f"{_PREFIX}_stream_clients", "Stream clients connected, by stream.", labels=["stream"]
        )
        for name, count in sorted(gauges["connected_clients"].items()):
            clients.add_metric([name], count)
        yield clients
        for name, help_text in (
            ("stream_events_written", "Stream events written to Redis."),
            ("stream_events_read", "Stream events read back from Redis."),
            ("dropped_stream_events", "Stream events dropped by a full backlog."),
            ("slow_client_disconnects", "Stream clients disconnected for reading too slowly."),
        ):
            yield _counter(name, help_text, gauges[name])
        yield _gauge("stream_backlog", "Stream events waiting for Redis.", gauges["stream_backlog"])

    def _feeds(self, feeds: Sequence[Feed]) -> Iterator[Metric]:
        states = [(feed.name, feed.gauges()) for feed in feeds]
        for field, kind, help_text in _FEED_FIGURES:
            family = kind(f"{_PREFIX}_feed_{field}", help_text, labels=["feed"])
            for name, state in states:
                if state[field] is not None:  # No lag before the first event.
                    family.add_metric([name], float(state[field]))
            yield family


#: Each feed's figures: its gauge in /stats, the family's kind, and what it says.
_FEED_FIGURES: tuple[tuple[str, Any, str], ...] = (
    ("connected", GaugeMetricFamily, "Whether a feed is connected."),
    ("lag_seconds", GaugeMetricFamily, "Seconds from a feed's newest event time to now."),
    ("open_sessions", GaugeMetricFamily, "A feed's open sessions."),
    ("events_kept", CounterMetricFamily, "A feed's events kept since the start."),
    ("reconnects", CounterMetricFamily, "A feed's reconnections."),
)


def request_families(tally: RequestTally) -> Iterator[Metric]:
    """
    The requests by status class and the duration histogram, folded up to now.
    """
    tally.fold()
    requests = CounterMetricFamily(
        f"{_PREFIX}_requests", "Tracked requests, by status class.", labels=["status_class"]
    )
    for status, count in sorted(tally.by_class.items()):
        requests.add_metric([status], count)
    yield requests
    cumulative, running = [], 0
    for bound, count in zip((*BUCKETS, float("inf")), tally.buckets, strict=True):
        running += count
        cumulative.append((_bound(bound), running))
    yield HistogramMetricFamily(
        f"{_PREFIX}_request_duration_seconds",
        "Seconds from a tracked request's arrival to the end of its response.",
        buckets=cumulative,
        sum_value=tally.duration_sum,
    )


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{_PREFIX}_{name}", help_text, value=value)


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{_PREFIX}_{name}", help_text, value=value)


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def registry_for(collector: ServerCollector) -> CollectorRegistry:
    """
    A registry of its own (not the process-wide default one) with the server's collector and
    prometheus_client's process, platform and garbage-collector figures.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def metrics_leaf(registry: CollectorRegistry) -> JSONLeaf:
    """
    ``GET /stats/metrics``: ``generate_latest`` of the registry, in the reactor; the stats
    tree's other answers as its other leaves give them (405 for other methods, 404 below).
    """
    # prometheus_client's content type without its charset, which Text adds.
    media_type = CONTENT_TYPE_LATEST.split("; charset")[0]

    async def scrape(request: Any) -> Text:
        return Text(media_type, generate_latest(registry).decode("utf-8"))

    return JSONLeaf(scrape)
