"""
``/stats/dashboard/``: the page people look at, served from files in the wheel.

Its numbers all come from the documented JSON API, read by the page's script
(``assets/dashboard.js``): the dashboard has no endpoint of its own. The chart library is
uPlot 1.6.32, vendored (``assets/vendor``, with its licence and SHA-256 sums): 22 KB
minified and gzipped, and it needs no ``eval`` or ``new Function``, so the page runs under a
Content-Security-Policy of ``default-src 'self'`` and asks nothing of any other origin
(machines running this are often offline). docs/dashboard.md says why not Chart.js, ECharts
or Vega-Lite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ..storage.link import RedisTimeout, RedisUnavailable
from .params import metrica_query
from .responses import send_json

if TYPE_CHECKING:
    from ..counters.metrica import CounterStore

ASSETS = Path(__file__).parent / "assets"
#: What the page may load: its own files only; no inline script, no other origin.
CSP = (
    b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'"
)
#: The files served, by path below the dashboard, with their media types.
FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "vendor/uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "vendor/uPlot.min.css": ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
}


#: Where the page carries the server-rendered table (for a browser without JavaScript).
_SERVER_TABLE = b"<!--SERVER-TABLE-->"
#: Days of the server-rendered table: the overview's default range.
DAYS = 14


class Dashboard(Resource):
    """
    The dashboard's page and files (read once), under a strict CSP.

    :param store: the metricas, for the table the page carries for browsers without
        JavaScript (the overview's numbers, read as ``/stats/metricas/.../timeserie`` reads
        them).
    """

    isLeaf = True
    _log = Logger()

    def __init__(self, store: CounterStore | None = None) -> None:
        super().__init__()
        self._store = store
        self._files = {
            path: ((ASSETS / name).read_bytes(), media.encode())
            for path, (name, media) in FILES.items()
        }

    def render(self, request: Any) -> Any:
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"Allow", b"GET, HEAD")
            return send_json(request, 405, {"error": "only GET and HEAD are allowed"})
        if not request.postpath:
            # /stats/dashboard: the page's relative links need the trailing slash.
            request.setResponseCode(302)
            request.setHeader(b"Location", request.path + b"/")
            return b""
        path = "/".join(segment.decode("utf-8", "replace") for segment in request.postpath)
        found = self._files.get(path)
        if found is None:
            return send_json(request, 404, {"error": f"no such dashboard file: {path}"})
        body, media = found
        self._headers(request, media)
        if path == "" and self._store is not None:
            Deferred.fromCoroutine(self._page(request, body)).addErrback(
                lambda failure: self._log.failure("dashboard page failed", failure)
            )
            return NOT_DONE_YET
        return body

    def _headers(self, request: Any, media: bytes) -> None:
        request.setHeader(b"Content-Type", media)
        request.setHeader(b"Content-Security-Policy", CSP)
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"Referrer-Policy", b"no-referrer")

    async def _page(self, request: Any, page: bytes) -> None:
        """
        The page, with the last days' requests and visits as a table for browsers without
        JavaScript; if Redis cannot be read, the table says so (the page still works).
        """
        finished = [False]
        request.notifyFinish().addBoth(lambda _: finished.__setitem__(0, True))
        try:
            table = await self._table()
        except (RedisUnavailable, RedisTimeout) as error:
            table = f"<p>The statistics cannot be read now: {escape(str(error))}.</p>"
        if not finished[0]:
            request.write(page.replace(_SERVER_TABLE, table.encode("utf-8")))
            request.finish()

    async def _table(self) -> str:
        assert self._store is not None
        metricas = self._store.metricas
        today = datetime.fromtimestamp(self._store.clock.seconds(), UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        since = today - timedelta(days=DAYS - 1)
        columns = []
        for name in ("requests", "sessions"):
            metrica = metricas.get(name)
            # As /stats/metricas/{name}/timeserie reads them.
            query = metrica_query(metrica, {}, {}) if metrica else None
            points = await query.timeserie_points(since, today) if query else []
            columns.append({start: count for start, count, _, _ in points})
        rows = "".join(
            f"<tr><th scope=row>{day:%Y-%m-%d}</th><td>{columns[0].get(day, 0)}</td>"
            f"<td>{columns[1].get(day, 0)}</td></tr>"
            for day in (since + timedelta(days=n) for n in range(DAYS))
        )
        return (
            '<table id="server-table"><caption>Requests and visits per day</caption>'
            "<thead><tr><th scope=col>day</th><th scope=col>requests</th>"
            f"<th scope=col>visits</th></tr></thead><tbody>{rows}</tbody></table>"
        )
