"""
Small applications the end-to-end tests serve with ``--app`` (importable as ``tests.apps``
from the project root, which the test run puts on the servers' path).
"""

from __future__ import annotations

from typing import Any

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


class _Publish(Resource):
    """
    ``/publish?stream=S&n=N&start=K``: publishes events ``{"n": K}`` ... ``{"n": K+N-1}`` on
    stream S (``bot`` true for even n, and ``kind`` "even" or "odd").
    """

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        stream = request.args.get(b"stream", [b"signups"])[0].decode()
        count = int(request.args.get(b"n", [b"1"])[0])
        start = int(request.args.get(b"start", [b"0"])[0])
        size = int(request.args.get(b"size", [b"0"])[0])
        request.site.streams.declare(stream)  # n=0: the stream exists, with no event yet.
        for n in range(start, start + count):
            event: dict[str, Any] = {
                "n": n,
                "bot": n % 2 == 0,
                "kind": "even" if n % 2 == 0 else "odd",
            }
            if size:
                event["pad"] = "x" * size
            request.site.streams.publish(stream, event)
        return b"published"


def publisher() -> Resource:
    """
    ``/publish`` (see :class:`_Publish`) and the pages of :func:`pages`.
    """
    root = pages()
    root.putChild(b"publish", _Publish())
    return root


#: A page that follows a protected stream the way docs/streams.md shows: it reopens its
#: EventSource after a refusal, and exchanges the bearer token for the stats cookie.
STREAM_PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>stream</title>
<script>
window.events = [];
window.refusals = 0;
window.opened = false;
function follow(streams) {
  const source = new EventSource("/stats/stream/" + streams);
  source.onmessage = (message) => window.events.push(JSON.parse(message.data));
  source.onopen = () => { window.opened = true; };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      window.refusals += 1;
      setTimeout(() => follow(streams), 300);
    }
  };
}
async function exchange(token) {
  const answer = await fetch("/stats/auth", {
    method: "POST", headers: {Authorization: "Bearer " + token}});
  return answer.status;
}
</script>
"""


def stream_page() -> Resource:
    """
    :func:`publisher`, and ``/page``: :data:`STREAM_PAGE`.
    """
    root = publisher()
    page = Data(STREAM_PAGE, "text/html; charset=utf-8")
    page.isLeaf = True
    root.putChild(b"page", page)
    return root
