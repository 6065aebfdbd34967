"""
The counter writer: kicks summed in memory, written to Redis in few, idempotent batches.

A kick costs one dict update: it is counted once, at its hour, with its raw axis values. At
each flush (every ``flush_interval`` seconds) the pending counts are expanded into every time
bucket and every axis combination, summed per (key, field), and sent as Lua script calls of at
most ``chunk`` increments each. Each call carries a batch id that the script records, with the
same atomicity as the increments, before applying them: a call that timed out (it may or may
not have been applied) is simply sent again, and applied at most once.

While Redis is unreachable nothing is lost up to ``max_pending`` distinct pending counters;
beyond that new kicks are dropped, counted (``dropped``) and logged (at most once a minute).
At shutdown the writer flushes within the caller's deadline; what cannot be written then goes
to a spool file, replayed (idempotently) at the next start.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IFlushable
from ..storage.keys import batch_key, hash_tag
from ..storage.link import RedisTimeout, RedisUnavailable
from ..storage.writebehind import WriteBehind

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ..storage.link import Link


class Expandable(Protocol):
    """
    What the writer counts for (a :class:`twisted_sessions.counters.Metrica`): it keeps raw
    counts per (source, hour, axis values) and asks the source to expand them at each flush.
    """

    #: The hash tag of every key it expands to: one batch holds one tag's writes.
    tag: str

    def expand(
        self,
        rows: Sequence[tuple[int, tuple[Any, ...], int, int]],
        increments: dict[str, dict[str, int]],
        expireats: dict[str, int],
        now: float,
    ) -> int:
        """
        Add the writes of pending counts, each ``(hour, axis values, units, kicks)``, to
        ``increments`` (key -> field -> amount; and their keys' expiry times to
        ``expireats``); how many new (key, field) increments that made.
        """

    def row_size(self, values: tuple[Any, ...]) -> int:
        """
        The most increments one pending count with these axis values expands to.
        """


#: Applies one batch at most once, all or nothing. KEYS: the batch's marker, then every key it
#: writes (so that Redis Cluster can route and check the call). ARGV: the marker's ttl, then
#: four JSON arrays, flat: increments (key index, field, amount as text), expiry times (key
#: index, unix time), first-seen values (key index, score as text, member) and checkpoints
#: (key index, value), where a key index points into KEYS. A checkpoint (a consumed feed's
#: position, see :meth:`CounterWriter.checkpoint`) is set in the same call as the counts it
#: covers: both are applied, or neither.
#:
#: JSON, because txredisapi encodes every argument in Python (about 1 us each: 2.3 s of 15 in
#: a profile of 60,000 ingested events) and Redis's cjson decodes a whole array in C. Amounts
#: travel as text: Lua's numbers are doubles, exact only to 2^53.
#:
#: Redis keeps the writes a script made before an error, so the script first checks that no
#: write can fail (every hash key is a hash or absent, every sorted set a sorted set or absent;
#: each key once) and only then writes; the marker is set last. A batch the check refuses
#: writes nothing, is logged and retried at the next flush, whole.
APPLY_BATCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local increments = cjson.decode(ARGV[2])
local expireats = cjson.decode(ARGV[3])
local zadds = cjson.decode(ARGV[4])
local checkpoints = cjson.decode(ARGV[5])
local checked = {}
local function check(index, kind)
  if checked[index] then return nil end
  checked[index] = true
  local found = redis.call('TYPE', KEYS[index])['ok']
  if found ~= 'none' and found ~= kind then
    local key = KEYS[index]
    return redis.error_reply('counter key ' .. key .. ' is a ' .. found .. ', not a ' .. kind)
  end
end
for i = 1, #increments, 3 do
  local bad = check(increments[i], 'hash')
  if bad then return bad end
end
for i = 1, #zadds, 3 do
  local bad = check(zadds[i], 'zset')
  if bad then return bad end
end
for i = 1, #increments, 3 do
  redis.call('HINCRBY', KEYS[increments[i]], increments[i + 1], increments[i + 2])
end
for i = 1, #expireats, 2 do
  redis.call('EXPIREAT', KEYS[expireats[i]], expireats[i + 1])
end
for i = 1, #zadds, 3 do
  redis.call('ZADD', KEYS[zadds[i]], 'NX', zadds[i + 1], zadds[i + 2])
end
for i = 1, #checkpoints, 2 do
  redis.call('SET', KEYS[checkpoints[i]], checkpoints[i + 1])
end
redis.call('SET', KEYS[1], '1', 'EX', tonumber(ARGV[1]))
return 1
"""


