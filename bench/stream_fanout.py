"""
Stream fan-out: many SSE clients each receiving every event, against a baseline measured in
the same run.

    .venv/bin/python -m bench.stream_fanout [--clients 1000] [--rate 1000] [--seconds 15]

- ``ours``: ``twistd -n sessions`` (embedded Redis) publishing ``--rate`` events a second on a
  stream (``bench.stream_app.publisher``), ``--clients`` SSE clients of it on the same server:
  events go to Redis in the writer's flush and come back through the one ``XREAD`` reader.
- ``ours, through Redis``: the same clients on that server, the events published by a second
  server sharing its Redis.
- ``naive``: the baseline, a plain twisted.web SSE server (``bench.stream_app.naive``) writing
  each event to each client as it is published, with the same clients and rate.

The clients are one C program (``bench/sse_reader.c``, built with gcc) on an epoll loop, so that
the reader is not the bottleneck. For each: deliveries per second, the server's CPU (user +
system, in cores, from /proc) while publishing, Redis's CPU, and the publish-to-receipt
latency of every event on 10 of the clients (p50, p99, max).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.http_throughput import PROJECT, TWISTD, free_port, wait_for

SAMPLED = 10


def cpu(pid: int, system_only: bool = False) -> float:
    """
    CPU seconds (user + system, or system only) process ``pid`` used so far.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    system = int(fields[12])
    return (system if system_only else int(fields[11]) + system) / os.sysconf("SC_CLK_TCK")


def redis_pid(server_pid: int) -> int | None:
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return int(children[0]) if children else None


def build_reader(work: Path) -> Path:
    binary = work / "sse_reader"
    subprocess.run(
        ["gcc", "-O2", "-o", str(binary), str(PROJECT / "bench" / "sse_reader.c")], check=True
    )
    return binary


def start(argv: list[str], work: Path) -> subprocess.Popen[bytes]:
    """
    Start a server; its output goes to ``work/server.log``.
    """
    log = (work / "server.log").open("ab")
    process = subprocess.Popen(
        argv,
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process


def ours(port: int, work: Path, *extra: str) -> subprocess.Popen[bytes]:
    return start(
        [
            *TWISTD,
            "--pidfile",
            "",
            "-n",
            "sessions",
            "--port",
            # A listen backlog for a thousand clients connecting at once (Twisted's default,
            # 50, makes the kernel drop SYNs, and clients retry for seconds).
            f"tcp:{port}:interface=127.0.0.1:backlog=4096",
            "--app",
            "bench.stream_app.publisher",
            "--stream-max-clients",
            "100000",
            "--stream-max-clients-per-ip",
            "100000",
            *extra,
        ],
        work,
    )


def known(url: str) -> None:
    """
    Wait until the stream at ``url`` is known (a HEAD of it is a 200, not a 400).
    """
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10):
                return
        except urllib.error.HTTPError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url}: {error.read()!r}") from None
            time.sleep(0.1)


def get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()


def connected(stats_url: str, stream: str, count: int) -> None:
    """
    Wait until ``count`` clients of ``stream`` are connected (the /stats gauge).
    """
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(stats_url, timeout=10) as response:
            gauges = json.load(response)["streams"]
        if gauges["connected_clients"].get(stream, 0) >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {gauges['connected_clients']} clients connected")
        time.sleep(0.2)


def run(
    reader: Path,
    clients_port: int,
    path: str,
    publish_url: str,
    measured: list[int],
    args: argparse.Namespace,
    stats_url: str | None = None,
) -> dict[str, Any]:
    """
    Connect the clients, publish for ``args.seconds``, and measure.
    """
    clients = subprocess.Popen(
        [
            str(reader),
            "127.0.0.1",
            str(clients_port),
            path,
            str(args.clients),
            str(args.seconds + 6),
            str(SAMPLED),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    if stats_url is not None:
        connected(stats_url, path.rsplit("/", 1)[1], args.clients)
    else:
        time.sleep(3)  # The baseline has no gauge: give its clients time to connect.
    before = [cpu(pid) for pid in measured]
    system_before = cpu(measured[0], system_only=True)
    started = time.monotonic()
    stream = path.rsplit("/", 1)[1]
    get(f"{publish_url}start?rate={args.rate}&seconds={args.seconds}&stream={stream}")
    time.sleep(args.seconds)
    elapsed = time.monotonic() - started
    used = [(cpu(pid) - b) / elapsed for pid, b in zip(measured, before, strict=True)]
    system = (cpu(measured[0], system_only=True) - system_before) / elapsed
    out, _ = clients.communicate(timeout=60)
    result: dict[str, Any] = json.loads(out)
    result["cores"] = used
    result["system"] = system
    result["deliveries_per_s"] = result["events_total"] / args.seconds
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=1000, help="events published a second")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ts-fanout-"))
    reader = build_reader(work)
    results: dict[str, dict[str, Any]] = {}
    port, other_port = free_port(), free_port()
    server = ours(port, work, "--data-dir", str(work / "data"))
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(f"{url}stats/metricas/requests")
        get(f"{url}declare?stream=bench")
        redis = redis_pid(server.pid)
        measured = [server.pid] + ([redis] if redis else [])
        results["ours"] = run(
            reader, port, "/stats/stream/bench", url, measured, args, f"{url}stats"
        )
        # A second server on the first one's embedded Redis publishes; the clients stay on the
        # first.
        other = ours(
            other_port,
            work,
            "--data-dir",
            str(work / "other"),
            "--redis",
            f"unix://{work / 'data' / 'redis.sock'}",
        )
        try:
            other_url = f"http://127.0.0.1:{other_port}/"
            wait_for(f"{other_url}stats/metricas/requests")
            get(f"{other_url}declare?stream=remote")
            get(f"{other_url}start?rate=1&seconds=1&stream=remote")  # Known in Redis.
            time.sleep(2)
            known(f"{url}stats/stream/remote")
            results["ours, through Redis"] = run(
                reader,
                port,
                "/stats/stream/remote",
                other_url,
                [*measured, other.pid],
                args,
                f"{url}stats",
            )
        finally:
            other.terminate()
            other.wait()
    finally:
        server.terminate()
        server.wait()
    if not args.skip_naive:
        naive_port = free_port()
        naive = start([sys.executable, "-m", "bench.stream_app", "naive", str(naive_port)], work)
        try:
            naive_url = f"http://127.0.0.1:{naive_port}/"
            wait_for(f"{naive_url}start?rate=0&seconds=0")
            results["naive"] = run(reader, naive_port, "/stream", naive_url, [naive.pid], args)
        finally:
            naive.terminate()
            naive.wait()
    expected = args.rate * args.seconds
    print(f"servers' output: {work / 'server.log'}")
    print(
        f"{args.clients} clients, {args.rate} events/s published for {args.seconds} s "
        f"({expected} events each client should get)"
    )
    print(
        f"{'server':<22} {'deliveries/s':>12} {'min/client':>10} {'server cores':>12} "
        f"{'(kernel)':>8} {'other cores':>11} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    )
    for name, result in results.items():
        cores = result["cores"]
        print(
            f"{name:<22} {result['deliveries_per_s']:12,.0f} {result['events_min']:10,} "
            f"{cores[0]:12.2f} {result['system']:8.2f} {sum(cores[1:]):11.2f} "
            f"{result['p50_ms']:7.1f} "
            f"{result['p99_ms']:7.1f} {result['max_ms']:7.1f}"
        )
    if "naive" in results:
        ratio = results["naive"]["cores"][0] / results["ours"]["cores"][0]
        print(f"naive server cores / ours: {ratio:.2f}")


if __name__ == "__main__":
    main()
