"""
The running server as one Twisted service: the order things start and stop in.

Start: listen (synchronously, so a busy port is a clear error before anything else starts),
start the embedded Redis if there is one, connect to Redis lazily.
Stop (SIGTERM), within ``shutdown_timeout``: stop listening, expire every live session through
the normal path (hooks run, observers hear of it), flush everything flushable, close the Redis
connection, stop the embedded Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from .events import EndReason

if TYPE_CHECKING:
    from twisted.internet.interfaces import IListeningPort, IReactorTime, IStreamServerEndpoint

    from .activity import Activity
    from .clustering.clusterer import SessionClusterer
    from .counters.metrica import CounterStore
    from .ingest.feed import Feed
    from .interfaces import IFlushable
    from .stats.metrics import RequestTally
    from .storage.embedded import EmbeddedRedis
    from .storage.link import Link
    from .storage.presence import Presence
    from .streams import Streams
    from .web.site import Site


class StartupError(SystemExit):
    """
    The server cannot start; the message says why, with no traceback.
    """


class SessionServer(Service):
    """
    A tracked Site listening on an endpoint, with its Redis.

    :param reactor: the reactor (``IReactorTime``).
    :param site: the tracked Site.
    :param endpoint: where to listen.
    :param redis: the connection to Redis.
    :param embedded: the embedded Redis to run, or ``None`` for an external one.
    :param shutdown_timeout: seconds the whole stop sequence may take.
    """

    _log = Logger()
    name = "twisted-sessions"

    def __init__(
        self,
        reactor: Any,
        site: Site,
        endpoint: IStreamServerEndpoint,
        redis: Link,
        embedded: EmbeddedRedis | None = None,
        shutdown_timeout: float = 10.0,
    ) -> None:
        self._reactor = reactor
        self.site = site
        self._endpoint = endpoint
        self.redis = redis
        self.embedded = embedded
        self.shutdown_timeout = shutdown_timeout
        self.flushables: list[IFlushable] = []
        self.port: IListeningPort | None = None
        #: The session clusterer, when the server has one (``twistd sessions`` always does).
        self.clusterer: SessionClusterer | None = None
        #: Where metricas count, when the server has them (``twistd sessions`` always does).
        self.counters: CounterStore | None = None
        #: Where activity is marked, when the server has it (its own, binary, Redis link).
        self.activity: Activity | None = None
        #: The live streams, when the server has them (two binary Redis links of their own).
        self.streams: Streams | None = None
        #: The consumed feeds (``--ingest``), started once the writers are.
        self.feeds: list[Feed] = []
        #: The requests counted for ``/stats/metrics``, folded once a second while running.
        self.tally: RequestTally | None = None
        #: Where the stats tree is mounted, and who may read it (``StatsAccess.mode``), for
        #: the startup log; ``None`` without a stats tree.
        self.stats_path: str | None = None
        self.stats_mode: str | None = None
        #: This server's heartbeat among its site's servers (on the server's Redis link).
        self.presence: Presence | None = None

    def add_flushable(self, flushable: IFlushable) -> None:
        """
        Flush ``flushable`` during shutdown, after the sessions expired.
        """
        self.flushables.append(flushable)

    def privilegedStartService(self) -> None:
        """
        Listen now, so that a port that cannot be had stops the start with a clear message.
        """
        super().privilegedStartService()
        outcome: list[Any] = []
        self._endpoint.listen(self.site).addBoth(outcome.append)
        if not outcome:
            raise StartupError("twistd sessions: the --port endpoint did not listen at once")
        if not hasattr(outcome[0], "getHost"):
            raise StartupError(
                f"twistd sessions: cannot listen on --port: {outcome[0].getErrorMessage()}"
            )
        self.port = outcome[0]
        address = _describe(self.port)
        self._log.info("twisted-sessions listening on {address}", address=address)
        if self.stats_path is not None:
            self._log.info(
                "stats tree at {address}{path}/: {who}",
                address=address,
                path=self.stats_path,
                who=_STATS_MODES.get(self.stats_mode or "", self.stats_mode),
            )

    def startService(self) -> None:
        """
        Start the embedded Redis (if any), then connect to Redis in the background.
        """
        if self.port is None:
            self.privilegedStartService()
        super().startService()
        if self.counters is not None:
            # Replays a spool left by the last run; its batches wait for Redis like any other.
            self.counters.writer.start()
            # What the site's servers stored on stored axes: their caps hold site-wide.
            self.counters.start()
        if self.activity is not None:
            self.activity.writer.start()
        if self.streams is not None:
            self.streams.start()
        if self.tally is not None:
            self.tally.start()
        for feed in self.feeds:
            # Each waits for Redis (its checkpoint) before it connects to its feed.
            feed.start().addErrback(self._feed_failed, feed.name)
        embedded = self.embedded
        if embedded is None:
            self._connect()
            return
        try:
            embedded.startService()
        except RuntimeError as error:
            raise StartupError(f"twistd sessions: {error}") from None
        embedded.ready.addCallback(lambda _: self._connect())
        embedded.ready.addErrback(
            lambda failure: self._log.failure("embedded Redis did not start", failure)
        )

    def _feed_failed(self, failure: Failure, name: str) -> None:
        self._log.failure("feed {name} did not start", failure, name=name)

    def _connect(self) -> None:
        self.redis.connect()
        if self.activity is not None:
            self.activity.link.connect()
        if self.streams is not None:
            self.streams.link.connect()
            self.streams.blocking.connect()
        if self.presence is not None:
            self.presence.start()

    def stopService(self) -> Deferred[None]:
        """
        The ordered, bounded stop sequence.
        """
        super().stopService()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        clock: IReactorTime = self._reactor
        deadline = clock.seconds() + self.shutdown_timeout

        def remaining(reserve: float = 0.0) -> float:
            return max(deadline - clock.seconds() - reserve, 0.1)

        # Keep time for the embedded Redis to write its data whatever happens before.
        reserve = self.embedded.stop_timeout if self.embedded is not None else 0.0
        if self.port is not None:
            await self._bounded(self.port.stopListening(), remaining(reserve), "stop listening")
            self.port = None
        if self.tally is not None:
            self.tally.stop()
        if self.presence is not None:
            # Off the list of live servers at once: the balancer's checks fail already.
            await self._bounded(
                Deferred.fromCoroutine(self.presence.stop()), remaining(reserve), "leave"
            )
        for feed in self.feeds:
            # No event after this: the last flush checkpoints where each feed stopped, and
            # its open sessions are rebuilt at the next start, not ended now.
            feed.stop()
        if self.counters is not None:
            self.counters.writer.stop()  # The flush below is the last one.
            self.counters.stop()
        if self.activity is not None:
            self.activity.writer.stop()
        if self.streams is not None:
            # Stream clients are told the stream ended: they resume (Last-Event-ID) elsewhere
            # or here after the restart; the writer's last flush is among the flushables.
            self.streams.stop()
        expired = self.site.expire_all(EndReason.SHUTDOWN)
        self._log.info("shutdown: expired {count} live session(s)", count=expired)
        if self.clusterer is not None:
            self._log.info(
                "shutdown: finishing {count} open clustered session(s)",
                count=self.clusterer.active_count,
            )
        for flushable in self.flushables:
            await self._bounded(flushable.flush(), remaining(reserve), f"flush {flushable!r}")
        await self._bounded(
            Deferred.fromCoroutine(self.redis.disconnect()), remaining(reserve), "close Redis"
        )
        if self.activity is not None:
            await self._bounded(
                Deferred.fromCoroutine(self.activity.link.disconnect()),
                remaining(reserve),
                "close the activity's Redis link",
            )
        if self.streams is not None:
            for link in (self.streams.link, self.streams.blocking):
                await self._bounded(
                    Deferred.fromCoroutine(link.disconnect()),
                    remaining(reserve),
                    "close a stream Redis link",
                )
        if self.embedded is not None and self.embedded.running:
            await self._bounded(self.embedded.stopService(), remaining(), "stop embedded Redis")
        self._log.info("shutdown complete")

    async def _bounded(self, step: Deferred[Any] | None, seconds: float, what: str) -> None:
        if step is None:
            return
        step.addTimeout(seconds, self._reactor)
        try:
            await step
        except Exception as error:
            self._log.error(
                "shutdown step {what!r} did not complete: {error}", what=what, error=repr(error)
            )


#: The startup log's words for each StatsAccess mode.
_STATS_MODES = {
    "loopback": "loopback clients only (no --stats-token-file; --stats-public opens it)",
    "token": "clients with the bearer token of --stats-token-file",
    "public": "PUBLIC: any client can read it (--stats-public)",
}


def _describe(port: IListeningPort) -> str:
    """
    The address the port really listens on: ``0.0.0.0`` and ``[::]`` are every interface;
    ``https://`` for a TLS port.
    """
    host = port.getHost()
    if hasattr(host, "port"):
        shown = getattr(host, "host", "") or "0.0.0.0"
        if ":" in shown:
            shown = f"[{shown}]"
        scheme = "https" if _is_tls(port) else "http"
        return f"{scheme}://{shown}:{host.port}/"
    return str(host)


def _is_tls(port: IListeningPort) -> bool:
    """
    Whether the port wraps its connections in TLS (``ssl:`` endpoints).
    """
    factory = getattr(port, "factory", None)
    # serverFromString("ssl:...") listens with a TLSMemoryBIOFactory around the Site.
    return type(factory).__name__ == "TLSMemoryBIOFactory" or hasattr(port, "ctxFactory")