def _json(values: list[Any]) -> str:
    """
    A flat array for the script (``[]`` is an object to cjson: ``{}`` decodes the same).
    """
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False) if values else "{}"


#: How long a batch marker is kept: longer than any retry or spool replay takes.
MARKER_TTL = 7 * 24 * 3600


@attrs.define
class Batch:
    """
    One script call's worth of writes, with the id that makes it idempotent.
    """

    writer_id: str
    number: int
    increments: list[tuple[str, str, int]]
    expireats: dict[str, int] = attrs.field(factory=dict)
    first_seen: list[tuple[str, float, str]] = attrs.field(factory=list)
    #: The hash tag every key of the batch has (one metrica's): the marker has it too.
    tag: str = ""
    #: (key, value) of the checkpoints set with these counts.
    checkpoints: list[tuple[str, str]] = attrs.field(factory=list)

    def arguments(self) -> tuple[list[str], list[Any]]:
        """
        The KEYS and ARGV of :data:`APPLY_BATCH`.
        """
        keys = [batch_key(self.writer_id, self.number, self.tag)]
        index: dict[str, int] = {}

        def at(key: str) -> int:
            found = index.get(key)
            if found is None:
                keys.append(key)
                found = index[key] = len(keys)  # Lua's KEYS count from 1.
            return found

        increments: list[Any] = []
        for key, field, amount in self.increments:
            increments += (at(key), field, str(amount))
        expireats: list[Any] = []
        for key, when in self.expireats.items():
            expireats += (at(key), when)
        zadds: list[Any] = []
        for key, score, member in self.first_seen:
            zadds += (at(key), repr(score), member)
        checkpoints: list[Any] = []
        for key, value in self.checkpoints:
            checkpoints += (at(key), value)
        argv: list[Any] = [MARKER_TTL]
        argv += [_json(part) for part in (increments, expireats, zadds, checkpoints)]
        return keys, argv

    def to_json(self) -> str:
        """
        One spool line.
        """
        return json.dumps(attrs.asdict(self, recurse=True))

    @classmethod
    def from_json(cls, line: str) -> Batch:
        """
        A batch read back from the spool.
        """
        data = json.loads(line)
        return cls(
            data["writer_id"],
            data["number"],
            [tuple(item) for item in data["increments"]],
            data["expireats"],
            [tuple(item) for item in data["first_seen"]],
            data.get("tag", ""),
            [tuple(item) for item in data.get("checkpoints", [])],
        )


