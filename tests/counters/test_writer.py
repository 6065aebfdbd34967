"""
The counter writer against real Redis servers: coalesced, idempotent, bounded, loss-free.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from twisted_sessions.counters import (
    AveragedMetrica,
    Axis,
    CounterStore,
    CounterWriter,
    Metrica,
    StoredChoiceAxis,
)
from twisted_sessions.counters.writer import APPLY_BATCH, Batch
from twisted_sessions.storage import RedisAddress, RedisLink, RedisUnavailable
from twisted_sessions.storage.keys import bucket_key, hash_tag

from ..reactor_case import coroutine_test, wait_until
from ..redis_process import RedisProcess

COLORS = Axis(["red", "green", "blue"])
SIZES = Axis(["s", "m", "l"])


async def pause(link: RedisLink, milliseconds: int) -> None:
    """
    Pause Redis's writes, retrying while the link is still reconnecting after a restart.
    """
    for _ in range(200):
        try:
            await link.execute("CLIENT", "PAUSE", str(milliseconds), "WRITE")
            return
        except RedisUnavailable:
            await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("could not pause Redis")


class WriterTests(TestCase):
    def setUp(self) -> None:
        self.redis = RedisProcess(appendonly=True).start()
        self.addCleanup(self.redis.stop)

    async def link(self, address: RedisAddress | None = None, deadline: float = 1.0) -> RedisLink:
        link = RedisLink(
            reactor, address or self.redis.address, deadline=deadline, health_interval=0.1
        )
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        if address is None:
            await wait_until(lambda: link.connected)
        return link

    def store(self, link: RedisLink, **settings: object) -> CounterStore:
        writer = CounterWriter(reactor, link, **settings)  # type: ignore[arg-type]
        return CounterStore(reactor, link, writer)

    @coroutine_test
    async def test_one_call_per_flush_and_exact_counts(self) -> None:
        """
        Ten thousand kicks become one script call (all buckets, all combinations, sums and
        counts together), and every bucket agrees with the kicks.
        """
        link = await self.link()
        store = self.store(link)
        metrica = AveragedMetrica("load", axes=[("color", COLORS), ("size", SIZES)], store=store)
        rng = random.Random(7)
        expected: Counter[tuple[str, str]] = Counter()
        for _ in range(10_000):
            color, size = rng.choice(COLORS.choices), rng.choice(SIZES.choices)
            metrica.kick(value=2, color=color, size=size)
            expected[(color, size)] += 1
        await store.flush()
        self.assertEqual(store.writer.commands_sent, 1)
        self.assertEqual(await metrica.count(), 10_000)
        self.assertEqual(await metrica.total(), 20_000)
        for (color, size), kicks in expected.items():
            self.assertEqual(await metrica.filter(color=color, size=size).count(), kicks)
        by_color = dict(await metrica.iterate_counts("color"))
        self.assertEqual(sum(by_color.values()), 10_000)

    @coroutine_test
    async def test_ambiguous_timeout_is_not_counted_twice(self) -> None:
        """
        A batch whose call times out while Redis is paused is applied by Redis afterwards;
        the writer, not knowing, sends it again: the batch id makes the second call a no-op.
        """
        link = await self.link(deadline=0.3)
        pauser = await self.link()
        store = self.store(link)
        metrica = Metrica("ambiguous", store=store)
        for _ in range(5):
            metrica.kick()
        await pauser.execute("CLIENT", "PAUSE", "1000", "WRITE")
        await store.flush()  # Times out: kept, and (after the pause) applied by Redis.
        self.assertEqual(store.writer.batches_written, 0)
        self.assertGreater(store.writer.backlog, 0)
        await deferLater(reactor, 1.2, lambda: None)
        # Sent again until it goes through (on a loaded machine a resend may time out too:
        # each is applied at most once all the same).
        for _ in range(50):
            await wait_until(lambda: link.connected)
            await store.writer.send()
            if store.writer.backlog == 0:
                break
            await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(store.writer.backlog, 0)
        self.assertEqual(await metrica.total(), 5)

    @coroutine_test
    async def test_backlog_bound_drops_and_counts(self) -> None:
        """
        With Redis away, kicks wait up to the bound; beyond it they are dropped, counted and
        logged once (not once per kick).
        """
        missing = RedisAddress(path=str(Path(tempfile.mkdtemp()) / "none.sock"))
        link = await self.link(missing)
        store = self.store(link, max_pending=10)
        metrica = Metrica("bounded", axes=[("n", Axis([str(i) for i in range(30)]))], store=store)
        warnings: list[str] = []

        def observe(event: dict[str, object]) -> None:
            if "dropping kicks" in str(event.get("log_format")):
                warnings.append("warned")

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        for number in range(30):
            metrica.kick(n=str(number))
        metrica.kick(n="0")  # Adds to a pending counter: never dropped.
        self.assertEqual(store.writer.dropped, 20)
        self.assertEqual(store.writer.backlog, 10)
        self.assertEqual(warnings, ["warned"])

    @coroutine_test
    async def test_redis_killed_mid_load_loses_nothing(self) -> None:
        """
        Kill the real redis-server (SIGKILL) in the middle of a load and start it again:
        every counter equals the number of kicks, and the writer says it waits once for the
        outage, not once a flush.
        """
        said: list[str] = []

        def observe(event: dict[str, object]) -> None:
            text = str(event.get("log_format"))
            if "wait for Redis" in text or "written again" in text:
                said.append(text)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        link = await self.link(deadline=0.5)
        store = self.store(link, flush_interval=0.05)
        store.writer.start()
        self.addCleanup(store.writer.stop)
        metrica = Metrica("survivor", axes=[("color", COLORS)], store=store)
        kicks: Counter[str] = Counter()
        rng = random.Random(3)

        async def load(rounds: int) -> None:
            for _ in range(rounds):
                for _ in range(200):
                    color = rng.choice(COLORS.choices)
                    metrica.kick(color=color)
                    kicks[color] += 1
                await deferLater(reactor, 0.01, lambda: None)

        await load(20)
        self.redis.kill()
        await load(20)
        self.redis.start()
        await load(20)
        await wait_until(lambda: link.connected, timeout=20)
        await wait_until(lambda: store.writer.backlog == 0, timeout=20)
        await store.flush()
        self.assertEqual(await metrica.total(), sum(kicks.values()))
        for color, count in kicks.items():
            self.assertEqual(await metrica.filter(color=color).total(), count)
        waits = sum("wait for Redis" in text for text in said)
        self.assertTrue(1 <= waits <= 2, said)
        self.assertEqual(waits, sum("written again" in text for text in said))

    @coroutine_test
    async def test_spool_at_shutdown_replayed_once(self) -> None:
        """
        What cannot be written at shutdown goes to the writer's spool file; the next start
        replays it, and replaying the same spool again (a crash before it was removed) counts
        nothing twice.
        """
        spool_dir = Path(tempfile.mkdtemp(prefix="ts-spool-"))
        self.addCleanup(shutil.rmtree, spool_dir, True)
        spool = spool_dir / "counters.spool"
        missing = RedisAddress(path=str(spool_dir / "none.sock"))
        down = self.store(await self.link(missing), spool_path=spool)
        metrica = Metrica("spooled", axes=[("color", COLORS)], store=down)
        for color in ["red", "red", "blue"]:
            metrica.kick(color=color)
        await down.flush()
        written = down.writer.own_spool
        assert written is not None
        self.assertTrue(written.exists())
        copy = spool_dir / "copy"
        shutil.copy(written, copy)
        link = await self.link()
        for _ in range(2):
            up = self.store(link, spool_path=spool)
            again = Metrica("spooled", axes=[("color", COLORS)], store=up)
            up.writer.start()
            up.writer.stop()
            await up.writer.send()
            self.assertFalse(written.exists())
            self.assertEqual(await again.total(), 3)
            self.assertEqual(await again.filter(color="red").total(), 2)
            shutil.copy(copy, written)
        written.unlink()

    @coroutine_test
    async def test_servers_sharing_a_data_dir_lose_no_spool(self) -> None:
        """
        Two servers on one data directory that both stop while Redis is away keep both their
        spools (each its own file), and the next start replays both: every kick counts once.
        """
        spool_dir = Path(tempfile.mkdtemp(prefix="ts-spool-"))
        self.addCleanup(shutil.rmtree, spool_dir, True)
        spool = spool_dir / "counters.spool"
        missing = RedisAddress(path=str(spool_dir / "none.sock"))
        for kicks in (3, 5):
            down = self.store(await self.link(missing), spool_path=spool)
            metrica = Metrica("shared", store=down)
            for _ in range(kicks):
                metrica.kick()
            await down.flush()
        self.assertEqual(len(list(spool_dir.glob("counters*.spool"))), 2)
        up = self.store(await self.link(), spool_path=spool)
        counted = Metrica("shared", store=up)
        up.writer.start()
        up.writer.stop()
        await up.writer.send()
        self.assertEqual(await counted.total(), 8)
        self.assertEqual(list(spool_dir.glob("counters*.spool")), [])

    @coroutine_test
    async def test_a_batch_that_fails_half_way_is_retried_whole(self) -> None:
        """
        A script that would fail after some of its writes (one of its keys holds a string)
        writes nothing and sets no marker; once the key is fixed, the retry writes every
        count exactly once.
        """
        link = await self.link()
        store = self.store(link)
        metrica = Metrica("halfway", axes=[("color", COLORS)], store=store)
        metrica.kick(date=datetime(2012, 3, 4, 5), color="red")
        metrica.kick(date=datetime(2012, 3, 4, 5), color="blue")
        # The day's bucket, written after the hour's in the batch, is not a hash.
        day = bucket_key("halfway", "d2012-03-04")
        await link.execute("SET", day, "not a hash")
        store.writer.seal()
        with self.assertRaises(Exception) as raised:
            await store.writer._send()
        self.assertIn("is a string, not a hash", str(raised.exception))
        hour = bucket_key("halfway", "h2012-03-04T05")
        self.assertEqual(await link.execute("EXISTS", hour), 0)
        self.assertGreater(store.writer.backlog, 0)
        await link.execute("DEL", day)
        await store.writer.send()
        self.assertEqual(store.writer.backlog, 0)
        self.assertEqual(await metrica.total(), 2)
        self.assertEqual(await metrica.timespan(2012, 3, 4, 5).total(), 2)
        self.assertEqual(await metrica.timespan(2012, 3, 4).filter(color="red").total(), 1)

    @coroutine_test
    async def test_a_refused_batch_does_not_hold_back_the_others(self) -> None:
        """
        Batches of several metricas go at once (each its own slot): one refused by the
        script's checks stays pending, whole, while the others are written, once each.
        """
        link = await self.link()
        store = self.store(link)
        broken = Metrica("broken", axes=[("color", COLORS)], store=store)
        fine = [Metrica(f"fine{n}", axes=[("color", COLORS)], store=store) for n in range(12)]
        for metrica in [broken, *fine]:
            metrica.kick(date=datetime(2012, 3, 4, 5), color="red")
        await link.execute("SET", bucket_key("broken", "d2012-03-04"), "not a hash")
        store.writer.seal()
        with self.assertRaises(Exception) as raised:
            await store.writer._send()
        self.assertIn("is a string, not a hash", str(raised.exception))
        self.assertEqual([await m.total() for m in fine], [1] * 12)
        self.assertEqual(await broken.total(), 0)
        self.assertGreater(store.writer.backlog, 0)
        await link.execute("DEL", bucket_key("broken", "d2012-03-04"))
        await store.writer._send()
        self.assertEqual(store.writer.backlog, 0)
        self.assertEqual(await broken.total(), 1)
        self.assertEqual([await m.total() for m in fine], [1] * 12)

    @coroutine_test
    async def test_random_outages_match_the_model(self) -> None:
        """
        Model-based: random kicks, flushes, pauses that make calls time out (ambiguous) and
        a restart of Redis; after recovery Redis equals the model exactly.
        """
        for seed in range(3):
            rng = random.Random(seed)
            link = await self.link(deadline=0.2)
            pauser = await self.link()
            store = self.store(link)
            metrica = Metrica(
                f"model{seed}", axes=[("color", COLORS), ("size", SIZES)], store=store
            )
            model: Counter[tuple[str, str]] = Counter()
            for _ in range(40):
                action = rng.random()
                if action < 0.6:
                    for _ in range(rng.randrange(1, 50)):
                        pair = (rng.choice(COLORS.choices), rng.choice(SIZES.choices))
                        metrica.kick(color=pair[0], size=pair[1])
                        model[pair] += 1
                elif action < 0.85:
                    store.writer.seal()
                    await store.writer.send()
                elif action < 0.95:
                    await pause(pauser, rng.randrange(100, 400))
                    store.writer.seal()
                    await store.writer.send()
                else:
                    self.redis.kill()
                    self.redis.start()
                    await wait_until(lambda p=pauser: p.connected, timeout=20)  # type: ignore[misc]
            await deferLater(reactor, 0.5, lambda: None)
            store.writer.seal()
            # Sent until it goes through: with a 0.2 s deadline a loaded machine may time a
            # send out again, which the batch markers make harmless.
            for _ in range(50):
                await wait_until(lambda current=link: current.connected, timeout=20)  # type: ignore[misc]
                await store.writer.send()
                if store.writer.backlog == 0:
                    break
                await deferLater(reactor, 0.1, lambda: None)
            self.assertEqual(store.writer.backlog, 0)
            for (color, size), count in model.items():
                self.assertEqual(await metrica.filter(color=color, size=size).total(), count)
            self.assertEqual(await metrica.total(), sum(model.values()))

    @coroutine_test
    async def test_day_equals_its_hours_whichever_batches_landed(self) -> None:
        """
        A flush split into several calls never splits a kick: after any prefix of the calls,
        each day equals the sum of its hours, and all time the sum of the days.
        """
        from twisted_sessions.counters.writer import APPLY_BATCH

        link = await self.link()
        store = self.store(link, chunk=60)
        metrica = Metrica("consistent", axes=[("color", COLORS)], store=store)
        rng = random.Random(11)
        for _ in range(500):
            metrica.kick(
                date=datetime(2020, 1, rng.randrange(1, 4), rng.randrange(24)),
                color=rng.choice(COLORS.choices),
            )
        store.writer.seal()
        batches = list(store.writer._batches)
        self.assertGreater(len(batches), 3)
        for applied, batch in enumerate(batches, 1):
            keys, argv = batch.arguments()
            await link.execute("EVAL", APPLY_BATCH, len(keys), *keys, *argv)
            days = await metrica.timespan(year=2020, month=1).iterate()
            for day, total in days[:3]:
                hours = await metrica.timespan(year=2020, month=1, day=day).iterate()
                self.assertEqual(total, sum(t for _, t in hours), f"after {applied} calls")
            self.assertEqual(await metrica.total(), sum(t for _, t in days))
        self.assertEqual(await metrica.total(), 500)

    @coroutine_test
    async def test_each_batch_touches_one_hash_slot(self) -> None:
        """
        Kicks of several metricas go in batches of one metrica each, whose marker carries
        that metrica's hash tag: every script call touches one Redis Cluster slot. A batch
        spooled by 0.2 (no tag) is still replayed, and still at most once.
        """
        link = await self.link()
        store = self.store(link)
        first = Metrica("first", axes=[("color", COLORS)], store=store)
        second = Metrica("second", axes=[("color", COLORS)], store=store)
        first.kick(date=datetime(2021, 5, 6, 7), color="red")
        second.kick(date=datetime(2021, 5, 6, 7), color="blue")
        store.writer.seal()
        batches = list(store.writer._batches)
        self.assertEqual(len(batches), 2)
        for batch in batches:
            keys, _ = batch.arguments()
            self.assertEqual({hash_tag(key) for key in keys}, {batch.tag}, keys)
        self.assertEqual({batch.tag for batch in batches}, {"{m:first}", "{m:second}"})
        await store.writer.send()
        markers = await link.execute("KEYS", "ts1:{m:*}:batch:*")
        self.assertEqual(len(markers), 2)
        self.assertEqual((await first.total(), await second.total()), (1, 1))
        # The same writes spooled by 0.2: a spool line without a tag, under another number.
        line = json.loads(batches[0].to_json())
        del line["tag"]
        line["number"] = 99
        old = Batch.from_json(json.dumps(line))
        self.assertEqual(old.tag, "")
        for _ in range(2):
            keys, argv = old.arguments()
            await link.execute("EVAL", APPLY_BATCH, len(keys), *keys, *argv)
        self.assertEqual(await first.total(), 2)


class CheckpointTests(TestCase):
    """
    A checkpoint (a consumed feed's position) is written in the same script call as the
    counts it covers, for every metrica it names, and survives a shutdown without Redis.
    """

    def setUp(self) -> None:
        self.redis = RedisProcess().start()
        self.addCleanup(self.redis.stop)

    async def link(self, address: RedisAddress | None = None) -> RedisLink:
        link = RedisLink(reactor, address or self.redis.address, deadline=1, health_interval=0.1)
        link.connect()
        self.addCleanup(lambda: Deferred.fromCoroutine(link.disconnect()))
        if address is None:
            await wait_until(lambda: link.connected)
        return link

    @coroutine_test
    async def test_a_checkpoint_goes_with_the_counts_of_each_metrica(self) -> None:
        link = await self.link()
        writer = CounterWriter(reactor, link, chunk=10)
        store = CounterStore(reactor, link, writer)
        busy = Metrica("busy", axes=[("n", StoredChoiceAxis(cap=1000))], store=store)
        quiet = Metrica("quiet", store=store)
        position = ["p1"]
        keys = {busy.tag: "ts1:{m:busy}:feed:f", quiet.tag: "ts1:{m:quiet}:feed:f"}
        writer.checkpoint(keys, lambda: position[0])
        for n in range(50):  # Far more increments than a chunk of 10.
            busy.kick(n=str(n))
        writer.seal()
        tagged = [b for b in writer._batches if b.checkpoints]
        # Each metrica's counts and checkpoint in one call: the busy one is not chunked.
        self.assertEqual(sorted(b.tag for b in tagged), sorted(keys))
        self.assertEqual([len(b.checkpoints) for b in tagged], [1, 1])
        self.assertEqual(len(writer._batches), 2)
        await writer.send()
        self.assertEqual(await link.execute("GET", keys[busy.tag]), "p1")
        self.assertEqual(await link.execute("GET", keys[quiet.tag]), "p1")
        self.assertEqual(await busy.total(), 50)
        written = writer.batches_written
        await store.flush()  # Nothing new, the same position: nothing is sent.
        self.assertEqual(writer.batches_written, written)
        position[0] = "p2"  # The position moved without counts: a checkpoint-only call each.
        await store.flush()
        self.assertEqual(writer.batches_written, written + 2)
        self.assertEqual(await link.execute("GET", keys[quiet.tag]), "p2")

    @coroutine_test
    async def test_checkpoints_are_spooled_and_replayed_before_they_are_read(self) -> None:
        spool_dir = Path(tempfile.mkdtemp(prefix="ts-spool-"))
        self.addCleanup(shutil.rmtree, spool_dir, True)
        spool = spool_dir / "counters.spool"
        missing = RedisAddress(path=str(spool_dir / "none.sock"))
        down = CounterWriter(reactor, await self.link(missing), spool_path=spool)
        store = CounterStore(reactor, down._link, down)
        metrica = Metrica("fed", store=store)
        down.checkpoint({metrica.tag: "ts1:{m:fed}:feed:f"}, lambda: "at-42")
        metrica.kick()
        await down.flush()
        link = await self.link()
        up = CounterWriter(reactor, link, spool_path=spool)
        up.start()
        up.stop()
        self.assertTrue(up.replaying)
        await up.send()
        self.assertFalse(up.replaying)
        self.assertEqual(await link.execute("GET", "ts1:{m:fed}:feed:f"), "at-42")
