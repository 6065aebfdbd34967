"""
Users to dense bit offsets.

bitmapist needs user ids that are integers below 2^32, and a bitmap costs one bit per id up
to the largest one: a visitor id of 32 hex characters cannot be an offset. Each user (any
string) gets the next integer, assigned atomically in Redis by one script for a whole flush's
new users, so that a bitmap costs about one bit per known user whoever assigned the ids, and
several servers on one Redis agree. The ids are cached in a bounded map in the process.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..storage.keys import USER_IDS, USER_NAMES, USER_NEXT, USERS_KNOWN
from ..storage.link import gather

if TYPE_CHECKING:
    from ..storage.link import Link

#: The largest offset bitmapist (and Redis) take: 2^32 - 1.
MAX_ID = 2**32 - 1

#: Gives each new user the next id; an already known user keeps its own. KEYS: user to id, id
#: to user, the next id, the bitmap of ids given (one hash tag: one Cluster slot). ARGV[1]:
#: the distinct users, each as a little-endian 32-bit length and its UTF-8 bytes (one
#: argument, not one per user: txredisapi encodes each argument in Python). Returns the ids in
#: the same order, packed as little-endian unsigned 32-bit integers (one string to parse, not
#: a reply element per id). Running it twice (a retry after a timeout) gives the same ids.
ASSIGN_IDS = """
local data = ARGV[1]
local users = {}
local pos = 1
while pos <= #data do
  local size = struct.unpack('<I4', data, pos)
  users[#users + 1] = string.sub(data, pos + 4, pos + 3 + size)
  pos = pos + 4 + size
end
local ids = {}
local missing = {}
local found = redis.call('HMGET', KEYS[1], unpack(users))
for i = 1, #users do
  if found[i] then
    ids[i] = tonumber(found[i])
  else
    missing[#missing + 1] = i
  end
end
if #missing > 0 then
  local first = redis.call('INCRBY', KEYS[3], #missing) - #missing
  local forward, backward = {}, {}
  for j, i in ipairs(missing) do
    local id = first + j - 1
    ids[i] = id
    forward[#forward + 1] = users[i]
    forward[#forward + 1] = id
    backward[#backward + 1] = id
    backward[#backward + 1] = users[i]
    redis.call('SETBIT', KEYS[4], id, 1)
  end
  redis.call('HSET', KEYS[1], unpack(forward))
  redis.call('HSET', KEYS[2], unpack(backward))
end
local packed = {}
for i = 1, #ids do
  packed[i] = struct.pack('<I4', ids[i])
end
return table.concat(packed)
"""
#: The most users per ASSIGN_IDS call: Lua's unpack has a stack limit (8,000 values), and a
#: call of new users stays around 3 ms in Redis (5 µs a new user, measured).
ID_CHUNK = 500


def _packed(names: list[str]) -> bytes:
    """
    Users as ASSIGN_IDS takes them: each a little-endian 32-bit length and its UTF-8 bytes.
    """
    parts = []
    for name in names:
        encoded = name.encode("utf-8", "surrogatepass")
        parts.append(struct.pack("<I", len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


class UserIds:
    """
    Dense ids for users, assigned in Redis and cached here.

    :param link: the Redis connection.
    :param cache_size: about how many ids are kept in the process (in two generations: the
        older is dropped whole when the newer fills, so the cost is one dictionary entry per
        recent user, not per user ever seen).
    :param integers: take users that are integers in ``[0, 2^32)`` as their own ids (for
        applications whose account ids are small integers already); other users still get
        assigned ones, which may then collide with them: use it only if every user is such an
        integer.
    """

    def __init__(self, link: Link, cache_size: int = 100_000, integers: bool = False):
        if cache_size < 2:
            raise ValueError(f"cache_size must be at least 2, not {cache_size!r}")
        self._link = link
        self._generation = cache_size // 2
        self._ids: dict[str, int] = {}
        self._older: dict[str, int] = {}
        self.integers = integers
        self.assigned_calls = 0

    def cached(self, user: object) -> int | None:
        """
        The id of ``user`` if it is known here without asking Redis.
        """
        if self.integers and isinstance(user, int) and 0 <= user <= MAX_ID:
            return user
        name = str(user)
        found = self._ids.get(name)
        if found is None:
            found = self._older.get(name)
            if found is not None:
                self._keep(name, found)
        return found

    def _keep(self, name: str, uid: int) -> None:
        ids = self._ids
        ids[name] = uid
        if len(ids) >= self._generation:
            self._older, self._ids = ids, {}

    async def resolve(self, users: Iterable[object]) -> dict[object, int]:
        """
        The id of each user, assigning new ones in Redis (one script call for all of them).

        :raises RedisUnavailable, RedisTimeout: from the link; nothing is cached then, and a
            retry gives the same ids.
        """
        found: dict[object, int] = {}
        missing: dict[str, list[object]] = {}
        for user in users:
            uid = self.cached(user)
            if uid is None:
                missing.setdefault(str(user), []).append(user)
            else:
                found[user] = uid
        names = list(missing)
        chunks = [names[at : at + ID_CHUNK] for at in range(0, len(names), ID_CHUNK)]
        # All chunks sent at once: Redis runs them one after the other, while this side
        # encodes the next and decodes the last.
        replies = await gather(
            [
                self._link.execute(
                    "EVAL",
                    ASSIGN_IDS,
                    4,
                    USER_IDS,
                    USER_NAMES,
                    USER_NEXT,
                    USERS_KNOWN,
                    _packed(chunk),
                )
                for chunk in chunks
            ],
        )
        self.assigned_calls += len(chunks)
        for chunk, reply in zip(chunks, replies, strict=True):
            ids = struct.unpack(f"<{len(chunk)}I", reply)
            for name, uid in zip(chunk, ids, strict=True):
                self._keep(name, uid)
                for user in missing[name]:
                    found[user] = uid
        return found

    async def users(self, ids: Iterable[int]) -> dict[int, str]:
        """
        The user of each id that has one (ids an application gave itself have none).
        """
        wanted = list(ids)
        if not wanted:
            return {}
        replies = await self._link.execute("HMGET", USER_NAMES, *wanted)
        return {
            uid: reply.decode() if isinstance(reply, bytes) else str(reply)
            for uid, reply in zip(wanted, replies, strict=True)
            if reply is not None
        }
