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

from pathlib import Path
from typing import Any

from twisted.web.resource import Resource

from .responses import send_json

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


class Dashboard(Resource):
    """
    The dashboard's page and files (read once), under a strict CSP.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self._files = {
            path: ((ASSETS / name).read_bytes(), media.encode())
            for path, (name, media) in FILES.items()
        }

    def render(self, request: Any) -> bytes:
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
        request.setHeader(b"Content-Type", media)
        request.setHeader(b"Content-Security-Policy", CSP)
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"Referrer-Policy", b"no-referrer")
        return body
