"""
An EventSource for Twisted: one SSE feed, read without blocking, reconnected until stopped.

- The request goes through treq with ``unbuffered=True`` (its default buffered response keeps
  the whole, endless, stream in memory); treq's ``timeout=`` bounds the wait for the response
  headers, and an idle watchdog bounds every read after them: a stream silent for
  ``idle_timeout`` seconds (no event, no heartbeat comment) is closed and reconnected.
- A reconnection waits the server's ``retry:`` time (else ``retry`` seconds), doubled after
  each attempt that delivered nothing, up to ``max_delay``, and sends ``Last-Event-ID``: the
  id of the last event dispatched, so the feed resumes after it.
- A response that is not ``200 text/event-stream`` is retried the same way when it may pass
  (5xx, 408, 429), and stops the source otherwise (a 404 for a wrong stream name, or an HTML
  page, does not get better by asking again); a 204 is the server saying "stop", as the
  standard has it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone, _HTTP11ClientFactory

from .eventstream import EventStreamParser, MessageEvent

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

USER_AGENT = "twisted-sessions (https://pypi.org/project/twisted-sessions/) Twisted SSE consumer"
#: Statuses worth asking again for.
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


class SourceStopped(Exception):
    """
    The source stopped for good: the server refused the stream (the message says how).
    """


class EventSource:
    """
    Reads one ``text/event-stream`` URL and calls ``on_event`` with each event, in order.

    :param reactor: the reactor (``IReactorTCP`` and ``IReactorTime``): requests and timers.
    :param url: the feed.
    :param on_event: called with each :class:`MessageEvent`; what it raises is logged.
    :param last_event_id: resume after this event (sent as ``Last-Event-ID``).
    :param retry: seconds before the first reconnection, until the server says (``retry:``).
    :param max_delay: the longest wait between two attempts.
    :param connect_timeout: seconds to wait for the response headers.
    :param idle_timeout: seconds a connected stream may stay silent before it is closed and
        reconnected: above the server's heartbeat interval (EventStreams and our own
        ``/stats/stream`` send one within 15 seconds).
    :param headers: more request headers (``Authorization`` for a protected feed).
    :param agent: the ``IAgent`` to request with (a pool-less ``Agent`` by default).
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        url: str,
        on_event: Callable[[MessageEvent], object],
        *,
        last_event_id: str = "",
        retry: float = 3.0,
        max_delay: float = 60.0,
        connect_timeout: float = 30.0,
        idle_timeout: float = 60.0,
        headers: dict[str, str] | None = None,
        agent: Any = None,
    ) -> None:
        self._reactor = reactor
        self.url = url
        self._on_event = on_event
        self.parser = EventStreamParser(last_event_id)
        self.retry = retry
        self.max_delay = max_delay
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self._headers: dict[bytes | str, bytes | str] = {"User-Agent": USER_AGENT}
        self._headers.update(headers or {})
        if agent is None:
            pool = HTTPConnectionPool(reactor, persistent=False)
            pool._factory = _QuietFactory  # One log line per reconnection is ours, not two.
            agent = Agent(reactor, pool=pool)
        self._client = HTTPClient(agent)
        self._running = False
        self._attempt: Deferred[Any] | None = None
        self._body: _Body | None = None
        self._wait: IDelayedCall | None = None
        self._failures = 0
        self._paused = False
        # Events parsed and not handed on yet (the rest of a chunk during a pause).
        self._held: deque[MessageEvent] = deque()
        self._delivered_id = last_event_id
        #: Fired when the source stops for good: ``None`` after :meth:`stop`, a
        #: :class:`SourceStopped` failure when the server refused the stream.
        self.done: Deferred[None] = Deferred()
        #: ``connecting``, ``connected``, ``waiting`` (to reconnect), ``stopped`` or
        #: ``failed: ...``.
        self.state = "stopped"
        self.connects = 0
        self.reconnects = 0
        self.events = 0
        #: Reactor time of the last byte received.
        self.last_received: float | None = None

    @property
    def last_event_id(self) -> str:
        """
        The id of the last event handed to ``on_event``: where a consumer that stops now
        resumes. (A reconnection resumes after the last event *received*: events held
        during a pause are still handed on after it.)
        """
        return self._delivered_id

    def start(self) -> None:
        """
        Connect, and keep connected until :meth:`stop`.
        """
        if self._running:
            return
        self._running = True
        self._connect()

    def stop(self) -> None:
        """
        Close the stream and stop reconnecting; :attr:`done` fires.
        """
        if not self._running:
            return
        self._running = False
        self.state = "stopped"
        if self._wait is not None and self._wait.active():
            self._wait.cancel()
        self._wait = None
        if self._attempt is not None:
            self._attempt.cancel()
        if self._body is not None:
            self._body.close()
        if not self.done.called:
            self.done.callback(None)

    @property
    def paused(self) -> bool:
        """
        Whether reading is paused (:meth:`pause`).
        """
        return self._paused

    def pause(self) -> None:
        """
        Stop reading (the connection stays; TCP holds the feed back): for a consumer whose
        own output is backed up. The idle watchdog waits meanwhile.
        """
        self._paused = True
        if self._body is not None:
            self._body.pause()

    def resume(self) -> None:
        """
        Read again after :meth:`pause` (a feed that dropped the connection meanwhile is
        reconnected with ``Last-Event-ID`` as usual).
        """
        self._paused = False
        self._deliver()
        if self._body is not None and not self._paused:
            self._body.resume()

    # -- connecting ------------------------------------------------------------------------

    def _connect(self) -> None:
        self._wait = None
        if not self._running:
            return
        self.state = "connecting"
        headers: dict[bytes | str, bytes | str] = {
            **self._headers,
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
        }
        if self.parser.last_event_id:
            headers["Last-Event-ID"] = self.parser.last_event_id
        attempt = self._client.get(
            self.url,
            headers=headers,
            unbuffered=True,
            timeout=self.connect_timeout,
            reactor=self._reactor,
        )
        self._attempt = attempt
        attempt.addCallbacks(self._responded, self._could_not_connect)

    def _responded(self, response: Any) -> None:
        self._attempt = None
        if not self._running:
            response.deliverBody(_Discard())
            return
        code = response.code
        kind = (response.headers.getRawHeaders(b"content-type") or [b""])[0]
        if code == 200 and kind.split(b";")[0].strip().lower() == b"text/event-stream":
            self.connects += 1
            self.state = "connected"
            self.parser.reset()
            self._body = _Body(self)
            response.deliverBody(self._body)
            if self._paused:
                self._body.pause()
            return
        response.deliverBody(_Discard())
        problem = f"{self.url} answered {code} {kind.decode('latin-1') or '(no type)'}"
        if code == 204:
            self._fail(f"{problem}: the server asks the client to stop")
        elif code in _TRANSIENT:
            self._log.warn("feed {problem}; trying again", problem=problem)
            self._again()
        else:
            self._fail(problem)

    def _could_not_connect(self, failure: Failure) -> None:
        self._attempt = None
        if not self._running:
            return
        if failure.check(CancelledError):
            reason = f"no response in {self.connect_timeout:g} s"
        else:
            # treq's ResponseNeverReceived and ResponseFailed wrap the failures that say why.
            reasons = getattr(failure.value, "reasons", None) or [failure]
            reason = "; ".join(r.getErrorMessage() for r in reasons)
        self._log.warn("feed {url}: {reason}; trying again", url=self.url, reason=reason)
        self._again()

    def _fail(self, problem: str) -> None:
        self._log.error("feed {problem}: stopped", problem=problem)
        self._running = False
        self.state = f"failed: {problem}"
        if not self.done.called:
            self.done.errback(Failure(SourceStopped(problem)))

    def _again(self) -> None:
        """
        Wait, longer after each attempt that delivered nothing, then reconnect.
        """
        if not self._running:
            return
        self.state = "waiting"
        base = self.parser.retry / 1000 if self.parser.retry is not None else self.retry
        delay = min(base * 2 ** min(self._failures, 16), self.max_delay)
        self._failures += 1
        self.reconnects += 1
        self._wait = self._reactor.callLater(delay, self._connect)

    # -- the body --------------------------------------------------------------------------

    def _received(self, chunk: bytes) -> None:
        self.last_received = self._reactor.seconds()
        self._held.extend(self.parser.feed(chunk))
        self._deliver()

    def _deliver(self) -> None:
        """
        Hand the parsed events on, in order, until a pause: the rest of a chunk waits with
        the connection.
        """
        held = self._held
        while held and not self._paused and self._running:
            event = held.popleft()
            self._delivered_id = event.last_event_id
            self.events += 1
            self._failures = 0  # This connection delivered: the next wait starts short.
            try:
                self._on_event(event)
            except Exception:
                self._log.failure("feed {url}: handling an event failed", url=self.url)

    def _lost(self, why: str) -> None:
        self._body = None
        if self._running:
            self._log.info("feed {url}: {why}; reconnecting", url=self.url, why=why)
            self._again()


