"""
A primary that Redis Sentinel fails over: ``--redis redis+sentinel://host:port,.../service``.

txredisapi supports Sentinel, and this link uses its machinery rather than a copy: before every
connection attempt its endpoint asks the sentinels which node is the service's primary, a new
connection checks with ``ROLE`` that the node it reached is a primary (else it hangs up and
asks again), and a changed primary closes the connections to the old one. Sentinel itself
disconnects the clients of a primary it demotes (``CLIENT KILL TYPE normal``), so a failover is
a reconnection: commands fail with ``RedisUnavailable`` for the seconds it takes (the writers
keep their counts pending meanwhile and send them after), then go to the new primary.

Everything else (lazy start, deadlines, health checks) is :class:`RedisLink`'s.
"""

from __future__ import annotations

from typing import Any

import txredisapi
from twisted.internet.defer import Deferred

from .address import SentinelAddress
from .link import RedisLink


class SentinelLink(RedisLink):
    """
    A :class:`RedisLink` to whichever node the sentinels name the primary of a service.
    """

    def __init__(self, reactor: Any, address: SentinelAddress, **options: Any) -> None:
        super().__init__(reactor, address, **options)  # type: ignore[arg-type]
        self._sentinel: Any = None

    def _start_factory(self) -> Any:
        address: SentinelAddress = self.address  # type: ignore[assignment]
        if self._sentinel is None:
            self._sentinel = txredisapi.Sentinel(
                list(address.sentinels), replyTimeout=self.deadline
            )
            # How long one discovery may take (txredisapi's default is 10 s).
            self._sentinel.discovery_timeout = self.deadline
        factory = txredisapi.SentinelConnectionFactory(
            sentinel_manager=self._sentinel,
            service_name=address.service,
            is_master=True,
            **self._factory_options(),
        )
        # The endpoint that rediscovers the primary before each attempt: txredisapi's own
        # (private, but the one its Sentinel.master_for uses; tests/storage/test_sentinel.py
        # fails if a txredisapi release drops it).
        return self._started(factory, txredisapi._SentinelEndpoint(factory))

    async def disconnect(self) -> None:
        await super().disconnect()
        sentinel, self._sentinel = self._sentinel, None
        if sentinel is not None:
            closing: Deferred[Any] = sentinel.disconnect()
            closing.addTimeout(self.deadline, self._clock)
            try:
                await closing
            except Exception as error:
                self._log.warn("Sentinel connections did not close cleanly: {error}", error=error)
