"""
Writing marks: coalesced in memory, flushed in the counter writer's rhythm, with its
guarantees.

- A mark is an entry in a set per (event, hour): a user active on 50 pages in a second is one
  entry, and at the flush one ``SETBIT`` per bitmap. Nothing on the caller's path touches Redis.
- A flush resolves the new users' ids (a script call per 500 users not cached here), then
  sets the bits: per bitmap key, scripts on that one key (so every call is one Redis Cluster
  slot) that OR in a segment of the bitmap where ids are dense, or set the offsets packed in
  one argument where they are sparse; and adds the same ids to the day's HyperLogLog (and the
  hour's and ever's, when those bitmaps are kept), 2,000 a call. ``SETBIT``, the OR and
  ``PFADD`` are idempotent: a flush that fails half-way is retried whole, and a mark is never
  counted twice.
- Bounded while Redis is away: at most ``max_pending`` marks wait; beyond them marks are
  dropped, counted in :attr:`MarkWriter.dropped`, and a warning is logged at most once a minute.
- At shutdown, marks that cannot be written go to a spool file of this writer's own
  (``activity-<id>.spool``), replayed at the next start (every ``activity*.spool`` in the
  directory): nothing is lost across a restart of the server or of Redis.

Why not the counter writer's batches: their script increments hashes of one metrica's hash
tag, and bitmapist's keys (which bitmapist must read as they are) have no hash tag, so each
bitmap needs calls of its own; the rhythm, the bounds and the spool are the same.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Hashable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IFlushable
from ..storage.keys import ACTIVITY_EVENTS, USERS_KNOWN, activity_hll_key, activity_key
from ..storage.link import RedisTimeout, RedisUnavailable, gather
from ..storage.writebehind import WriteBehind
from .periods import Period, Scale

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ..storage.link import Link
    from .ids import UserIds

#: Sets the bits of the offsets packed in ARGV[1] (little-endian unsigned 32-bit integers) in
#: the one bitmap of KEYS[1]. Packed, the offsets cost the client one argument, not thousands
#: (txredisapi encodes each argument in Python).
SET_BITS = """
local data = ARGV[1]
for pos = 1, #data, 4 do
  redis.call('SETBIT', KEYS[1], struct.unpack('<I4', data, pos), 1)
