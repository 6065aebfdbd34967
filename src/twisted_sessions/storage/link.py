"""
The server's connection to Redis: lazy, reconnecting, and with a deadline on every call.

txredisapi queues a command forever while it is disconnected. Nothing on a request path or on
the shutdown path may wait on that, so :class:`RedisLink` fails at once with
:class:`RedisUnavailable` while there is no live connection, and gives every command it sends a
deadline after which its Deferred fails with :class:`RedisTimeout`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import txredisapi
from twisted.internet.defer import Deferred, FirstError, TimeoutError, fail, gatherResults
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
    from twisted.python.failure import Failure

    from .address import RedisAddress

#: Seconds a Redis command may take, from the call to the reply.
DEFAULT_DEADLINE = 2.0
#: Seconds between health checks (a PING) of the connection.
DEFAULT_HEALTH_INTERVAL = 2.0


class RedisUnavailable(Exception):
    """
    There is no live connection to Redis right now; the command was not sent.
    """


class RedisTimeout(Exception):
    """
    A command got no reply within its deadline: it may or may not have been applied.
    """


def gather(calls: list[Deferred[Any]]) -> Deferred[list[Any]]:
    """
    The results of Redis calls made in parallel, in order; if one fails, the failure is that
    call's own (a ``RedisUnavailable``, say), not ``gatherResults``' ``FirstError``, so that
    callers handle an outage of many calls as they handle one.
    """

    def first(failure: Failure) -> Failure:
        error = failure.value
        if isinstance(error, FirstError):
            inner: Failure = error.subFailure
            return inner
        return failure

    return gatherResults(calls, consumeErrors=True).addErrback(first)


def note_health(
    log: Logger, where: str, before: bool | None, error: Exception | None, detail: str = ""
) -> bool:
    """
    Log a change of Redis's reachability, once per change (an outage is told once, not at
    every check): the new state, for a link's ``reachable``.

    :param before: what the last check found (``None``: no check yet).
    :param error: why this check failed, or ``None`` if Redis answered.
    """
    if error is not None:
        if before is not False:
            log.warn(
                "Redis at {where} is unreachable ({error}); the server goes on without it "
                "and keeps retrying",
                where=where,
                error=str(error) or type(error).__name__,
            )
        return False
    if before is not True:
        log.info("Redis at {where} is reachable{detail}", where=where, detail=detail)
    return True


class Link(Protocol):
    """
    What the writers and readers need of Redis, whatever its deployment: a :class:`RedisLink`
    (one server), a :class:`~twisted_sessions.storage.sentinel.SentinelLink` (a primary that
    Sentinel fails over) or a :class:`~twisted_sessions.storage.cluster.ClusterLink` (Redis
    Cluster, each command sent to the primary of its key's slot).
    """

    #: Where Redis is, for logs: has ``describe()``.
    address: Any
    #: Seconds a command may take.
    deadline: float
    #: Replies stay bytes.
    binary: bool
    #: ``None`` until the first health check, then whether Redis answered the last one.
    reachable: bool | None

    @property
    def connected(self) -> bool:
        """
        Whether commands can be sent now.
        """

    def connect(self) -> None:
        """
        Start connecting in the background.
        """

    def execute(self, *command: Any) -> Deferred[Any]:
        """
        One command, with its deadline; fails with :class:`RedisUnavailable` or
        :class:`RedisTimeout` in an outage.
        """

    def ping(self) -> Deferred[float]:
        """
        Round-trip seconds of a PING.
        """

    async def disconnect(self) -> None:
        """
        Close, within one deadline.
        """


class RedisLink:
    """
    A lazy, self-healing connection to one Redis server.

    :param reactor: provides ``IReactorTime`` and the reactor interfaces the endpoint needs.
    :param address: where Redis is.
    :param deadline: seconds every command may take.
    :param health_interval: seconds between the PINGs that notice outages and recoveries, and
        log them once each.
    :param binary: leave replies as bytes (for bitmaps); by default they are decoded as UTF-8.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        address: RedisAddress,
        deadline: float = DEFAULT_DEADLINE,
        health_interval: float = DEFAULT_HEALTH_INTERVAL,
        binary: bool = False,
    ) -> None:
        if not deadline > 0:
            raise ValueError(f"deadline must be positive, not {deadline!r}")
        self._reactor = reactor
        self._clock: IReactorTime = reactor
        self.address = address
        self.deadline = deadline
        #: Replies are bytes, not text: bitmaps are binary.
        self.binary = binary
        self._health_interval = health_interval
        self._factory: Any = None
        self._health: LoopingCall | None = None
        #: ``None`` until the first health check, then whether Redis answered the last one.
        self.reachable: bool | None = None
        # Set by disconnect(): a health check still waiting then fails because we closed.
        self._closing = False
        # Until the first connection is made (the embedded Redis may still be starting) and
        # while no health check has found Redis down, a command waits for it, at most one
        # deadline, instead of failing at once: no 503 in a server's first seconds.
        self._ever_connected = False
        self._first_waiters: list[Deferred[None]] = []

    def _endpoint(self) -> IStreamClientEndpoint:
        address = self.address
        if address.path is not None:
            return UNIXClientEndpoint(self._reactor, address.path, timeout=self.deadline)
        assert address.host is not None
        return HostnameEndpoint(self._reactor, address.host, address.port, timeout=self.deadline)

    def connect(self) -> None:
        """
        Start connecting (and reconnecting, for ever, with backoff) in the background.

        Returns at once: the server does not wait for Redis.
        """
        if self._factory is not None:
            return
        self._closing = False
        self._factory = self._start_factory()
        self._log.info(
            "Redis at {where}: connecting in the background; pages are served meanwhile",
            where=self.address.describe(),
        )
        health = LoopingCall(self._check_health)
        health.clock = self._clock
        self._health = health
        health.start(self._health_interval, now=False).addErrback(
            lambda failure: self._log.failure("Redis health check stopped", failure)
        )

    def _factory_options(self) -> dict[str, Any]:
        """
        The txredisapi factory's options (a subclass's factory takes the same).
        """
        address = self.address
        return {
            "uuid": address.describe(),
            # Database 0 is where a connection starts: no SELECT, one fewer way to fail.
            "dbid": address.db or None,
            "poolsize": 1,
            "isLazy": True,
            "password": address.password,
            "replyTimeout": self.deadline,
            # A binary link converts nothing: a bitmap whose bytes spell "1" is not the number 1.
            "convertNumbers": not self.binary,
            "charset": None if self.binary else "utf-8",
        }

    def _started(self, factory: Any, endpoint: Any) -> Any:
        """
        Start ``factory`` connecting through ``endpoint``, reconnecting with backoff.
        """
        factory.maxDelay = 5
        # Lazy: only commands sent before the first connection wait for it; failures are
        # noticed and logged by the health checks.
        factory.deferred.addCallbacks(lambda _: self._first_connection(), lambda _: None)
        factory.startConnecting(endpoint)
        return factory

    def _start_factory(self) -> Any:
        return self._started(txredisapi.RedisFactory(**self._factory_options()), self._endpoint())

    def _revive(self) -> None:
        """
        txredisapi stops reconnecting for good when AUTH or SELECT fails while connecting,
        which a Redis that is loading its data or paused makes them do: start afresh.
        """
        factory = self._factory
        if factory is None or not factory.stopped or factory.size:
            return
        self._log.warn(
            "Redis at {where}: the client gave up reconnecting; starting it again",
            where=self.address.describe(),
        )
        factory.disconnect().addErrback(lambda _: None)
        self._factory = self._start_factory()

    @property
    def connected(self) -> bool:
        """
        Whether a live connection exists now.
        """
        return self._factory is not None and self._factory.size > 0

    def execute(self, *command: Any) -> Deferred[Any]:
        """
        Send one command, e.g. ``execute("HINCRBY", key, field, 1)``.

        :return: a Deferred that fires with the reply, or fails with :class:`RedisUnavailable`
            (nothing was sent), :class:`RedisTimeout` (no reply within the deadline) or the
            error Redis replied with.
        """
        if not self.connected:
            if self._ever_connected or self._closing or self.reachable is False:
                return fail(
                    RedisUnavailable(f"no connection to Redis at {self.address.describe()}")
                )
            return self._after_first_connection(command)
        result: Deferred[Any] = self._factory.handler.execute_command(*command)
        return self._with_deadline(result)

    def _first_connection(self) -> None:
        self._ever_connected = True
        waiters, self._first_waiters = self._first_waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)

    def _after_first_connection(self, command: tuple[Any, ...]) -> Deferred[Any]:
        """
        Send ``command`` once the first connection is made, if that is within a deadline.
        """
        waiter: Deferred[None] = Deferred()
        # Those that timed out already go: the list holds only the requests still waiting.
        self._first_waiters = [w for w in self._first_waiters if not w.called]
        self._first_waiters.append(waiter)
        waiter.addTimeout(self.deadline, self._clock)

        def send(_: None) -> Deferred[Any]:
            if not self.connected:
                raise RedisUnavailable(f"no connection to Redis at {self.address.describe()}")
            return self._with_deadline(self._factory.handler.execute_command(*command))

        def not_yet(failure: Failure) -> None:
            failure.trap(TimeoutError)
            raise RedisUnavailable(
                f"Redis at {self.address.describe()} did not answer within {self.deadline} s "
                "of the first request (still starting?)"
            )

        return waiter.addCallbacks(send, not_yet)

    def _with_deadline(self, result: Deferred[Any]) -> Deferred[Any]:
        result.addTimeout(self.deadline, self._clock)

        def name_errors(failure: Failure) -> Failure:
            if failure.check(TimeoutError, txredisapi.TimeoutError):
                raise RedisTimeout(
                    f"Redis at {self.address.describe()} gave no reply within {self.deadline} s"
                )
            if failure.check(txredisapi.ConnectionError):
                raise RedisUnavailable(str(failure.value))
            return failure

        return result.addErrback(name_errors)

    def ping(self) -> Deferred[float]:
        """
        Round-trip time of a PING, in seconds (by the reactor clock).
        """
        started = self._clock.seconds()
        return self.execute("PING").addCallback(lambda _: self._clock.seconds() - started)

    async def _check_health(self) -> None:
        try:
            await self.ping()
        except Exception as error:
            if self._closing:
                return  # Closed on purpose (shutdown) while this check waited: no outage.
            self.reachable = note_health(self._log, self.address.describe(), self.reachable, error)
            self._revive()
        else:
            self.reachable = note_health(self._log, self.address.describe(), self.reachable, None)

    async def disconnect(self) -> None:
        """
        Stop the health checks and close the connection, waiting at most one deadline.
        """
        self._closing = True
        if self._health is not None and self._health.running:
            self._health.stop()
        # Commands still waiting for a first connection fail now, not at their deadline:
        # nothing of this link outlives its closing (not even a pending timeout).
        waiters, self._first_waiters = self._first_waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.errback(
                    RedisUnavailable(f"the link to Redis at {self.address.describe()} is closed")
                )
        factory, self._factory = self._factory, None
        if factory is None:
            return
        closing: Deferred[Any] = factory.disconnect()
        closing.addTimeout(self.deadline, self._clock)
        try:
            await closing
        except Exception as error:
            self._log.warn("Redis connection did not close cleanly: {error}", error=str(error))
