"""
The small page both servers of the HTTP benchmark serve, and the bare twisted.web baseline.

``python -m bench.pages PORT`` runs the baseline: stock ``twisted.web.server.Site``, no
sessions, no access log and the same garbage collector tuning as our server's defaults, same
page: the difference measured is session tracking, nothing else.
"""

from __future__ import annotations

import sys

from twisted.web import server
from twisted.web.resource import Resource
from twisted.web.static import Data

BODY = (
    b"<!doctype html><html><head><title>bench</title></head>"
    b"<body><p>A small page.</p></body></html>"
)


def make_page() -> Resource:
    """
    The page: a static HTML body at every path.
    """
    leaf = Data(BODY, "text/html; charset=utf-8")
    leaf.isLeaf = True
    return leaf


page = make_page()


class QuietSite(server.Site):
    """
    Stock Site without the per-request access log, as our server runs by default.
    """

    def log(self, request: object) -> None:
        pass


def main() -> None:
    from twisted.internet import reactor

    from twisted_sessions.tap import tune_garbage_collector

    tune_garbage_collector()
    reactor.listenTCP(int(sys.argv[1]), QuietSite(make_page()), interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
