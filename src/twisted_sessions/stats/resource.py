"""
The stats resource tree: metricas and sessions as JSON over HTTP.

Mounted at ``/stats`` by ``twistd sessions`` (or anywhere in your own tree)::

    GET /stats                                   metricas (name, axes, links) and live gauges
    GET /stats/metricas/{name}                   count, total, average of a bucket and filter
    GET /stats/metricas/{name}/iterate?by=axis   per value of an axis, or per finer time unit
    GET /stats/metricas/{name}/timeserie         per bucket of a scale, from since to until
    GET /stats/sessions                          clustered sessions: open now, finished, length
                                                 (the web's, and each consumed feed's)
    GET /stats/activity                          the activity events marked
    GET /stats/activity/{event}                  distinct users per period (and/or/not others)
    GET /stats/cohort                            a cohort table (JSON, or CSV)
    GET /stats/stream/{streams}                  live events (SSE, or NDJSON), resumable
    POST /stats/auth                             the bearer token for a cookie (browsers)
    GET /stats/metrics                           the Prometheus text format
    GET /stats/dashboard/                        the dashboard (a page, a client of the above)
    GET /stats/openapi.json                      the OpenAPI 3 document of all of the above

Query parameters: ``timespan=2010-02-07`` (or ``2010``, ``2010-02``, ``2010-02-07T13``), or
``year=&month=&day=&hour=``; any other parameter filters an axis (``?gender=girl&age=19``).
Each is given once, and only to the view it is for (``since`` outside ``/timeserie`` would
otherwise be silently ignored). Bad input is a 400 with a JSON body naming the problem; an
unknown metrica or path 404; methods other than GET and HEAD 405; Redis unreachable a 503 at
once. Every response is JSON with ``nosniff`` and ``no-store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from twisted.web.resource import Resource

from ..counters.timebuckets import Timespan
from .access import CookieExchange, StatsAccess
from .activity import ActivityResource, cohort_leaf
from .dashboard import Dashboard
from .metricas import MetricasResource
from .metrics import RequestTally, ServerCollector, metrics_leaf, registry_for
from .openapi import openapi_document
from .params import span_parts
from .responses import ErrorLeaf, JSONLeaf, Preflight
from .routes import INDEX, OPENAPI, SESSIONS
from .streams import StreamsResource

if TYPE_CHECKING:
    from ..activity.tracker import Activity
    from ..clustering.clusterer import SessionClusterer
    from ..counters.metrica import CounterStore, Metrica
    from ..ingest.feed import Feed
    from ..storage.presence import Presence
    from ..streams.hub import Streams
    from ..web.site import Site


class StatsResource(Resource):
    """
    The root of the stats tree.

    :param store: the metricas.
    :param site: the tracked Site (for the live web session gauge), if any.
    :param clusterer: the session clusterer, if any.
    :param token: a bearer token every request must carry, or ``None``.
    :param public: without a token, answer every client; by default only loopback clients
        are answered (see :mod:`twisted_sessions.stats.access`).
    :param cors_origins: origins whose pages may read the tree from a browser.
    :param activity: the activity marks, for ``/stats/activity`` and ``/stats/cohort``.
    :param streams: the live streams, for ``/stats/stream/{streams}``.
    :param feeds: the consumed feeds, whose state ``/stats`` and ``/stats/sessions`` show.
    :param tally: the requests counted for ``/stats/metrics`` (the Prometheus text), which
        is served with or without it.
    """

    def __init__(
        self,
        store: CounterStore,
        site: Site | None = None,
        clusterer: SessionClusterer | None = None,
        token: str | None = None,
        public: bool = False,
        cors_origins: frozenset[str] = frozenset(),
        activity: Activity | None = None,
        streams: Streams | None = None,
        feeds: Sequence[Feed] = (),
        tally: RequestTally | None = None,
        presence: Presence | None = None,
    ) -> None:
        super().__init__()
        self.store, self.site, self.clusterer = store, site, clusterer
        self.presence = presence
        self.feeds = list(feeds)
        self.activity = activity
        self.streams = streams
        self.access = StatsAccess(token or None, public, frozenset(cors_origins))
        self._index = JSONLeaf(self._describe)
        self._children: dict[bytes, Resource] = {
            b"metricas": MetricasResource(store),
            b"sessions": JSONLeaf(self._sessions),
            b"openapi.json": JSONLeaf(self._openapi),
            b"auth": CookieExchange(self.access, store.clock),
        }
        collector = ServerCollector(store, site, clusterer, activity, streams, feeds, tally)
        self._children[b"metrics"] = metrics_leaf(registry_for(collector))
        self._children[b"dashboard"] = Dashboard(store)
        if streams is not None:
            self._children[b"stream"] = StreamsResource(streams)
        if activity is not None:
            self._children[b"activity"] = ActivityResource(activity)
            self._children[b"cohort"] = cohort_leaf(activity)

    def getChildWithDefault(self, path: bytes, request: Any) -> Resource:
        if self.access.allow_origin(request) and request.method == b"OPTIONS":
            return Preflight()
        refusal = self.access.refusal(request, self.store.clock.seconds())
        if refusal is not None:
            return refusal
        if path == b"":
            return self._index
        return self._children.get(path) or ErrorLeaf(
            404, f"no such stats resource: {path.decode('utf-8', 'replace')}"
        )

    def render(self, request: Any) -> Any:
        return self.getChildWithDefault(b"", request).render(request)

    async def _openapi(self, request: Any) -> dict[str, Any]:
        OPENAPI.parse(request)
        # Where the tree is mounted: the prepath up to and without "openapi.json".
        base = "/" + "/".join(p.decode("utf-8", "replace") for p in request.prepath[:-1] if p)
        return openapi_document(
            base,
            token=self.access.token is not None,
            store=self.store,
            activity=self.activity is not None,
            streams=self.streams is not None,
        )

    async def _describe(self, request: Any) -> dict[str, Any]:
        INDEX.parse(request)
        base = "/" + "/".join(p.decode() for p in request.prepath if p)
        metricas = [
            {
                "name": metrica.name,
                "averaged": metrica.averaged,
                "axes": [
                    {"name": name, "kind": type(axis).__name__, "choices": axis.choices}
                    for name, axis in metrica.axes
                ],
                "links": {
                    "self": f"{base}/metricas/{metrica.name}",
                    "iterate": f"{base}/metricas/{metrica.name}/iterate",
                    "timeserie": f"{base}/metricas/{metrica.name}/timeserie",
                },
            }
            for metrica in self.store.metricas.values()
        ]
        writer, link = self.store.writer, self.store.link
        return {
            "metricas": metricas,
            "gauges": {
                "web_sessions": len(self.site.sessions) if self.site is not None else None,
                "clustered_sessions": (
                    self.clusterer.active_count if self.clusterer is not None else None
                ),
                "clustered_sessions_evicted": (
                    self.clusterer.evicted_count if self.clusterer is not None else None
                ),
                "writer_backlog": writer.backlog,
                "dropped_kicks": writer.dropped,
                "activity_backlog": (
                    self.activity.writer.backlog if self.activity is not None else None
                ),
                "dropped_marks": self.activity.writer.dropped
                if self.activity is not None
                else None,
                "redis_reachable": link.connected,
            },
            "streams": self.streams.gauges() if self.streams is not None else None,
            "server": self._server(),
            "feeds": {feed.name: feed.gauges() for feed in self.feeds},
        }

    def _server(self) -> dict[str, Any] | None:
        """
        Which server this is, and which of the site's servers were alive at its last heartbeat.
        """
        presence = self.presence
        if presence is None:
            return None
        alive = presence.alive()
        return {
            "id": presence.server_id,
            "alive": alive,
            "alive_count": None if alive is None else len(alive),
        }

    async def _sessions(self, request: Any) -> dict[str, Any]:
        SESSIONS.parse(request)
        now = datetime.fromtimestamp(self.store.clock.seconds(), UTC)
        metrica = self.store.metricas.get("sessions")
        finished = await _finished(metrica, now) if metrica is not None else {}
        feeds = {
            feed.name: {
                "active_sessions": feed.sessions.open_count,
                "cutoff": feed.sessions.cutoff,
                "lateness": feed.sessions.lateness,
                "watermark": feed.gauges()["watermark"],
                "finished": await _finished(feed.sessions_metrica, now),
            }
            for feed in self.feeds
        }
        return {
            "active_web_sessions": len(self.site.sessions) if self.site is not None else None,
            "active_clustered_sessions": (
                self.clusterer.active_count if self.clusterer is not None else None
            ),
            "cutoff": self.clusterer.cutoff if self.clusterer is not None else None,
            "finished": finished,
            "feeds": feeds,
        }


async def _finished(metrica: Metrica, now: datetime) -> dict[str, Any]:
    """
    Count and average length of the sessions a metrica counted today, this month, ever.
    """
    finished: dict[str, Any] = {}
    for label, span in (
        ("today", Timespan.of(now, "day")),
        ("this_month", Timespan.of(now, "month")),
        ("all_time", Timespan()),
    ):
        query = metrica.timespan(*span_parts(span))
        finished[label] = {"count": await query.count(), "average_length": await query.average()}
    return finished
