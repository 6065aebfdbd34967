"""
Redis Cluster from Twisted: a slot-aware router over our own links (one per primary).

txredisapi has no cluster client (its issue #125, open since 2018; its sharded connections are
broken on Python 3), and redis-py's cluster client runs only under the asyncio reactor. This
router is small because the links do the hard part (lazy connections, deadlines, outages):

- the topology comes from ``CLUSTER SLOTS``, asked of any node that answers;
- a key's slot is CRC16 (XMODEM) of the key, or of its hash tag: the part between the first
  ``{`` and the first ``}`` after it, when that part is not empty;
- ``MOVED slot host:port``: the slot's owner is updated at once, the whole map is refreshed in
  the background, and the command is sent once more, to the new owner;
- ``ASK slot host:port`` (a slot being migrated, this key already moved): ``ASKING`` and the
  command are sent back to back on the target's link (one connection keeps their order);
- ``TRYAGAIN`` and ``CLUSTERDOWN``: tried again after 50, 100, 200... ms, within the deadline;
- every command keeps its link's deadline, and the whole of one call the router's;
- a node that cannot be reached (a primary killed) fails the command with ``RedisUnavailable``,
  as one server's outage does, and starts a refresh: once a replica is promoted, the next
  try goes to it.

:class:`ClusterLink` puts the router behind the same :class:`~.link.Link` face as one server's
link, for ``--redis redis+cluster://``: the writers keep every batch within one slot (their
keys share a hash tag, see :mod:`.keys`), so nothing else changes for them.

Why not redis-py's cluster client: it runs only under the asyncio reactor, and a measurement
found it erroring past 100 commands in flight per node; a flush sends more than that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from .address import ClusterAddress, RedisAddress
from .link import (
    DEFAULT_HEALTH_INTERVAL,
    RedisLink,
    RedisTimeout,
    RedisUnavailable,
    note_health,
)

SLOTS = 16384


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _table()


def crc16(data: bytes) -> int:
    """
    CRC16-CCITT (XMODEM), as Redis Cluster computes it.
    """
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ byte) & 0xFF]
    return crc


def key_slot(key: str | bytes) -> int:
    """
    The hash slot of ``key``, with the hash tag rule.
    """
    raw = key.encode("utf-8") if isinstance(key, str) else key
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return crc16(raw) % SLOTS


#: Commands that name no key: any primary answers them.
KEYLESS = frozenset({"PING", "INFO", "TIME", "ECHO", "SCRIPT", "CLUSTER", "ROLE", "DBSIZE"})


def command_key(command: Sequence[Any]) -> Any:
    """
    The key a command is routed by: ``EVAL``/``EVALSHA``'s first key, ``XREAD``'s first
    stream, else its first argument.

    :raises ValueError: a command without a key (route those with ``key=``).
    """
    name = str(command[0]).upper()
    if name in ("XREAD", "XREADGROUP"):
        for index, word in enumerate(command):
            if str(word).upper() == "STREAMS" and index + 1 < len(command):
                return command[index + 1]
        raise ValueError(f"{name} without STREAMS cannot be routed")
    if name in ("EVAL", "EVALSHA"):
        if int(command[2]) < 1:
            raise ValueError(f"{name} without keys cannot be routed: give key=")
        return command[3]
    if len(command) < 2:
        raise ValueError(f"{name} has no key to route by: give key=")
    return command[1]


class ClusterError(RedisUnavailable):
    """
    The cluster could not take a command: redirected too often, down past the deadline, or a
    slot nobody owns. An outage like any other to the writers: they keep the work and retry.
    """


class ClusterRouter:
    """
    Sends each command to the primary that owns its key's slot.

    :param reactor: network and time.
    :param seeds: nodes to learn the topology from (any of them, or all).
    :param deadline: seconds a command may take, redirections and retries included.
    :param binary: links whose replies stay bytes.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        seeds: Sequence[RedisAddress],
        deadline: float = 2.0,
        binary: bool = False,
        password: str | None = None,
    ) -> None:
        if not seeds:
            raise ValueError("a cluster needs at least one seed node")
        self._reactor = reactor
        self.seeds = list(seeds)
        self.deadline = deadline
        self.binary = binary
        self._password = password
        self._links: dict[tuple[str, int], RedisLink] = {}
        #: The owner (host, port) of each slot, once known.
        self.owners: list[tuple[str, int] | None] = [None] * SLOTS
        self._waiters: list[Deferred[None]] = []
        self._last_refresh = float("-inf")
        self._primaries: list[tuple[str, int]] | None = None
        self.redirections = 0

    def link(self, host: str, port: int) -> RedisLink:
        """
        The link to node ``host:port`` (made, and connected, the first time).
        """
        found = self._links.get((host, port))
        if found is None:
            address = RedisAddress(host=host, port=port, password=self._password)
            found = RedisLink(self._reactor, address, deadline=self.deadline, binary=self.binary)
            found.connect()
            self._links[(host, port)] = found
        return found

    def refresh(self) -> Deferred[None]:
        """
        Learn which primary owns which slots: one refresh at a time, which every caller
        meanwhile waits for (and hears the failure of).
        """
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        if len(self._waiters) == 1:
            Deferred.fromCoroutine(self._refresh()).addBoth(self._refreshed)
        return waiter

    def _refreshed(self, result: Any) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(None)

    async def _refresh(self) -> None:
        candidates = [(a.host or "127.0.0.1", a.port) for a in self.seeds]
        candidates += [node for node in self._links if node not in candidates]
        problems = []
        for host, port in candidates:
            try:
                reply = await self.link(host, port).execute("CLUSTER", "SLOTS")
            except Exception as error:
                problems.append(f"{host}:{port}: {error}")
                continue
            for first, last, primary, *_ in reply:
                owner_host = primary[0].decode() if isinstance(primary[0], bytes) else primary[0]
                owner = (owner_host or host, int(primary[1]))
                for slot in range(int(first), int(last) + 1):
                    self.owners[slot] = owner
            self._primaries = None
            return
        raise RedisUnavailable(f"no cluster node answered CLUSTER SLOTS: {'; '.join(problems)}")

    def execute(self, *command: Any, key: Any = None) -> Deferred[Any]:
        """
        Send ``command`` to the owner of its key's slot (``key``, or the command's own key).
        """
        slot = key_slot(str(command_key(command) if key is None else key))
        return Deferred.fromCoroutine(self._execute(slot, command))

    async def _execute(self, slot: int, command: tuple[Any, ...]) -> Any:
        clock = self._reactor
        started = clock.seconds()
        owner = self.owners[slot]
        if owner is None:
            await self.refresh()
            owner = self.owners[slot]
            if owner is None:
                raise ClusterError(f"no node owns slot {slot} (is the cluster set up?)")
        asking = False
        delay = 0.05
        for _ in range(16):
            link = self.link(*owner)
            try:
                if asking:
                    # Back to back on one connection: ASKING holds for the next command only.
                    first, reply = link.execute("ASKING"), link.execute(*command)
                    await first
                    return await reply
                return await link.execute(*command)
            except (RedisUnavailable, RedisTimeout):
                # A dead primary (its replica may be taking over): learn the new map.
                self._refresh_soon()
                raise
            except Exception as error:
                message = str(error)
                kind = message.split(" ", 1)[0]
                if kind in ("MOVED", "ASK"):
                    self.redirections += 1
                    _, _, where = message.split(" ")
                    host, _, port = where.rpartition(":")
                    owner = (host, int(port))
                    asking = kind == "ASK"
                    if not asking:
                        self.owners[slot] = owner
                        self._primaries = None
                        self._refresh_soon()
                    continue
                if kind in ("TRYAGAIN", "CLUSTERDOWN"):
                    if clock.seconds() - started + delay > self.deadline:
                        raise ClusterError(f"{message} past the deadline") from None
                    await deferLater(self._reactor, delay, lambda: None)
                    delay *= 2
                    asking = False
                    continue
                raise
        raise ClusterError(f"slot {slot}: redirected 16 times, the cluster does not settle")

    def _refresh_soon(self) -> None:
        """
        Refresh the map in the background, at most once a second (a refresh under way
        serves every caller).
        """
        now = self._reactor.seconds()
        if self._waiters or now - self._last_refresh < 1.0:
            return
        self._last_refresh = now
        self.refresh().addErrback(
            lambda failure: self._log.warn(
                "cluster topology refresh failed: {error}", error=failure.getErrorMessage()
            )
        )

    def primaries(self) -> list[tuple[str, int]]:
        """
        The primaries that own slots now (computed once per change of the map: the landing
        page asks on every request whether Redis is connected).
        """
        if self._primaries is None:
            self._primaries = sorted({owner for owner in self.owners if owner is not None})
        return self._primaries

    async def disconnect(self) -> None:
        """
        Close every link.
        """
        for link in list(self._links.values()):
            await link.disconnect()