end
return #data / 4
"""
#: Adds the user ids packed in ARGV[1] to the one HyperLogLog of KEYS[1] (1,000 a PFADD: Lua's
#: unpack has a stack limit).
ADD_TO_HLL = """
local data = ARGV[1]
local batch = {}
for pos = 1, #data, 4 do
  batch[#batch + 1] = struct.unpack('<I4', data, pos)
  if #batch == 1000 then
    redis.call('PFADD', KEYS[1], unpack(batch))
    batch = {}
  end
end
if #batch > 0 then
  redis.call('PFADD', KEYS[1], unpack(batch))
end
return #data / 4
"""
#: ORs ARGV[2] into the bitmap of KEYS[1] from byte ARGV[1] on: for a dense set of offsets, a
#: segment of the bitmap costs less than its offsets, here and in Redis (one byte per 8 users,
#: not 4 bytes and a SETBIT per user).
OR_BYTES = """
local start = tonumber(ARGV[1])
local incoming = ARGV[2]
local current = redis.call('GETRANGE', KEYS[1], start, start + #incoming - 1)
if #current == 0 then
  redis.call('SETRANGE', KEYS[1], start, incoming)
  return 1
end
local merged = {}
for i = 1, #incoming do
  merged[i] = string.char(bit.bor(string.byte(incoming, i), string.byte(current, i) or 0))
end
redis.call('SETRANGE', KEYS[1], start, table.concat(merged))
return 1
"""
#: The most offsets (or bitmap bytes) a call carries: each call blocks Redis for about a
#: millisecond at most.
CHUNK = 5_000
#: The most ids an ADD_TO_HLL call carries: PFADD costs about 0.6 µs an id in Redis (5,000
#: took 3 to 6 ms, measured with SLOWLOG), so 2,000 keep a call near a millisecond or two.
HLL_CHUNK = 2_000
#: Redis numbers the bits of a byte from the most significant.
_BIT = [0x80 >> bit for bit in range(8)]


def bit_calls(key: str, ordered: list[int]) -> list[tuple[Any, ...]]:
    """
    The script calls that set the sorted offsets ``ordered`` in the bitmap ``key``: a segment
    of the bitmap where the offsets are dense, packed offsets where they are sparse, at most
    :data:`CHUNK` of either a call.
    """
    calls: list[tuple[Any, ...]] = []
    at = 0
    while at < len(ordered):
        first = ordered[at] >> 3
        # As many offsets as fit in CHUNK bytes of bitmap.
        end = at
        while end < len(ordered) and (ordered[end] >> 3) - first < CHUNK:
            end += 1
        if end - at >= CHUNK // 4:  # Denser than packing them: send the segment.
            segment = bytearray((ordered[end - 1] >> 3) - first + 1)
            for offset in ordered[at:end]:
                segment[(offset >> 3) - first] |= _BIT[offset & 7]
            calls.append(("EVAL", OR_BYTES, 1, key, first, bytes(segment)))
            at = end
        else:
            chunk = ordered[at : at + CHUNK]
            calls.append(("EVAL", SET_BITS, 1, key, pack(chunk)))
            at += len(chunk)
    return calls


def pack(offsets: list[int]) -> bytes:
    """
    Offsets as the scripts take them: little-endian unsigned 32-bit integers.
    """
    return struct.pack(f"<{len(offsets)}I", *offsets)


@implementer(IFlushable)
class MarkWriter(WriteBehind):
    """
    Coalesces marks and writes them as bitmaps and HyperLogLogs.

    :param clock: the reactor clock.
    :param link: a binary Redis connection.
    :param ids: the users' dense ids.
    :param scales: the bitmaps each mark lands in (``day``, ``week``, ``month`` and
        ``unique``, "ever", by default; add ``hour``, as bitmapist's ``track_hourly``).
    :param flush_interval: seconds between flushes.
    :param max_pending: the most marks (distinct event, hour and user) kept unwritten.
    :param spool_path: where unwritten marks go at shutdown (``activity.spool`` gives
        ``activity-<writer id>.spool``), and are replayed from.
    """

    _log = Logger()
    noun = "activity marks"
    backlog_full = (
        "activity backlog full ({limit} marks, Redis unreachable?): dropping marks; "
        "{dropped} dropped so far"
    )

    def __init__(
        self,
        clock: IReactorTime,
        link: Link,
        ids: UserIds,
        scales: tuple[Scale, ...] = ("day", "week", "month", "unique"),
        flush_interval: float = 1.0,
        max_pending: int = 1_000_000,
        spool_path: Path | None = None,
    ) -> None:
        for scale in scales:
            if scale not in ("hour", "day", "week", "month", "unique"):
                raise ValueError(f"marks land in hour, day, week, month or unique, not {scale!r}")
        super().__init__(clock, flush_interval, max_pending, spool_path)
        self._link = link
        self.ids = ids
        self.scales = scales
        #: (event, hour since the epoch) to the users marked in it, not yet written.
        self._pending: dict[tuple[str, int], set[Hashable]] = {}
        self._size = 0
        self._in_flight = 0
        self.marks_written = 0
        self.calls_sent = 0

    @property
    def backlog(self) -> int:
        """
        Marks waiting to be written, those being written now included.
        """
        return self._size + self._in_flight

    def add(self, event: str, user: Hashable, when: float) -> None:
        """
        Mark ``user`` for ``event`` at ``when`` (UNIX seconds): a set entry, no I/O.
        """
        key = (event, int(when // 3600))
        users = self._pending.get(key)
        if users is None:
            users = self._pending[key] = set()
        if user in users:
            return
        if self._size + self._in_flight >= self.max_pending:
            self._drop()
            return
        users.add(user)
        self._size += 1

    async def _send(self) -> None:
        if not self._pending:
            self._spools_written()  # A replayed spool that held nothing.
            return
        # What this sending writes; marks made meanwhile go to a fresh pending map.
        writing, self._pending = self._pending, {}
        size, self._size = self._size, 0
        self._in_flight = size
        try:
            await self._write(writing)
        except (RedisUnavailable, RedisTimeout) as error:
            self._in_flight = 0
            self._merge_back(writing)
            self._redis_away(error)
            return
        except Exception:
            self._in_flight = 0
            self._merge_back(writing)
            raise
        self._in_flight = 0
        self.marks_written += size
        self._redis_back(self.backlog)
        self._spools_written()

    def _merge_back(self, writing: dict[tuple[str, int], set[Hashable]]) -> None:
        """
        Put marks that could not be written back in front of the newer ones.
        """
        newer = self._pending
        self._pending = writing
        self._size = sum(len(users) for users in writing.values())
        for key, users in newer.items():
            for user in users:
                self.add(key[0], user, key[1] * 3600)

    async def _write(self, marks: dict[tuple[str, int], set[Hashable]]) -> None:
        every_user = {user for users in marks.values() for user in users}
        ids = await self.ids.resolve(every_user)
        bits: dict[str, set[int]] = {}
        hlls: dict[str, set[int]] = {}
        # HyperLogLogs per day (a week's or a month's estimate counts the union of its days),
        # and per hour and "ever" when those bitmaps are kept too.
        hll_scales: list[Scale] = [s for s in ("hour", "unique") if s in self.scales]
        hll_scales.append("day")
        events = set()
        for (event, hour), users in marks.items():
            events.add(event)
            moment = datetime.fromtimestamp(hour * 3600, UTC)
            offsets = {ids[user] for user in users}
            if self.ids.integers:
                # Ids the application gave itself: the known users (what NOT is relative to)
                # are the ids it marked; assigned ids are recorded by the id script.
                bits.setdefault(USERS_KNOWN, set()).update(offsets)
            for scale in self.scales:
                key = activity_key(event, Period.of(moment, scale).suffix)
                bits.setdefault(key, set()).update(offsets)
            for scale in hll_scales:
                key = activity_hll_key(event, Period.of(moment, scale).suffix)
                hlls.setdefault(key, set()).update(offsets)
        calls: list[Deferred[Any]] = [self._link.execute("SADD", ACTIVITY_EVENTS, *sorted(events))]
        for key, offsets in bits.items():
            for call in bit_calls(key, sorted(offsets)):
                calls.append(self._link.execute(*call))
        for key, offsets in hlls.items():
            ordered = sorted(offsets)
            for at in range(0, len(ordered), HLL_CHUNK):
                packed = pack(ordered[at : at + HLL_CHUNK])
                calls.append(self._link.execute("EVAL", ADD_TO_HLL, 1, key, packed))
        self.calls_sent += len(calls) + 1
        await gather(calls)

    def flush(self) -> Deferred[None]:
        """
        Write everything pending now; what cannot be written goes to the spool file.
        """
        return Deferred.fromCoroutine(self._flush())

    async def _flush(self) -> None:
        await self.send()
        if self._pending:
            # Marks made while a sending was already under way: one more try.
            await self.send()
        if self._pending:
            self._spool()

    def _spool(self) -> None:
        lines = [
            json.dumps([event, hour, [u if isinstance(u, int) else str(u) for u in users]])
            for (event, hour), users in self._pending.items()
        ]
        if self._write_spool(lines, self._size):
            self._pending.clear()
            self._size = 0

    def _replay(self, files: list[Path]) -> None:
        count = 0
        for spooled in files:
            for line in spooled.read_text(encoding="utf-8").splitlines():
                try:
                    event, hour, users = json.loads(line)
                except (ValueError, TypeError):
                    self._log.error(
                        "bad line in activity spool {path}: {line!r}",
                        path=str(spooled),
                        line=line[:200],
                    )
                    continue
                for user in users:
                    self.add(event, user, hour * 3600)
                    count += 1
        self._log.info(
            "replaying {count} spooled activity marks from {files} spool file(s)",
            count=count,
            files=len(files),
        )
