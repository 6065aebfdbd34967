"""
Writing stream events to Redis Streams: behind the publishers, in the writers' rhythm and with
their guarantees.

- Publishing is an append to a list; every ``flush_interval`` (100 ms by default: it is most of
  the publish-to-receipt latency) the events go out in script calls of at most
  :data:`CHUNK` events, each one ``XADD`` per event, the trimming of each stream to its history
  (an age and a length, both approximate, as ``XTRIM ... ~`` is), and a marker that makes a
  retried call a no-op: an event is never written twice, even when a reply was lost.
- Request events (the ``requests`` stream, one per tracked request) cost the request path an
  append and nothing else: the flush hands a batch of requests' fields to Redis as one
  ``marshal`` string, kept as one stream entry; readers make each event's JSON (see
  :data:`WRITE_EVENTS`).
- Bounded while Redis is away: at most ``max_pending`` events wait, beyond them events are
  dropped, counted in :attr:`StreamWriter.dropped` and logged at most once a minute.
- At shutdown, what cannot be written goes to the writer's own spool file
  (``streams-<id>.spool``), replayed (markers included, so still exactly once) at the next
  start.
"""

from __future__ import annotations

import base64
import json
import marshal
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IFlushable
from ..storage.keys import STREAM_NAMES, STREAM_TAG, batch_key, stream_key
from ..storage.link import RedisTimeout, RedisUnavailable
from ..storage.writebehind import WriteBehind

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ..events import RequestEvent
    from ..storage.link import Link

#: The most events a script call writes: about 5 µs each in Redis, so a call blocks Redis for
#: a few milliseconds at most.
CHUNK = 1_000
#: Seconds a written batch's marker is kept (a spool replayed later than this could repeat it).
MARKER_TTL = 30 * 86_400

#: The fields of a RequestEvent the ``requests`` stream shows, in the order its readers take
#: them (:func:`~.frames.entries_of`): user, timestamp, method, status, duration, aborted,
#: resource. (The path may carry
#: personal data, the session key is an id: neither leaves the process.)
REQUEST_FIELDS = itemgetter(0, 1, 2, 4, 5, 7, 8)

