"""
The counter writer's increments per second into a 3-primary Redis Cluster, against one Redis,
in the same run: the same kicks, the same writer, only ``--redis`` differs.

    .venv/bin/python -m bench.cluster_writer [--kicks 200000] [--metricas 12] [--rounds 3]

Both are Debian's ``redis-server`` 7 on loopback TCP (the single one too: a unix socket would
flatter it). Twelve metricas, so that their hash tags (one slot each) spread over the three
primaries; each kick goes to one of them at random, with the request metrica's axes (method,
status class, a stored resource), dates moving as in a live server. Timed: ``flush()`` of
everything pending, i.e. expanding the kicks into increments, one script call per batch (each
within one slot, with its marker there) until Redis holds them all. Rounds alternate between
the two targets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred

from twisted_sessions.counters import CounterStore
from twisted_sessions.deploy.processes import free_port, spawn, stop, wait_for_port
from twisted_sessions.deploy.rediscluster import REDIS_SERVER, LocalRedisCluster
from twisted_sessions.storage import open_link, parse_redis_url
from twisted_sessions.storage.link import Link

from .counter_writer import make_kicks, request_metrica


async def wait_connected(link: Link) -> None:
    while not (link.connected and link.reachable):
        await _sleep(0.05)


async def _sleep(seconds: float) -> None:
    from twisted.internet.task import deferLater

    await deferLater(reactor, seconds, lambda: None)


async def one_round(url: str, kicks: list[Any], metricas: int) -> dict[str, float]:
    link = open_link(reactor, parse_redis_url(url), deadline=10, health_interval=0.5)
    link.connect()
    await wait_connected(link)
    store = CounterStore(reactor, link)
    # A fresh name per round: nothing of the last round is in the way.
    suffix = f"{time.monotonic_ns()}"
    counted = [request_metrica(f"m{n}-{suffix}", store) for n in range(metricas)]
    for number, (date, value, method, status, resource) in enumerate(kicks):
        counted[number % metricas].kick(
            date=date, value=value, method=method, status=status, resource=resource
        )
    writer = store.writer
    writer.seal()
    increments = writer.backlog
    started = time.perf_counter()
    await writer.send()
    seconds = time.perf_counter() - started
    assert writer.backlog == 0
    total = sum([await m.count() for m in counted])
    assert total == len(kicks), (total, len(kicks))
    await link.disconnect()
    return {"increments_per_second": increments / seconds, "batches": writer.batches_written}


async def main(options: argparse.Namespace) -> None:
    kicks = make_kicks(options.kicks, 200_000)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        directory = Path(tmp)
        port = free_port()
        single = spawn(
            [REDIS_SERVER, "--port", str(port), "--save", "", "--appendonly", "no"],
            directory / "single.log",
        )
        wait_for_port(port, single, "redis-server", 15)
        cluster = LocalRedisCluster(directory / "cluster", primaries=3).start()
        targets = {"single Redis": f"redis://127.0.0.1:{port}/0", "3-primary cluster": cluster.url}
        results: dict[str, list[float]] = {name: [] for name in targets}
        batches: dict[str, float] = {}
        try:
            for _ in range(options.rounds):
                for name, url in targets.items():
                    found = await one_round(url, kicks, options.metricas)
                    results[name].append(found["increments_per_second"])
                    batches[name] = found["batches"]
        finally:
            cluster.stop()
            stop(single)
    base = statistics.median(results["single Redis"])
    print(f"{options.kicks} kicks over {options.metricas} metricas, {options.rounds} rounds")
    for name, values in results.items():
        median = statistics.median(values)
        print(
            f"{name:>18}: {median:12,.0f} increments/s (median; "
            f"{', '.join(f'{v:,.0f}' for v in values)}), {batches[name]:.0f} batches, "
            f"{median / base:.2f}x single"
        )


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kicks", type=int, default=200_000)
    parser.add_argument("--metricas", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    outcome: list[Any] = []
    Deferred.fromCoroutine(main(options)).addBoth(outcome.append).addBoth(lambda _: reactor.stop())
    reactor.run()
    if outcome and hasattr(outcome[0], "raiseException"):
        outcome[0].raiseException()
    sys.exit(0)


if __name__ == "__main__":
    run()
