"""
What a stream event looks like on the wire, and the ids that resume a stream.

An event read from Redis becomes, once per process, the bytes every client gets: the data of
Wikimedia EventStreams' events, one JSON object with ``$schema`` and ``meta`` (``stream``,
``dt``, ``id``, ``domain``) beside the publisher's own fields, in an SSE ``message`` event or a
line of newline-delimited JSON.

An event id is what ``Last-Event-ID`` sends back: as EventStreams does for several Kafka
partitions, a JSON array with the position in every stream of the subscription,
``[{"stream": "visits", "id": "1764770000123-0"}, ...]``, each a Redis Stream id (and, for
an event of a batch, its index in it: ``1764770000123-0.17``), so that it stays valid across
restarts of the server and on every server sharing the Redis.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import re
import uuid
from collections.abc import Hashable, Mapping
from datetime import UTC, datetime
from typing import Any

#: An event's place in its stream, comparable: a Redis Stream id (milliseconds, sequence) and
#: the event's index in that entry (an entry of the ``requests`` stream holds a batch).
StreamId = tuple[int, int, int]
#: The largest sequence number: ``(ms - 1, MAX_SEQUENCE, 0)`` is just before anything at ``ms``.
MAX_SEQUENCE = 2**64 - 1
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})(?:\.([0-9]{1,9}))?")
#: The namespace of the events' ``meta.id`` (a UUID derived from stream and id: the same
#: event has the same ``meta.id`` on every server and every replay).
_NAMESPACE = uuid.UUID("6f1c7a52-3f0e-4d7b-9a53-2f6f1d0c9e11")
#: Visitor ids (the visitor cookie's value) have this shape; see :func:`public_user`.
_VISITOR = re.compile(r"[0-9a-f]{32}")
#: Visitors already hashed (a returning visitor is looked up, not hashed again), bounded.
_PSEUDONYMS: dict[str, str] = {}
_PSEUDONYMS_KEPT = 100_000


def parse_stream_id(text: bytes | str) -> StreamId:
    """
    The place an id names: a Redis Stream id (``b"1764770000123-0"``), with the index of
    the event in that entry after a dot for a batch's events (``1764770000123-0.17``).

    :raises ValueError: naming the text, if it is not one.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    found = _STREAM_ID.fullmatch(text)
    if found is None:
        raise ValueError(f"not a stream id: {text!r}")
    ms, sequence = int(found[1]), int(found[2])
    if sequence > MAX_SEQUENCE or ms > MAX_SEQUENCE:
        raise ValueError(f"not a stream id: {text!r}")
    return ms, sequence, int(found[3] or 0)


def format_stream_id(position: StreamId) -> str:
    """
    The text of a place (:func:`parse_stream_id`'s inverse).
    """
    ms, sequence, index = position
    return f"{ms}-{sequence}.{index}" if index else f"{ms}-{sequence}"


def entry_id(position: StreamId) -> str:
    """
    The Redis Stream id of the entry holding the event at ``position``.
    """
    return f"{position[0]}-{position[1]}"


def encode_event_id(positions: Mapping[str, StreamId], streams: tuple[str, ...]) -> bytes:
    """
    The ``id:`` of an event for a subscription to ``streams``: the position in each.
    """
    return json.dumps(
        [{"stream": name, "id": format_stream_id(positions[name])} for name in streams],
        separators=(",", ":"),
    ).encode("ascii")


def parse_event_id(text: str, streams: tuple[str, ...]) -> dict[str, StreamId]:
    """
    The positions a ``Last-Event-ID`` names, for the streams of the subscription (a stream of
    the subscription the id does not name starts at the present).

    :raises ValueError: the header is not an id this server sent.
    """
    try:
        items = json.loads(text)
    except ValueError:
        items = None
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and isinstance(item.get("stream"), str) for item in items
    ):
        raise ValueError(
            f"Last-Event-ID must be an id this server sent (a JSON array of "
            f'{{"stream": ..., "id": ...}}), not {text[:200]!r}'
        )
    positions: dict[str, StreamId] = {}
    for item in items:
        if item["stream"] in streams:
            try:
                positions[item["stream"]] = parse_stream_id(str(item.get("id")))
            except ValueError as error:
                raise ValueError(f"Last-Event-ID: {error}") from None
    return positions


def parse_since(text: str) -> int:
    """
    The milliseconds since the epoch a ``since`` names: an ISO 8601 time (UTC unless it says
    otherwise) or milliseconds since the epoch, as EventStreams takes it.

    :raises ValueError: naming the bad value.
    """
    if text.isdigit() and len(text) <= 16:
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"since must be an ISO 8601 time (2026-12-03T14:00:00Z) or milliseconds since "
            f"the epoch, not {text[:100]!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(int(moment.timestamp() * 1000), 0)


