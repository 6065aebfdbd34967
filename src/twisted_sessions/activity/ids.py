"""
Users to dense bit offsets.

bitmapist needs user ids that are integers below 2^32, and a bitmap costs one bit per id up
to the largest one: a visitor id of 32 hex characters cannot be an offset. Each user (any
string) gets the next integer, assigned atomically in Redis by one script for a whole flush's
new users, so that a bitmap costs about one bit per known user whoever assigned the ids, and
several servers on one Redis agree. The ids are cached in a bounded map in the process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..storage.keys import USER_IDS, USER_NAMES, USER_NEXT, USERS_KNOWN

if TYPE_CHECKING:
    from ..storage.link import RedisLink

#: The largest offset bitmapist (and Redis) take: 2^32 - 1.
MAX_ID = 2**32 - 1

#: Gives each new user of ARGV the next id; an already known user keeps its own. KEYS: user to
#: id, id to user, the next id, the bitmap of ids given (one hash tag: one Cluster slot).
#: Returns the ids in ARGV's order. Running it twice (a retry after a timeout) gives the
#: same ids.
ASSIGN_IDS = """
local ids = {}
for i, user in ipairs(ARGV) do
  local id = redis.call('HGET', KEYS[1], user)
  if not id then
    id = redis.call('INCR', KEYS[3]) - 1
    redis.call('HSET', KEYS[1], user, id)
    redis.call('HSET', KEYS[2], id, user)
    redis.call('SETBIT', KEYS[4], id, 1)
  end
  ids[i] = tonumber(id)
end
return ids
"""


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

    def __init__(self, link: RedisLink, cache_size: int = 100_000, integers: bool = False):
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
        if missing:
            names = list(missing)
            self.assigned_calls += 1
            replies = await self._link.execute(
                "EVAL", ASSIGN_IDS, 4, USER_IDS, USER_NAMES, USER_NEXT, USERS_KNOWN, *names
            )
            for name, uid in zip(names, replies, strict=True):
                if int(uid) > MAX_ID:
                    raise OverflowError(f"more than 2^32 users: {name!r} got id {uid}")
                self._keep(name, int(uid))
                for user in missing[name]:
                    found[user] = int(uid)
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