@implementer(IFlushable)
class CounterWriter(WriteBehind):
    """
    Writes metrica counts to Redis through ``link``, coalesced and idempotent.

    :param clock: the reactor clock.
    :param link: the Redis connection (every call has a deadline).
    :param flush_interval: seconds between flushes.
    :param max_pending: the most distinct pending counters (raw kicks and expanded increments)
        kept while Redis is away; beyond it kicks are dropped and counted.
    :param chunk: the most increments per script call.
    :param spool_path: where unwritten batches go at shutdown, and are replayed from: each
        writer spools to a file of its own beside it (``counters.spool`` gives
        ``counters-<writer id>.spool``), and replays every such file at its start, so that two
        servers sharing a data directory never overwrite each other's spool. Replaying one
        file twice (two servers starting together) counts nothing twice: the batch ids.
    """

    _log = Logger()
    noun = "counter batches"
    #: Batches sent at once, each of another hash tag: one Redis runs them one after the
    #: other but without a round trip between them; a Redis Cluster runs those of different
    #: primaries at the same time (docs/benchmarks.md, "Many servers").
    in_flight = 8
    backlog_full = (
        "counter backlog full ({limit} counters, Redis unreachable?): dropping kicks; "
        "{dropped} dropped so far"
    )

    def __init__(
        self,
        clock: IReactorTime,
        link: Link,
        flush_interval: float = 1.0,
        max_pending: int = 1_000_000,
        chunk: int = 5_000,
        spool_path: Path | None = None,
    ) -> None:
        super().__init__(clock, flush_interval, max_pending, spool_path)
        self._link = link
        self.chunk = chunk
        self._pending: dict[tuple[Expandable, int, tuple[Any, ...]], list[int]] = {}
        self._first_seen: dict[tuple[str, str], float] = {}
        self._batches: list[Batch] = []
        self._batched_size = 0
        # (tag -> checkpoint key, the value's provider, the value last sealed) per checkpoint.
        self._checkpoints: list[tuple[dict[str, str], Callable[[], str], list[str]]] = []
        self._next_number = 0
        self.batches_written = 0
        self.commands_sent = 0
        self.bytes_sent = 0

    @property
    def backlog(self) -> int:
        """
        Counters waiting to be written: pending kicks plus increments in unsent batches.
        """
        return len(self._pending) + self._batched_size

    def add(self, metrica: Expandable, hour: int, values: tuple[Any, ...], units: int) -> None:
        """
        Count one kick: ``units`` (value x multiplier) at ``hour`` (hours since the epoch).
        """
        key = (metrica, hour, values)
        counts = self._pending.get(key)
        if counts is not None:
            counts[0] += units
            counts[1] += 1
        elif len(self._pending) + self._batched_size < self.max_pending:
            self._pending[key] = [units, 1]
        else:
            self._drop()

    def first_seen(self, zset_key: str, member: str, when: float) -> None:
        """
        Record that a stored axis saw ``member`` at ``when`` (kept if it is the first time).
        """
        self._first_seen.setdefault((zset_key, member), when)

    def checkpoint(self, keys: dict[str, str], value: Callable[[], str]) -> None:
        """
        Set a checkpoint with the counts it covers: at each seal, ``value()`` (called once)
        goes to ``keys[tag]`` in the same script call as the counts of every ``tag`` (a
        batch of its own when the tag has no counts then), whenever it changed since the
        last seal. A tag with a checkpoint is sealed into one call whatever its size, so
        that its counts and its checkpoint are applied together or not at all: after a
        crash, the checkpoint of each tag says exactly which counts Redis has.
        """
        self._checkpoints.append((keys, value, [""]))

    @property
    def replaying(self) -> bool:
        """
        Whether batches of a spool replayed at start are not written yet (their checkpoints
        are not in Redis yet either).
        """
        return bool(self._replayed)

    async def _tick(self) -> None:
        self.seal()
        await self.send()

    def seal(self) -> None:
        """
        Turn the pending kicks into batches: every bucket, every combination, summed.

        A pending count is never split across batches: each batch holds the whole expansion
        (all buckets, all combinations, sum and count) of the counts it carries, so that a day
        never disagrees with the sum of its hours, whichever batches are written.
        """
        checkpoints: dict[str, list[tuple[str, str]]] = {}
        for keys, provider, last in self._checkpoints:
            value = provider()
            if value != last[0]:
                last[0] = value
                for tag, key in keys.items():
                    checkpoints.setdefault(tag, []).append((key, value))
        if not self._pending and not self._first_seen and not checkpoints:
            return
        pending, self._pending = self._pending, {}
        now = self._clock.seconds()
        # One batch holds one hash tag's keys (one metrica's), marker included: its script
        # touches a single Redis Cluster slot.
        increments: dict[str, dict[str, dict[str, int]]] = {}
        expireats: dict[str, dict[str, int]] = {}
        # Per tag, how many (key, field) increments it has: what chunks are cut by.
        sizes: dict[str, int] = {}
        rows: dict[Expandable, list[tuple[int, tuple[Any, ...], int, int]]] = {}
        for (metrica, hour, values), (units, kicks) in pending.items():
            found = rows.get(metrica)
            if found is None:
                found = rows[metrica] = []
            found.append((hour, values, units, kicks))
        for metrica, counts in rows.items():
            tag = metrica.tag
            whole = tag in checkpoints  # One call whatever its size: one group.
            row_sizes = [0] if whole else [metrica.row_size(row[1]) for row in counts]
            start = 0
            while start < len(counts):
                # As many counts as the room left in the batch surely holds (at least one):
                # they are expanded together, summed per bucket first.
                if whole:
                    end = len(counts)
                else:
                    end, estimate = start + 1, row_sizes[start]
                    room = self.chunk - sizes.get(tag, 0)
                    while end < len(counts) and estimate + row_sizes[end] <= room:
                        estimate += row_sizes[end]
                        end += 1
                tag_increments = increments.setdefault(tag, {})
                tag_expireats = expireats.setdefault(tag, {})
                added = metrica.expand(counts[start:end], tag_increments, tag_expireats, now)
                start = end
                sizes[tag] = size = sizes.get(tag, 0) + added
                if size >= self.chunk and not whole:
                    self._add_batch(tag, tag_increments, expireats.pop(tag))
                    del increments[tag], sizes[tag]
        # After expanding: expanding records the years that have counts.
        first_seen, self._first_seen = self._first_seen, {}
        seen: dict[str, list[tuple[str, float, str]]] = {}
        for (key, member), when in first_seen.items():
            seen.setdefault(hash_tag(key), []).append((key, when, member))
        for tag in {**increments, **seen, **checkpoints}:
            self._add_batch(
                tag,
                increments.get(tag, {}),
                expireats.get(tag, {}),
                seen.get(tag),
                checkpoints.get(tag),
            )

    def _add_batch(
        self,
        tag: str,
        increments: dict[str, dict[str, int]],
        expireats: dict[str, int],
        first_seen: list[tuple[str, float, str]] | None = None,
        checkpoints: list[tuple[str, str]] | None = None,
    ) -> None:
        batch = Batch(
            self.writer_id,
            self._next_number,
            [
                (key, field, amount)
                for key, fields in increments.items()
                for field, amount in fields.items()
            ],
            expireats,
            first_seen or [],
            tag,
            checkpoints or [],
        )
        self._next_number += 1
        self._batches.append(batch)
        self._batched_size += len(batch.increments)

    async def _send(self) -> None:
        # The tags of batches the script refused this time: they wait for the next send (with
        # the rest of their tag, in order); every other tag's batches are written meanwhile.
        refused: set[str] = set()
        error: Exception | None = None
        while True:
            # The window: the first batch of each hash tag, up to in_flight of them. A tag's
            # batches go one at a time, in order (a later checkpoint is never overtaken).
            window: list[Batch] = []
            tags: set[str] = set(refused)
            for batch in self._batches:
                if batch.tag not in tags:
                    tags.add(batch.tag)
                    window.append(batch)
                    if len(window) == self.in_flight:
                        break
            if not window:
                break
            calls = []
            for batch in window:
                keys, argv = batch.arguments()
                call = self._link.execute("EVAL", APPLY_BATCH, len(keys), *keys, *argv)
                calls.append((batch, call, sum(len(str(a)) for a in (*keys, *argv))))
            outage: Exception | None = None
            written: set[int] = set()
            for batch, call, size in calls:
                try:
                    await call
                except (RedisUnavailable, RedisTimeout) as failed:
                    outage = outage or failed
                    continue
                except Exception as failed:  # Refused by the script's checks.
                    error = error or failed
                    refused.add(batch.tag)
                    continue
                written.add(id(batch))
                self._batched_size -= len(batch.increments)
                self.batches_written += 1
                self.commands_sent += 1
                self.bytes_sent += size + len(APPLY_BATCH)
            if written:
                self._batches = [b for b in self._batches if id(b) not in written]
                self._redis_back(len(self._batches))
            if outage is not None:
                self._redis_away(outage)
                return
        if error is not None:
            raise error
        self._spools_written()

    def flush(self) -> Deferred[None]:
        """
        Write everything pending now; what cannot be written goes to the spool file.
        """
        return Deferred.fromCoroutine(self._flush())

    async def _flush(self) -> None:
        self.seal()
        await self.send()
        if self._batches:
            self._spool()

    def _spool(self) -> None:
        lines = [batch.to_json() for batch in self._batches]
        if self._write_spool(lines, len(self._batches)):
            self._batches.clear()
            self._batched_size = 0

    def _replay(self, files: list[Path]) -> None:
        batches = [
            Batch.from_json(line)
            for spool in files
            for line in spool.read_text(encoding="utf-8").splitlines()
            if line
        ]
        self._batches[:0] = batches
        self._batched_size += sum(len(b.increments) for b in batches)
        self._log.info(
            "replaying {count} spooled counter batches from {files} spool file(s)",
            count=len(batches),
            files=len(files),
        )