def public_user(user: Hashable) -> Any:
    """
    A user as streams show them: an application's own identity (``request.set_user``) as it
    is; a visitor id, which is the visitor cookie's value and would let whoever reads the
    stream pass for that visitor, as ``v-`` and 16 hex digits of its SHA-1 (the same on every
    server, and what the ``requests`` stream's script computes).
    """
    if isinstance(user, str):
        if len(user) == 32 and _VISITOR.fullmatch(user):
            shown = _PSEUDONYMS.get(user)
            if shown is None:
                if len(_PSEUDONYMS) >= _PSEUDONYMS_KEPT:
                    _PSEUDONYMS.clear()
                shown = _PSEUDONYMS[user] = (
                    "v-" + hashlib.sha1(user.encode("ascii")).hexdigest()[:16]
                )
            return shown
        return user
    if isinstance(user, int | float | bool) or user is None:
        return user
    if isinstance(user, tuple):
        return [public_user(part) for part in user]
    return str(user)


class Entry:
    """
    One event read from a Redis Stream, turned into the bytes clients get once.

    :ivar stream: the stream's name.
    :ivar position: its place in the stream.
    :ivar payload: the event's data, the JSON object every client gets.
    """

    __slots__ = ("_data", "payload", "position", "stream")

    def __init__(
        self,
        stream: str,
        position: StreamId,
        millis: int,
        body: bytes,
        schema: bytes | None,
        domain: str,
    ) -> None:
        self.stream = stream
        self.position = position
        self._data: dict[str, Any] | None = None
        dt = datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds")
        meta = {
            "stream": stream,
            "dt": dt.replace("+00:00", "Z"),
            "id": str(uuid.uuid5(_NAMESPACE, f"{stream}/{format_stream_id(position)}")),
            "domain": domain,
        }
        schema_text = (schema or f"/twisted-sessions/{stream}/1.0.0".encode()).decode(
            "utf-8", "replace"
        )
        head = b'{"$schema":%s,"meta":%s' % (
            json.dumps(schema_text).encode(),
            json.dumps(meta, separators=(",", ":")).encode(),
        )
        # The body is the publisher's JSON object: its fields follow $schema and meta.
        rest = body.strip()[1:]
        self.payload = head + (b"," + rest if rest.strip() != b"}" else b"}")

    @property
    def data(self) -> dict[str, Any]:
        """
        The event's data as a dict (parsed once, for the filters).
        """
        if self._data is None:
            parsed = json.loads(self.payload)
            self._data = parsed if isinstance(parsed, dict) else {}
        return self._data


def entries_of(
    stream: str, position: StreamId, fields: Mapping[bytes, bytes], domain: str
) -> list[Entry]:
    """
    The events of one Redis Stream entry: one, or a batch of requests (``r``, the marshal list
    the writer made of a flush's requests) of which each becomes an event, its JSON made here.

    The entry is the server's own (trusted: whoever writes Redis can change every number
    anyway); what is not a list of request tuples is logged by the caller and skipped.

    :raises ValueError: the entry's batch cannot be read.
    """
    ms, sequence, _ = position
    batch = fields.get(b"r")
    if batch is None:
        try:
            millis = int(fields.get(b"t", b"0"))
        except ValueError:
            millis = ms
        return [Entry(stream, position, millis, fields.get(b"d", b"{}"), fields.get(b"s"), domain)]
    try:
        rows = marshal.loads(batch)
    except (EOFError, ValueError, TypeError) as error:
        raise ValueError(f"a batch of {stream} at {entry_id(position)}: {error}") from None
    if not isinstance(rows, list):
        raise ValueError(f"a batch of {stream} at {entry_id(position)} is not a list")
    entries = []
    for index, row in enumerate(rows):
        if not (isinstance(row, tuple) and len(row) == 7):
            raise ValueError(f"a batch of {stream} at {entry_id(position)}: bad row {index}")
        user, timestamp, method, status, duration, aborted, resource = row
        body = json.dumps(
            {
                "time": round(timestamp, 3),
                "method": method,
                "resource": resource,
                "status": status,
                "duration": round(duration, 6),
                "aborted": aborted,
                "user": public_user(user),
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        entries.append(
            Entry(stream, (ms, sequence, index), int(timestamp * 1000), body, None, domain)
        )
    return entries


def sse_frame(entry: Entry, event_id: bytes) -> bytes:
    """
    The SSE ``message`` event of ``entry`` with the id ``event_id``.
    """
    return b"event: message\nid: " + event_id + b"\ndata: " + entry.payload + b"\n\n"
