"""
The JSON plumbing of the stats tree: every answer is JSON, errors included.

:class:`JSONLeaf` answers GET and HEAD with what an async producer computes, turning the
producer's :class:`StatsError` into its status code, Redis trouble into a 503 and anything
else into a logged 500; :class:`ErrorLeaf` answers a fixed error.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ..storage.link import RedisTimeout, RedisUnavailable

#: Seconds a client is asked to wait after a 503 (Redis unreachable).
RETRY_AFTER = b"5"


class Text:
    """
    An answer that is not JSON (a CSV table): its media type and its text.
    """

    def __init__(self, media_type: str, text: str) -> None:
        self.media_type, self.text = media_type, text


def send_text(request: Any, answer: Text) -> bytes:
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", f"{answer.media_type}; charset=utf-8".encode())
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"Cache-Control", b"no-store")
    encoded = answer.text.encode("utf-8")
    request.setHeader(b"Content-Length", b"%d" % len(encoded))
    return encoded


class StatsError(Exception):
    """
    A client error: the status code and the problem, sent as ``{"error": ...}``.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class JSONLeaf(Resource):
    """
    A leaf answering GET and HEAD with JSON computed asynchronously; everything else 405.
    """

    isLeaf = True
    _log = Logger()

    def __init__(self, produce: Callable[[Any], Awaitable[Any]]) -> None:
        super().__init__()
        self._produce = produce

    def render(self, request: Any) -> Any:
        if any(request.postpath):
            # /stats/metricas/{name}/iterate/more: a path below a view is nothing.
            path = "/".join(segment.decode("utf-8", "replace") for segment in request.postpath)
            return send_json(request, 404, {"error": f"no such stats resource: {path}"})
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"Allow", b"GET, HEAD")
            return send_json(request, 405, {"error": "only GET and HEAD are allowed"})
        finished = [False]
        request.notifyFinish().addBoth(lambda _: finished.__setitem__(0, True))

        async def respond() -> None:
            try:
                body, code = await self._produce(request), 200
            except StatsError as error:
                body, code = {"error": str(error)}, error.code
            except (RedisUnavailable, RedisTimeout) as error:
                body, code = {"error": f"Redis is unreachable: {error}"}, 503
                # The link retries in the background (at most 5 s apart): ask again soon.
                request.setHeader(b"Retry-After", RETRY_AFTER)
            except Exception:
                self._log.failure("stats request {path} failed", path=request.path)
                body, code = {"error": "internal error"}, 500
            if not finished[0]:
                if isinstance(body, Text):
                    request.write(send_text(request, body))
                else:
                    request.write(send_json(request, code, body))
                request.finish()

        Deferred.fromCoroutine(respond()).addErrback(
            lambda failure: self._log.failure("stats response failed", failure)
        )
        return NOT_DONE_YET


def send_json(request: Any, code: int, body: Any) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"Cache-Control", b"no-store")
    encoded = json.dumps(body, default=str).encode("utf-8")
    request.setHeader(b"Content-Length", b"%d" % len(encoded))
    return encoded


class ErrorLeaf(Resource):
    """
    A leaf with a fixed JSON error (404, 401).
    """

    isLeaf = True

    def __init__(self, code: int, message: str, headers: dict[bytes, bytes] | None = None):
        super().__init__()
        self._code, self._message, self._headers = code, message, headers or {}

    def render(self, request: Any) -> bytes:
        for name, value in self._headers.items():
            request.setHeader(name, value)
        return send_json(request, self._code, {"error": self._message})


class Preflight(Resource):
    """
    The answer to a CORS preflight from an allowed origin: GET and HEAD, with a bearer token.
    """

    isLeaf = True

    def render(self, request: Any) -> bytes:
        request.setResponseCode(204)
        request.setHeader(b"Access-Control-Allow-Methods", b"GET, HEAD")
        request.setHeader(b"Access-Control-Allow-Headers", b"Authorization")
        request.setHeader(b"Access-Control-Max-Age", b"600")
        return b""
