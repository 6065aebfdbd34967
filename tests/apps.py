"""
Small applications the end-to-end tests serve with ``--app`` (importable as ``tests.apps``
from the project root, which the test run puts on the servers' path).
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.static import Data


def pages() -> Resource:
    """
    ``/a``, ``/b`` and ``/c``, each a leaf serving every path below it; anything else is 404.
    """
    root = Resource()
    for name in (b"a", b"b", b"c"):
        page = Data(b"<p>" + name + b"</p>", "text/html; charset=utf-8")
        page.isLeaf = True
        root.putChild(name, page)
    return root
