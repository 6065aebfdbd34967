"""
Which servers of a site are alive: each heartbeats into Redis, any of them can list them all.

A server behind a load balancer answers ``/stats`` for the whole site (the counts are in
Redis), and says which server it is and how many are alive. Every ``interval`` seconds it
sets its own key with a TTL of ``ttl`` seconds (its id, process, start time) and scores its
id in one sorted set by when that heartbeat runs out; a server that stops cleanly removes
both, one killed is gone from the count ``ttl`` seconds after its last heartbeat. Both keys
share the hash tag ``{f}``: one slot in Redis Cluster, so one ``ZRANGE`` lists them all.

Each heartbeat also reads the list of servers alive, which ``/stats`` reports as it was then
(at most ``interval`` seconds old): the overview asks nothing of Redis, so it answers at once
even while Redis is away. A heartbeat that fails (Redis away) is logged by the link's own
health checks and tried again at the next interval; nothing waits on it.
"""

from __future__ import annotations

import json
import os
import socket
from typing import TYPE_CHECKING, Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from .keys import SERVERS, server_key
from .link import RedisTimeout, RedisUnavailable, gather

if TYPE_CHECKING:
    from .link import Link

#: Seconds between heartbeats.
DEFAULT_INTERVAL = 5.0
#: Seconds a server counts as alive after its last heartbeat.
DEFAULT_TTL = 15.0


def default_server_id(port: str) -> str:
    """
    The host name and the listening endpoint's port, which stay the same across restarts.
    """
    digits = [part for part in port.split(":") if part.isdigit()]
    return f"{socket.gethostname()}:{digits[0] if digits else os.getpid()}"


class Presence:
    """
    This server's heartbeat, and the list of servers alive.

    :param clock: provides ``IReactorTime``.
    :param link: a text (not binary) Redis link.
    :param server_id: this server's name among its site's servers.
    """

    _log = Logger()

    def __init__(
        self,
        clock: Any,
        link: Link,
        server_id: str,
        interval: float = DEFAULT_INTERVAL,
        ttl: float = DEFAULT_TTL,
    ) -> None:
        if not 0 < interval < ttl:
            raise ValueError(f"the heartbeat interval ({interval}) must be below its ttl ({ttl})")
        self._clock = clock
        self._link = link
        self.server_id = server_id
        self.interval = interval
        self.ttl = ttl
        self.started = clock.seconds()
        self.heartbeats = 0
        self._alive: list[str] | None = None
        self._alive_at = float("-inf")
        self._beat: LoopingCall | None = None

    def start(self) -> None:
        """
        Heartbeat now and every ``interval`` seconds.
        """
        beat = LoopingCall(self._heartbeat)
        beat.clock = self._clock
        self._beat = beat
        beat.start(self.interval, now=True).addErrback(
            lambda failure: self._log.failure("heartbeat stopped", failure)
        )

    async def _heartbeat(self) -> None:
        now = self._clock.seconds()
        details = json.dumps(
            {"id": self.server_id, "pid": os.getpid(), "started": self.started, "beat": now}
        )
        try:
            *_, found = await gather(
                [
                    self._link.execute(
                        "SET", server_key(self.server_id), details, "PX", int(self.ttl * 1000)
                    ),
                    self._link.execute("ZADD", SERVERS, now + self.ttl, self.server_id),
                    self._link.execute("ZREMRANGEBYSCORE", SERVERS, "-inf", f"({now}"),
                    self._link.execute("ZRANGEBYSCORE", SERVERS, f"({now}", "+inf"),
                ]
            )
        except (RedisUnavailable, RedisTimeout):
            return  # The link logs outages; the next beat tries again.
        self.heartbeats += 1
        self._alive = sorted(str(item) for item in found)
        self._alive_at = now

    def alive(self) -> list[str] | None:
        """
        The ids of the servers alive at the last heartbeat (this one among them), or ``None``
        if no heartbeat got through for a ``ttl``.
        """
        if self._clock.seconds() - self._alive_at > self.ttl:
            return None
        return self._alive

    async def stop(self) -> None:
        """
        Stop beating and leave the list at once (within one deadline).
        """
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        try:
            await gather(
                [
                    self._link.execute("ZREM", SERVERS, self.server_id),
                    self._link.execute("DEL", server_key(self.server_id)),
                ]
            )
        except (RedisUnavailable, RedisTimeout) as error:
            self._log.warn(
                "could not leave the list of servers ({error}); it lapses in {ttl} s",
                error=str(error),
                ttl=self.ttl,
            )