class _Body(Protocol):
    """
    The body of a connected stream: bytes to the parser, and the idle watchdog.
    """

    def __init__(self, source: EventSource) -> None:
        self._source = source
        self._timer: IDelayedCall | None = None
        self._why = ""

    def connectionMade(self) -> None:
        self._arm()

    def pause(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self.transport is not None:
            self.transport.pauseProducing()  # type: ignore[attr-defined]

    def resume(self) -> None:
        if self.transport is not None:
            self.transport.resumeProducing()  # type: ignore[attr-defined]
            self._arm()

    def _arm(self) -> None:
        source = self._source
        if self._timer is not None and self._timer.active():
            self._timer.reset(source.idle_timeout)
        else:
            self._timer = source._reactor.callLater(source.idle_timeout, self._idle)

    def _idle(self) -> None:
        self._timer = None
        self._why = f"nothing received for {self._source.idle_timeout:g} s"
        _stop(self.transport)  # Closes the connection: connectionLost follows.

    def dataReceived(self, data: bytes) -> None:
        self._arm()
        self._source._received(data)

    def close(self) -> None:
        self._why = "stopped"
        _stop(self.transport)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        why = self._why
        if not why:
            ended = reason is None or reason.check(ResponseDone)
            why = "the server ended the stream" if ended else "the connection was lost"
        self._source._lost(why)


class _QuietFactory(_HTTP11ClientFactory):
    """
    The agent's connection factory without its "Starting factory" log lines.
    """

    noisy = False


class _Discard(Protocol):
    """
    Reads and drops a response body that is not a stream.
    """

    def dataReceived(self, data: bytes) -> None:
        if len(data) > 65536:
            _stop(self.transport)


def _stop(transport: Any) -> None:
    """
    Close a response body's connection: the transport a response delivers its body through
    is an ``IPushProducer`` whose ``stopProducing`` aborts it.
    """
    if transport is not None:
        transport.stopProducing()
