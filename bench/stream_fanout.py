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
import urllib.request
from pathlib import Path
from typing import Any

from bench.http_throughput import PROJECT, TWISTD, free_port, wait_for

SAMPLED = 10


def cpu(pid: int) -> float:
    """
    CPU seconds (user + system) process ``pid`` used so far.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    return subprocess.Popen(
        argv,
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def ours(port: int, work: Path, *extra: str) -> subprocess.Popen[bytes]:
    return start(
        [
            *TWISTD,
            "--pidfile",
            "",
            "-n",
            "sessions",
            "--port",
            f"tcp:{port}:interface=127.0.0.1",
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


def get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()


def run(
    reader: Path,
    clients_port: int,
    path: str,
    publish_url: str,
    measured: list[int],
    args: argparse.Namespace,
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
    time.sleep(3)  # Every client connected and subscribed.
    before = [cpu(pid) for pid in measured]
    started = time.monotonic()
    get(f"{publish_url}start?rate={args.rate}&seconds={args.seconds}")
    time.sleep(args.seconds)
    elapsed = time.monotonic() - started
    used = [(cpu(pid) - b) / elapsed for pid, b in zip(measured, before, strict=True)]
    out, _ = clients.communicate(timeout=60)
    result: dict[str, Any] = json.loads(out)
    result["cores"] = used
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
        results["ours"] = run(reader, port, "/stats/stream/bench", url, measured, args)
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
            results["ours, through Redis"] = run(
                reader, port, "/stats/stream/remote", other_url, [*measured, other.pid], args
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
    print(
        f"{args.clients} clients, {args.rate} events/s published for {args.seconds} s "
        f"({expected} events each client should get)"
    )
    print(
        f"{'server':<22} {'deliveries/s':>12} {'min/client':>10} {'server cores':>12} "
        f"{'other cores':>11} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    )
    for name, result in results.items():
        cores = result["cores"]
        print(
            f"{name:<22} {result['deliveries_per_s']:12,.0f} {result['events_min']:10,} "
            f"{cores[0]:12.2f} {sum(cores[1:]):11.2f} {result['p50_ms']:7.1f} "
            f"{result['p99_ms']:7.1f} {result['max_ms']:7.1f}"
        )
    if "naive" in results:
        ratio = results["naive"]["cores"][0] / results["ours"]["cores"][0]
        print(f"naive server cores / ours: {ratio:.2f}")


if __name__ == "__main__":
    main()