#: Writes a batch of events to Redis Streams, once.
#:
#: KEYS: the batch's marker, the set of stream names, the ``requests`` stream, then the other
#: streams of the batch. ARGV: the marker's TTL, the oldest stream id kept (``MINID``), the
#: most events kept per stream (``MAXLEN``), the events (a marshal list of (key index, time in
#: ms, JSON body, $schema or "") tuples, one ``XADD`` each), the request events (a marshal list
#: of :data:`REQUEST_FIELDS` tuples, written whole as one entry: ``t`` the first one's time,
#: ``n`` how many, ``r`` the list), the first one's time and their number, then the names of
#: the streams written.
#:
#: Why marshal: ``json.dumps`` of a request's fields costs 3.6 µs in the server (float to text
#: is slow), ``marshal.dumps`` 0.5 µs (binary floats, strings copied), and the request path has
#: no more to spare (docs/benchmarks.md). Why one entry for a flush's requests: an ``XADD`` and
#: its JSON per request cost Redis about 10 µs each, on the same cores as the server; as one
#: entry, a request costs Redis its bytes, and its JSON is made by the readers, once per
#: process, only where clients read the stream (:func:`~.frames.entries_of`). The script reads
#: the subset of marshal (format 4) that tuples of str, int, float, bool and None make, for
#: the other streams' events, and fails loudly on anything else.
WRITE_EVENTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local function reader(data)
  local pos = 1
  local refs = {}
  local read
  read = function()
    local code = string.byte(data, pos)
    pos = pos + 1
    local flagged = code >= 128
    if flagged then code = code - 128 end
    local c = string.char(code)
    local value
    if c == 'N' then value = cjson.null
    elseif c == 'T' then value = true
    elseif c == 'F' then value = false
    elseif c == 'i' then value, pos = struct.unpack('<i4', data, pos)
    elseif c == 'g' then value, pos = struct.unpack('<d', data, pos)
    elseif c == 'z' or c == 'Z' then
      local n = string.byte(data, pos)
      value = string.sub(data, pos + 1, pos + n)
      pos = pos + 1 + n
    elseif c == 'a' or c == 'A' or c == 'u' or c == 't' or c == 's' then
      local n
      n, pos = struct.unpack('<i4', data, pos)
      value = string.sub(data, pos, pos + n - 1)
      pos = pos + n
    elseif c == ')' or c == '(' or c == '[' then
      local n
      if c == ')' then
        n = string.byte(data, pos)
        pos = pos + 1
      else
        n, pos = struct.unpack('<i4', data, pos)
      end
      value = {}
      if flagged then
        refs[#refs + 1] = value
        flagged = false
      end
      for k = 1, n do value[k] = read() end
    elseif c == 'r' then
      local n
      n, pos = struct.unpack('<i4', data, pos)
      value = refs[n + 1]
    elseif c == 'l' then
      local n
      n, pos = struct.unpack('<i4', data, pos)
      value = 0
      local scale = 1
      for _ = 1, math.abs(n) do
        local digit
        digit, pos = struct.unpack('<I2', data, pos)
        value = value + digit * scale
        scale = scale * 32768
      end
      if n < 0 then value = -value end
    else
      error('stream batch: unexpected marshal code ' .. c)
    end
    if flagged then refs[#refs + 1] = value end
    return value
  end
  return read
end
local written = 0
local function read_all(data)
  if data == '' then return {} end
  return reader(data)()
end
for _, event in ipairs(read_all(ARGV[4])) do
  local fields = {'t', string.format('%d', event[2]), 'd', event[3]}
  if event[4] ~= '' then
    fields[5] = 's'
    fields[6] = event[4]
  end
  redis.call('XADD', KEYS[event[1]], '*', unpack(fields))
  written = written + 1
end
local requests = tonumber(ARGV[7])
if requests > 0 then
  redis.call('XADD', KEYS[3], '*', 't', ARGV[6], 'n', ARGV[7], 'r', ARGV[5])
  written = written + requests
end
for k = 3, #KEYS do
  if ARGV[2] ~= '0' then
    redis.call('XTRIM', KEYS[k], 'MINID', '~', ARGV[2])
  end
  local most = tonumber(ARGV[3])
  if k == 3 and requests > 0 then
    -- An entry of the requests stream holds a batch: keep about MAXLEN requests.
    most = math.max(math.floor(most / requests), 1)
  end
  redis.call('XTRIM', KEYS[k], 'MAXLEN', '~', most)
end
if #ARGV > 7 then
  redis.call('SADD', KEYS[2], unpack(ARGV, 8))
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return written
"""


class Batch:
    """
    One script call's events, with the marker that makes it happen once.
    """

    __slots__ = ("count", "events", "marker", "names", "request_count", "requests", "requests_at")

    def __init__(
        self,
        marker: str,
        names: list[str],
        events: bytes,
        requests: bytes,
        count: int,
        request_count: int,
        requests_at: int,
    ) -> None:
        self.marker = marker
        #: The streams written, ``requests`` first (KEYS[3]), whether it has events or not.
        self.names = names
        self.events = events
        self.requests = requests
        self.count = count
        #: How many request events ``requests`` holds, and the first one's time (ms).
        self.request_count = request_count
        self.requests_at = requests_at

    def call(self, min_id: str, max_length: int) -> tuple[Any, ...]:
        """
        The ``EVAL`` of :data:`WRITE_EVENTS` for this batch.
        """
        keys = [self.marker, STREAM_NAMES, *(stream_key(name) for name in self.names)]
        written = [name for name in self.names if name != "requests"]
        if self.requests:
            written.append("requests")
        argv = [
            MARKER_TTL,
            min_id,
            max_length,
            self.events,
            self.requests,
            self.requests_at,
            self.request_count,
            *written,
        ]
        return ("EVAL", WRITE_EVENTS, len(keys), *keys, *argv)

    def to_line(self) -> str:
        """
        The batch as a spool line.
        """
        return json.dumps(
            {
                "marker": self.marker,
                "names": self.names,
                "events": base64.b64encode(self.events).decode("ascii"),
                "requests": base64.b64encode(self.requests).decode("ascii"),
                "count": self.count,
                "request_count": self.request_count,
                "requests_at": self.requests_at,
            }
        )

    @classmethod
    def from_line(cls, line: str) -> Batch:
        """
        A batch from a spool line (:meth:`to_line`).

        :raises ValueError: the line is not one.
        """
        try:
            fields = json.loads(line)
            return cls(
                str(fields["marker"]),
                [str(name) for name in fields["names"]],
                base64.b64decode(fields["events"]),
                base64.b64decode(fields["requests"]),
                int(fields["count"]),
                int(fields["request_count"]),
                int(fields["requests_at"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a stream spool line: {error}") from None


@implementer(IFlushable)
class StreamWriter(WriteBehind):
    """
    Writes published events to Redis Streams, in batches, once each.

    :param clock: the reactor clock.
    :param link: the Redis connection (text).
    :param history: seconds of events each stream keeps (0: no age limit).
    :param max_length: the most events each stream keeps.
    :param flush_interval: seconds between flushes.
    :param max_pending: the most events kept unwritten.
    :param spool_path: where unwritten events go at shutdown (``streams.spool`` gives
        ``streams-<writer id>.spool``), and are replayed from.
    """

    _log = Logger()
    noun = "stream events"
    backlog_full = (
        "stream backlog full ({limit} events, Redis unreachable?): dropping events; "
        "{dropped} dropped so far"
    )

    def __init__(
        self,
        clock: IReactorTime,
        link: Link,
        history: float = 7 * 86_400,
        max_length: int = 100_000,
        flush_interval: float = 0.1,
        max_pending: int = 100_000,
        spool_path: Path | None = None,
    ) -> None:
        if history < 0:
            raise ValueError(f"history must be a number of seconds, not {history!r}")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive integer, not {max_length!r}")
        super().__init__(clock, flush_interval, max_pending, spool_path)
        self._link = link
        self.history = history
        self.max_length = max_length
        #: Events published and not yet batched: (stream, time in ms, body, $schema or "").
        self._events: list[tuple[str, int, str, str]] = []
        #: Request events not yet batched.
        self.requests: list[RequestEvent] = []
        self._batches: list[Batch] = []
        self._number = 0
        self._in_batches = 0
        self.events_written = 0

    @property
    def backlog(self) -> int:
        """
        Events waiting to be written, those being written now included.
        """
        return len(self._events) + len(self.requests) + self._in_batches

    def add(self, stream: str, when: float, body: str, schema: str = "") -> None:
        """
        Queue one event (its body is a JSON object's text) of ``stream`` at ``when`` (UNIX
        seconds): no I/O.
        """
        if self.backlog >= self.max_pending:
            self._drop()
            return
        self._events.append((stream, int(when * 1000), body, schema))

    def add_request(self, event: RequestEvent) -> None:
        """
        Queue one request event for the ``requests`` stream, within the bound. (The server's
        Site calls :attr:`requests`' own ``append`` instead, the cheapest call there is, and
        the bound is then kept at the next flush, at most 100 ms later.)
        """
        if self.backlog >= self.max_pending:
            self._drop()
            return
        self.requests.append(event)

    def _batch(self) -> None:
        """
        Move what is pending into batches of at most :data:`CHUNK` events.
        """
        events, self._events = self._events, []
        # The same list object stays: the Site calls its append (see Streams).
        requests = self.requests[:]
        self.requests.clear()
        room = self.max_pending - len(events) - self._in_batches
        if len(requests) > room:
            # Redis away for long: the newest beyond the bound are dropped, and counted.
            self._drop(len(requests) - max(room, 0))
            requests = requests[: max(room, 0)]
        for at in range(0, max(len(events), len(requests)), CHUNK):
            some = events[at : at + CHUNK]
            names = ["requests"]
            index: dict[str, int] = {}
            rows = []
            for stream, when, body, schema in some:
                found = index.get(stream)
                if found is None:
                    names.append(stream)
                    # KEYS: marker, names, requests, then these (Lua counts from 1).
                    found = index[stream] = len(names) + 2
                rows.append((found, when, body, schema))
            requested = requests[at : at + CHUNK]
            self._number += 1
            self._batches.append(
                Batch(
                    batch_key(self.writer_id, self._number, STREAM_TAG),
                    names,
                    marshal.dumps(rows),
                    marshal.dumps(list(map(REQUEST_FIELDS, requested))) if requested else b"",
                    len(some) + len(requested),
                    len(requested),
                    int(requested[0].timestamp * 1000) if requested else 0,
                )
            )
            self._in_batches += len(some) + len(requested)

    async def _send(self) -> None:
        if self._events or self.requests:
            self._batch()
        if not self._batches:
            self._spools_written()  # A replayed spool that held nothing.
            return
        batches = list(self._batches)
        min_id = "0"
        if self.history:
            min_id = str(int((self._clock.seconds() - self.history) * 1000))
        calls = [self._link.execute(*batch.call(min_id, self.max_length)) for batch in batches]
        results = await _settled(calls)
        error: Exception | None = None
        for batch, result in zip(batches, results, strict=True):
            if isinstance(result, (RedisUnavailable, RedisTimeout)):
                error = result
                continue
            self._batches.remove(batch)
            self._in_batches -= batch.count
            if isinstance(result, Exception):
                # Redis refused the script (a stream key of another type?): retrying cannot
                # help, and keeping it would hold every later event back.
                self.dropped += batch.count
                self._log.error(
                    "Redis refused {count} stream events, which are dropped: {error}",
                    count=batch.count,
                    error=str(result),
                )
                continue
            self.events_written += batch.count
        if error is not None:
            self._redis_away(error)
            return
        self._redis_back(self.backlog)
        self._spools_written()

    def flush(self) -> Deferred[None]:
        """
        Write everything pending now; what cannot be written goes to the spool file.
        """
        return Deferred.fromCoroutine(self._flush())

    async def _flush(self) -> None:
        await self.send()
        if self._events or self.requests or self._batches:
            await self.send()
        if self._events or self.requests:
            self._batch()
        if self._batches:
            lines = [batch.to_line() for batch in self._batches]
            if self._write_spool(lines, self._in_batches):
                self._batches.clear()
                self._in_batches = 0

    def _replay(self, files: list[Path]) -> None:
        count = 0
        for spooled in files:
            for line in spooled.read_text(encoding="utf-8").splitlines():
                try:
                    batch = Batch.from_line(line)
                except ValueError:
                    self._log.error(
                        "bad line in stream spool {path}: {line!r}",
                        path=str(spooled),
                        line=line[:200],
                    )
                    continue
                self._batches.append(batch)
                self._in_batches += batch.count
                count += batch.count
        self._log.info(
            "replaying {count} spooled stream events from {files} spool file(s)",
            count=count,
            files=len(files),
        )


async def _settled(calls: list[Deferred[Any]]) -> list[Any]:
    """
    Each call's result, or the exception it failed with (``storage.gather`` stops at the first
    failure; here every batch learns its own fate).
    """
    results: list[Any] = []
    for call in calls:
        try:
            results.append(await call)
        except Exception as error:
            results.append(error)
    return results