class ClusterLink:
    """
    A Redis Cluster behind the :class:`~.link.Link` face: commands go to the primary that
    owns their key's slot; ``PING`` and other keyless commands to any primary.

    :param reactor: network and time.
    :param address: the cluster's seed nodes.
    :param deadline: seconds a command may take, redirections included.
    :param health_interval: seconds between the checks that refresh the map and ping every
        primary.
    :param binary: replies stay bytes.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        address: ClusterAddress,
        deadline: float = 2.0,
        health_interval: float = DEFAULT_HEALTH_INTERVAL,
        binary: bool = False,
    ) -> None:
        if not deadline > 0:
            raise ValueError(f"deadline must be positive, not {deadline!r}")
        self._reactor = reactor
        self.address = address
        self.deadline = deadline
        self.binary = binary
        self.reachable: bool | None = None
        self._health_interval = health_interval
        self._health: LoopingCall | None = None
        self.router = ClusterRouter(
            reactor, address.seeds, deadline=deadline, binary=binary, password=address.password
        )

    @property
    def connected(self) -> bool:
        """
        The map is known and every primary in it has a live connection.
        """
        primaries = self.router.primaries()
        return bool(primaries) and all(self.router.link(*node).connected for node in primaries)

    def connect(self) -> None:
        """
        Learn the map and connect to the primaries, in the background; check them every
        ``health_interval``.
        """
        if self._health is not None:
            return
        self._log.info(
            "Redis at {where}: connecting in the background", where=self.address.describe()
        )
        health = LoopingCall(lambda: Deferred.fromCoroutine(self._check_health()))
        health.clock = self._reactor
        self._health = health
        health.start(self._health_interval, now=True).addErrback(
            lambda failure: self._log.failure("cluster health check stopped", failure)
        )

    def execute(self, *command: Any) -> Deferred[Any]:
        """
        Send ``command`` to the primary of its key's slot (see :func:`command_key`).
        """
        if str(command[0]).upper() in KEYLESS:
            primaries = self.router.primaries()
            if not primaries:
                return Deferred.fromCoroutine(self._keyless(command))
            return self.router.link(*primaries[0]).execute(*command)
        return self.router.execute(*command)

    async def _keyless(self, command: tuple[Any, ...]) -> Any:
        await self.router.refresh()
        primaries = self.router.primaries()
        if not primaries:
            raise ClusterError(f"no node of {self.address.describe()} owns any slot")
        return await self.router.link(*primaries[0]).execute(*command)

    def ping(self) -> Deferred[float]:
        """
        The slowest primary's PING round trip, in seconds.
        """

        async def slowest() -> float:
            if not self.router.primaries():
                await self.router.refresh()
            times = [await self.router.link(*node).ping() for node in self.router.primaries()]
            return max(times, default=0.0)

        return Deferred.fromCoroutine(slowest())

    async def _check_health(self) -> None:
        try:
            await self.router.refresh()
            await self.ping()
        except Exception as error:
            # Any primary unreachable is an outage: the writes of its slots wait.
            self.reachable = note_health(self._log, self.address.describe(), self.reachable, error)
        else:
            count = len(self.router.primaries())
            self.reachable = note_health(
                self._log, self.address.describe(), self.reachable, None, f": {count} primaries"
            )

    async def disconnect(self) -> None:
        """
        Stop the checks and close every node's link.
        """
        if self._health is not None and self._health.running:
            self._health.stop()
        self._health = None
        await self.router.disconnect()
