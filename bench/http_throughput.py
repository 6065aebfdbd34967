"""
Requests per second of ``twistd -n sessions`` (the whole pipeline: sessions, clusterer,
built-in metricas, writer) against bare twisted.web, same page, same run; and the latency of a
month's iteration on the stats endpoint.

    .venv/bin/python -m bench.http_throughput [--seconds 10] [--rounds 2] [--connections 10]

Both servers serve ``bench.pages.page`` on loopback; wrk (Debian's) drives them, one after the
other, alternating for ``--rounds``. Two client behaviours for our server:

- ``returning``: every request carries a valid session and visitor cookie (a session is found
  and touched, the common case);
- ``cookieless``: no request sends the cookies back (a new session and visitor id per request:
  the worst case, bots and load balancer checks).

Prints each measurement and the ratio of medians against the baseline.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(url: str, seconds: int, connections: int, headers: list[str]) -> tuple[float, str]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for header in headers:
        argv += ["-H", header]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", out, flags=re.M)
    return rate, p99.group(1) if p99 else "?"


def stats_latency(url: str, tries: int = 20) -> float:
    """
    Median milliseconds of ``GET /stats/metricas/requests/iterate`` over the current month,
    after the load (so the month holds counts).
    """
    month = time.strftime("%Y-%m", time.gmtime())
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        with urllib.request.urlopen(f"{url}stats/metricas/requests/iterate?timespan={month}"):
            pass
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def session_cookies(url: str) -> str:
    with urllib.request.urlopen(url) as response:
        pairs = [c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie")]
    return "Cookie: " + "; ".join(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ts-bench-"))
    results: dict[str, list[float]] = {"bare": [], "returning": [], "cookieless": []}
    latencies: list[float] = []
    for round_number in range(args.rounds):
        port = free_port()
        bare = start([sys.executable, "-m", "bench.pages", str(port)], work)
        url = f"http://127.0.0.1:{port}/"
        wait_for(url)
        rate, p99 = wrk(url, args.seconds, args.connections, [])
        stop(bare)
        results["bare"].append(rate)
        print(f"round {round_number}: bare twisted.web       {rate:9.0f} req/s  p99 {p99}")

        port = free_port()
        ours = start(
            [
                *TWISTD,
                "--pidfile",
                "",
                "-n",
                "sessions",
                "--port",
                f"tcp:{port}:interface=127.0.0.1",
                "--data-dir",
                str(work / "data"),
                "--app",
                "bench.pages.page",
            ],
            work,
        )
        url = f"http://127.0.0.1:{port}/"
        wait_for(url)
        cookie = session_cookies(url)
        for kind, headers in (("returning", [cookie]), ("cookieless", [])):
            rate, p99 = wrk(url, args.seconds, args.connections, headers)
            results[kind].append(rate)
            print(f"round {round_number}: sessions, {kind:<12} {rate:9.0f} req/s  p99 {p99}")
        latencies.append(stats_latency(url))
        stop(ours)
    print(
        f"stats: a month's iteration over HTTP (requests metrica, 31 days): "
        f"{statistics.median(latencies):.1f} ms median"
    )
    base = statistics.median(results["bare"])
    print()
    print(f"median bare twisted.web: {base:.0f} req/s")
    for kind in ("returning", "cookieless"):
        ours_rate = statistics.median(results[kind])
        # Also round by round against the bare server measured just before: steadier on a
        # shared machine than a ratio of medians.
        per_round = statistics.median(
            o / b for o, b in zip(results[kind], results["bare"], strict=True)
        )
        print(
            f"median sessions ({kind}): {ours_rate:.0f} req/s = {ours_rate / base:.2f} x bare"
            f" (median of per-round ratios: {per_round:.2f})"
        )


if __name__ == "__main__":
    main()
