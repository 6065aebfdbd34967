"""
The stream writer against real Redis servers: every event written once, through lost replies,
outages and restarts; request events formatted by the script as the server would.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from twisted_sessions.events import RequestEvent
from twisted_sessions.storage import RedisAddress, RedisLink
from twisted_sessions.storage.keys import STREAM_NAMES, stream_key
from twisted_sessions.streams import StreamWriter, public_user
from twisted_sessions.streams.frames import entries_of, format_stream_id, parse_stream_id

from ..counters.test_writer import pause
from ..reactor_case import coroutine_test, wait_until
from ..redis_process import RedisProcess

VISITOR = "0123456789abcdef0123456789abcdef"


def request(user: object, n: int, path: str = "/page") -> RequestEvent:
    return RequestEvent(
        user, 1_764_770_000.5 + n, "GET", path + "/x", 200, 0.25, "key", False, path
    )


class StreamWriterTests(TestCase):
    def setUp(self) -> None:
        self.redis = RedisProcess(appendonly=True).start()
        self.addCleanup(self.redis.stop)

    async def link(self, address: RedisAddress | None = None, deadline: float = 1.0) -> RedisLink:
        link = RedisLink(
            reactor,
            address or self.redis.address,
            deadline=deadline,
            health_interval=0.1,
            binary=True,
        )
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        if address is None:
            await wait_until(lambda: link.connected)
        return link

    async def entries(self, link: RedisLink, stream: str) -> list[dict[str, object]]:
        """
        The events of a stream as its readers see them (their own fields).
        """
        found = await link.execute("XRANGE", stream_key(stream), "-", "+")
        return [
            {k: v for k, v in json.loads(event.payload).items() if k not in ("$schema", "meta")}
            for position, flat in found
            for event in entries_of(
                stream,
                parse_stream_id(position),
                dict(zip(flat[::2], flat[1::2], strict=True)),
                "example.org",
            )
        ]

    @coroutine_test
    async def test_request_events_as_readers_see_them(self) -> None:
        """
        A flush's request events are one entry of the requests stream; a reader turns it back
        into one event per request, with the request's fields and its user as public_user()
        shows it (a visitor id hashed, an account as it is, an integer account a number), and
        ids that place each event within the entry. The path (personal data) and the session
        key (an id) are not written.
        """
        link = await self.link()
        writer = StreamWriter(reactor, link)
        for n, user in enumerate([VISITOR, "alice", 2**40, ("tenant", 7)]):
            writer.add_request(request(user, n, path="/a/b"))
        await writer.flush()
        [(entry, flat)] = await link.execute("XRANGE", stream_key("requests"), "-", "+")
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        self.assertEqual(fields[b"n"], b"4")
        self.assertNotIn(b"/a/b/x", fields[b"r"])
        self.assertNotIn(b"key", fields[b"r"])
        events = entries_of("requests", parse_stream_id(entry), fields, "example.org")
        got = [json.loads(event.payload) for event in events]
        self.assertEqual(
            [event["user"] for event in got],
            [public_user(VISITOR), "alice", 2**40, ["tenant", 7]],
        )
        first = {k: v for k, v in got[0].items() if k not in ("$schema", "meta")}
        self.assertEqual(
            first,
            {
                "time": 1764770000.5,
                "method": "GET",
                "resource": "/a/b",
                "status": 200,
                "duration": 0.25,
                "aborted": False,
                "user": public_user(VISITOR),
            },
        )
        self.assertEqual(got[0]["meta"]["dt"], "2025-12-03T13:53:20.500Z")
        self.assertEqual(
            [format_stream_id(event.position) for event in events],
            [entry.decode(), *(f"{entry.decode()}.{k}" for k in (1, 2, 3))],
        )
        self.assertEqual(await link.execute("SMEMBERS", STREAM_NAMES), [b"requests"])

    @coroutine_test
    async def test_a_lost_reply_writes_nothing_twice(self) -> None:
        """
        A flush whose reply does not come within the deadline (Redis paused) is retried whole;
        the marker makes the retry a no-op for what was written: each event is there once.
        """
        link = await self.link(deadline=0.3)
        pauser = await self.link()
        writer = StreamWriter(reactor, link)
        for n in range(2500):
            writer.add("signups", 1_764_770_000 + n, json.dumps({"n": n}))
        await pause(pauser, 700)
        await writer.send()  # Times out: applied later, when the pause ends.
        self.assertEqual(writer.backlog, 2500)
        await deferLater(reactor, 0.8, lambda: None)
        await wait_until(lambda: link.connected)  # txredisapi drops a connection that timed out.
        await writer.send()  # The same batches again: their markers say they are written.
        self.assertEqual(writer.backlog, 0)
        got = await self.entries(pauser, "signups")
        self.assertEqual([event["n"] for event in got], list(range(2500)))

    @coroutine_test
    async def test_spooled_at_shutdown_and_replayed_once(self) -> None:
        """
        What cannot be written at shutdown goes to the writer's spool; the next start writes
        it, and replaying the same spool again (a crash before it was removed) writes nothing
        twice.
        """
        spool_dir = Path(tempfile.mkdtemp(prefix="ts-spool-"))
        self.addCleanup(shutil.rmtree, spool_dir, True)
        spool = spool_dir / "streams.spool"
        down = StreamWriter(
            reactor,
            await self.link(RedisAddress(path=str(spool_dir / "no.sock"))),
            spool_path=spool,
        )
        down.add("signups", 1_764_770_000, '{"n":1}')
        down.add_request(request(VISITOR, 1))
        await down.flush()
        written = down.own_spool
        assert written is not None and written.exists()
        copy = spool_dir / "copy"
        shutil.copy(written, copy)
        link = await self.link()
        for _ in range(2):
            up = StreamWriter(reactor, link, spool_path=spool)
            up.start()
            up.stop()
            await up.send()
            self.assertFalse(written.exists())
            shutil.copy(copy, written)
        written.unlink()
        self.assertEqual(len(await self.entries(link, "signups")), 1)
        self.assertEqual(len(await self.entries(link, "requests")), 1)

    @coroutine_test
    async def test_history_is_bounded(self) -> None:
        """
        Each stream keeps about max_length events (XTRIM ~ trims whole nodes of 100), and none
        older than history seconds.
        """
        link = await self.link()
        writer = StreamWriter(reactor, link, max_length=500, history=3600)
        for n in range(3000):
            writer.add("long", reactor.seconds() - 10, json.dumps({"n": n}))
        writer.add("old", 1_000_000, "{}")  # Added now: its stream id is now.
        await writer.flush()
        length = await link.execute("XLEN", stream_key("long"))
        self.assertTrue(500 <= length < 700, length)
        newest = await self.entries(link, "long")
        self.assertEqual(newest[-1]["n"], 2999)

    @coroutine_test
    async def test_backlog_is_bounded_and_drops_counted(self) -> None:
        """
        While Redis is away at most max_pending events wait; the rest are dropped and
        counted.
        """
        spool_dir = Path(tempfile.mkdtemp(prefix="ts-spool-"))
        self.addCleanup(shutil.rmtree, spool_dir, True)
        away = await self.link(RedisAddress(path=str(spool_dir / "no.sock")), deadline=0.2)
        writer = StreamWriter(reactor, away, max_pending=100)
        for n in range(150):
            writer.add("signups", 1_764_770_000, json.dumps({"n": n}))
        for n in range(10):
            writer.add_request(request(VISITOR, n))
        self.assertEqual((writer.backlog, writer.dropped), (100, 60))
