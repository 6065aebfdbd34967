"""
Every Redis key and hash field of the counters, built here and nowhere else.

Layout (version 1, prefix ``ts1``), for a metrica named N (encoded as ``e(N)``):

- ``ts1:{m:e(N)}:all``, ``...:y2010``, ``...:m2010-02``, ``...:d2010-02-07``,
  ``...:h2010-02-07T13``: one hash per time bucket;
- in each, fields ``v:F`` (sum of values, in units of 1/multiplier) and, for averaged
  metricas, ``n:F`` (number of kicks), where F is the axis combination: the encoded value of
  each axis, or ``*`` for "all", joined by ``,``;
- ``ts1:{m:e(N)}:axis:e(A)``: the set of values seen on stored axis A;
- ``ts1:{m:e(N)}:years``: the set of years that have counts (to iterate all time);
- ``ts1:{m:e(N)}:batch:W:K``: marks batch K of writer W as applied (idempotent retries);
- ``ts1:{m:e(N)}:feed:e(F)``: how far consumed feed F's events are counted in metrica N.

Activity (bitmaps), in bitmapist's own layout so that bitmapist reads what we write, for an
event E (a name checked by :func:`check_event`):

- ``trackist_E_2010-2`` (month), ``trackist_E_W2010-5`` (ISO week), ``trackist_E_2010-2-7``
  (day), ``trackist_E_2010-2-7-13`` (hour), ``trackist_E_u`` (ever): a bit per user id, no
  zero padding, UTC;
- ``ts1:{a:E}:hll:S``: the HyperLogLog of the same bucket (S is the bitmapist suffix);
- ``ts1:{a}:events``: the set of event names marked;
- ``ts1:{u}:ids`` (user to id), ``ts1:{u}:users`` (id to user), ``ts1:{u}:next`` (the next id),
  ``ts1:{u}:known`` (a bit per id ever given: the population that NOT is relative to).

Streams (live events, with history), for a stream S (a name checked by :func:`check_stream`):

- ``ts1:{s}:stream:S``: the Redis Stream of S's events (fields ``t``, the event's time in
  milliseconds, ``d``, its JSON body, and ``s``, its ``$schema`` when the publisher gave one);
- ``ts1:{s}:streams``: the set of stream names ever published, so that a server knows a stream
  another server publishes;
- ``ts1:{s}:batch:W:K``: marks stream batch K of writer W as written.

Every stream key shares the hash tag ``{s}``: one ``XREAD`` reads any of them in Redis Cluster.

``e`` is injective: ``%``, the separators ``: , * / { } =``, white space, control characters and
anything outside printable ASCII become ``%XX`` (UTF-8 bytes), so no user value can collide
with another or reach another metrica's keys. The ``{m:e(N)}`` hash tag keeps one metrica's
keys in one Redis Cluster slot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PREFIX = "ts1"
#: The field part that stands for "every value of this axis".
ALL = "*"
_UNSAFE = re.compile(r"[^!#$&'()+\-.0-9;<>?@A-Z\[\]^_`a-z|~]")


def encode(value: str) -> str:
    """
    The injective, Redis-safe encoding of one user-supplied string.
    """
    if _UNSAFE.search(value) is None:
        return value
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), value)


def decode(text: str) -> str:
    """
    The inverse of :func:`encode`.
    """
    if "%" not in text:
        return text
    raw = bytearray()
    index = 0
    while index < len(text):
        if text[index] == "%":
            raw.append(int(text[index + 1 : index + 3], 16))
            index += 3
        else:
            raw.extend(text[index].encode("utf-8"))
            index += 1
    return raw.decode("utf-8")


def metrica_prefix(name: str) -> str:
    """
    The common prefix (with the hash tag) of every key of metrica ``name``.
    """
    return f"{PREFIX}:{{m:{encode(name)}}}"


def bucket_key(name: str, bucket_code: str) -> str:
    """
    The hash of one time bucket (``all``, ``y2010``, ``m2010-02``, ...) of a metrica.
    """
    return f"{metrica_prefix(name)}:{bucket_code}"


def stored_axis_key(name: str, axis: str) -> str:
    """
    The set of values seen on a stored axis.
    """
    return f"{metrica_prefix(name)}:axis:{encode(axis)}"


def years_key(name: str) -> str:
    """
    The set of years in which a metrica has counts.
    """
    return f"{metrica_prefix(name)}:years"


def feed_checkpoint_key(name: str, feed: str) -> str:
    """
    Where consumed feed ``feed`` records, with metrica ``name``'s counts, how far its events
    are counted in them (see ``CounterWriter.checkpoint``).
    """
    return f"{metrica_prefix(name)}:feed:{encode(feed)}"


def batch_key(writer_id: str, batch_number: int, tag: str = "") -> str:
    """
    The marker that batch ``batch_number`` of writer ``writer_id`` was applied.

    :param tag: the hash tag (``{m:name}``) of every key the batch writes: the marker shares
        it, so that a batch's script touches one Redis Cluster slot. Batches spooled by 0.2
        have none.
    """
    where = f"{tag}:" if tag else ""
    return f"{PREFIX}:{where}batch:{encode(writer_id)}:{batch_number}"


def hash_tag(key: str) -> str:
    """
    The hash tag of a key (``{m:name}``, braces included), or ``""``: what Redis Cluster
    hashes to pick the key's slot.
    """
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start : end + 1] if start != -1 and end > start + 1 else ""


def combination_field(parts: Sequence[str]) -> str:
    """
    The field name of one axis combination: already-encoded parts (or :data:`ALL`).
    """
    return ",".join(parts)


def value_field(combination: str) -> str:
    """
    The field holding the sum of values of a combination.
    """
    return f"v:{combination}"


def count_field(combination: str) -> str:
    """
    The field holding the number of kicks of a combination (averaged metricas).
    """
    return f"n:{combination}"


#: What an activity event name may be: bitmapist puts it in a key as it is.
EVENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_.\-]{0,99}")


def check_event(event: str) -> str:
    """
    ``event`` if it may name an activity event: letters, digits, ``: _ . -``, at most 100.

    :raises ValueError: naming the bad value.
    """
    if not isinstance(event, str) or not EVENT_NAME.fullmatch(event):
        raise ValueError(
            f"an activity event is 1 to 100 letters, digits or ': _ . -' (starting with a "
            f"letter or digit), not {event!r}"
        )
    return event


def activity_key(event: str, suffix: str) -> str:
    """
    bitmapist's key of ``event``'s bitmap for a period (``2010-2``, ``W2010-5``, ``u``...).
    """
    return f"trackist_{event}_{suffix}"


def activity_hll_key(event: str, suffix: str) -> str:
    """
    The HyperLogLog of the same users as :func:`activity_key`.
    """
    return f"{PREFIX}:{{a:{event}}}:hll:{suffix}"


#: The set of event names marked.
ACTIVITY_EVENTS = f"{PREFIX}:{{a}}:events"
#: The dense user ids: user to id, id to user, the next id, and the bitmap of ids given.
USER_IDS = f"{PREFIX}:{{u}}:ids"
USER_NAMES = f"{PREFIX}:{{u}}:users"
USER_NEXT = f"{PREFIX}:{{u}}:next"
USERS_KNOWN = f"{PREFIX}:{{u}}:known"


#: What a stream name may be: it goes into a key and a URL path as it is.
STREAM_NAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")
#: The hash tag of every stream key.
STREAM_TAG = "{s}"
#: The set of stream names ever published.
STREAM_NAMES = f"{PREFIX}:{STREAM_TAG}:streams"


def check_stream(name: str) -> str:
    """
    ``name`` if it may name a stream: 1 to 64 lowercase letters, digits or ``_ . -``.

    :raises ValueError: naming the bad value.
    """
    if not isinstance(name, str) or not STREAM_NAME.fullmatch(name):
        raise ValueError(
            f"a stream name is 1 to 64 lowercase letters, digits or '_ . -' (starting with a "
            f"letter or digit), not {name!r}"
        )
    return name


def stream_key(name: str) -> str:
    """
    The Redis Stream of the stream ``name`` (checked by :func:`check_stream`).
    """
    return f"{PREFIX}:{STREAM_TAG}:stream:{name}"


#: The servers of one site (see :mod:`twisted_sessions.storage.presence`): a sorted set of
#: server ids scored by when their last heartbeat runs out, and one key per server, with a TTL,
#: that says who it is.
SERVERS = f"{PREFIX}:{{f}}:servers"


def server_key(server_id: str) -> str:
    """
    The heartbeat key of one server (its details; gone a TTL after its last heartbeat).
    """
    return f"{PREFIX}:{{f}}:server:{encode(server_id)}"
