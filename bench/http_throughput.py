"""
Requests per second of ``twistd -n sessions`` (the whole pipeline: sessions, clusterer,
built-in metricas, writer) against bare twisted.web, same page, same run; and the latency of a
month's iteration on the stats endpoint.

    .venv/bin/python -m bench.http_throughput [--seconds 3] [--pairs 10] [--connections 10]

Both servers serve ``bench.pages.page`` on loopback and stay up for the whole run; wrk (Debian's)
drives one at a time, in ``--pairs`` pairs of short runs (bare then ours, ours then bare, ...):
on this shared machine the speed drifts by ±15% within seconds, so each pair's ratio is taken
and the median of those is the result. Two client behaviours for our server:

- ``returning``: every request carries a valid session and visitor cookie (a session is found
  and touched, the common case);
- ``cookieless``: no request sends the cookies back (a new session and visitor id per request:
  the worst case, bots and load balancer checks).

Besides requests per second, each run reads the CPU time the server process (with its embedded
Redis) used from ``/proc``: CPU per request, which time stolen from this virtual machine by its
host does not inflate the way it does wall-clock throughput. ``bare/ours`` CPU per request is the
throughput ratio of a CPU-bound server on a quiet machine.

With ``--stream-clients N``, N SSE clients read our ``requests`` stream during the whole run
(each request ours serves is an event delivered to each of them).

Prints each pair, then per client behaviour the median rates, p99s and CPU per request, and
the median (and quartiles) of the per-pair ratios; then the stats endpoint's latency.
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


#: ``taskset`` prefixes pinning the servers and wrk to separate cores (``--pin``), or none.
PIN_SERVER: list[str] = []
PIN_CLIENT: list[str] = []


def start(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.Popen(
        [*PIN_SERVER, *argv], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(url: str, seconds: int, connections: int, headers: list[str]) -> tuple[float, str, int]:
    """
    One wrk run: requests per second, p99 latency as wrk prints it, requests made.
    """
    argv = [*PIN_CLIENT, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for header in headers:
        argv += ["-H", header]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", out, flags=re.M)
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rate, p99.group(1) if p99 else "?", count


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


def cpu_seconds(pid: int) -> float:
    """
    CPU time (user + system) used so far by process ``pid`` and its children still running
    (our server's embedded Redis): what the server costs, whatever else the machine does.
    """
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    pids += [int(child) for child in children]
    tick = os.sysconf("SC_CLK_TCK")
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def p99_ms(text: str) -> float:
    """
    wrk's p99 (``850.00us``, ``1.20ms``, ``2.01s``) in milliseconds.
    """
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--seconds", type=int, default=3, help="length of one wrk run")
    parser.add_argument("--pairs", type=int, default=10, help="wrk runs per server and client")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument(
        "--pin", action="store_true", help="servers on the last core, wrk on the first (taskset)"
    )
    parser.add_argument(
        "--stream-clients",
        type=int,
        default=0,
        help="SSE clients of our requests stream connected during the run (bench/sse_reader.c)",
    )
    args = parser.parse_args()
    if args.pin:
        last = os.cpu_count() or 1
        PIN_SERVER[:] = ["taskset", "-c", str(last - 1)]
        PIN_CLIENT[:] = ["taskset", "-c", "0"]
    work = Path(tempfile.mkdtemp(prefix="ts-bench-"))
    bare_port, our_port = free_port(), free_port()
    bare = start([sys.executable, "-m", "bench.pages", str(bare_port)], work)
    ours = start(
        [
            *TWISTD,
            "--pidfile",
            "",
            "-n",
            "sessions",
            "--port",
            f"tcp:{our_port}:interface=127.0.0.1",
            "--data-dir",
            str(work / "data"),
            "--app",
            "bench.pages.page",
        ],
        work,
    )
    try:
        bare_url, our_url = f"http://127.0.0.1:{bare_port}/", f"http://127.0.0.1:{our_port}/"
        wait_for(bare_url)
        wait_for(f"{our_url}stats/metricas/requests")  # 503 until the embedded Redis is up.
        cookie = session_cookies(our_url)
        readers = None
        if args.stream_clients:
            from bench.stream_fanout import build_reader

            # Every request ours serves is then an event delivered to each of them.
            readers = subprocess.Popen(
                [
                    str(build_reader(work)),
                    "127.0.0.1",
                    str(our_port),
                    "/stats/stream/requests",
                    str(args.stream_clients),
                    "100000",
                    "0",
                ],
                stdout=subprocess.DEVNULL,
            )
            time.sleep(2)
        for url, headers in ((bare_url, []), (our_url, [cookie])):  # Warm-up, not counted.
            wrk(url, args.seconds, args.connections, headers)
        pids = {"bare": bare.pid, "bare, same cookies": bare.pid, "ours": ours.pid}
        plans: dict[str, list[tuple[str, str, list[str]]]] = {
            # The baseline as the issue puts it (a bare site gets no cookies), and bare
            # twisted.web receiving the very requests ours does (it parses the same cookies).
            "returning": [
                ("bare", bare_url, []),
                ("bare, same cookies", bare_url, [cookie]),
                ("ours", our_url, [cookie]),
            ],
            "cookieless": [("bare", bare_url, []), ("ours", our_url, [])],
        }
        median = statistics.median
        for kind, runs in plans.items():
            rates: dict[str, list[float]] = {name: [] for name, _, _ in runs}
            p99s: dict[str, list[float]] = {name: [] for name, _, _ in runs}
            cpus: dict[str, list[float]] = {name: [] for name, _, _ in runs}
            for pair in range(args.pairs):
                # Rotating which goes first cancels a drift of the machine's speed.
                shift = pair % len(runs)
                for name, url, headers in runs[shift:] + runs[:shift]:
                    used = cpu_seconds(pids[name])
                    rate, p99, count = wrk(url, args.seconds, args.connections, headers)
                    cpus[name].append((cpu_seconds(pids[name]) - used) / count * 1e6)
                    rates[name].append(rate)
                    p99s[name].append(p99_ms(p99))
                print(
                    f"{kind} {pair}: "
                    + ", ".join(
                        f"{name} {rates[name][-1]:.0f} req/s {cpus[name][-1]:.1f} us CPU"
                        for name, _, _ in runs
                    )
                )
            for name, _, _ in runs:
                print(
                    f"== {kind}, {name}: {median(rates[name]):.0f} req/s, p99 "
                    f"{median(p99s[name]):.2f} ms, {median(cpus[name]):.1f} us CPU/request"
                )
            for name, _, _ in runs[:-1]:
                ratios = [o / b for o, b in zip(rates["ours"], rates[name], strict=True)]
                cpu = [b / o for o, b in zip(cpus["ours"], cpus[name], strict=True)]
                print(
                    f"== {kind}: ours / {name}: req/s {median(ratios):.2f} (quartiles "
                    f"{' '.join(f'{q:.2f}' for q in statistics.quantiles(ratios, n=4))}), "
                    f"by CPU per request {median(cpu):.2f} (quartiles "
                    f"{' '.join(f'{q:.2f}' for q in statistics.quantiles(cpu, n=4))})"
                )
        print(
            f"== stats: a month's iteration over HTTP (requests metrica): "
            f"{stats_latency(our_url):.1f} ms median"
        )
        if readers is not None:
            readers.terminate()
    finally:
        stop(bare)
        stop(ours)


if __name__ == "__main__":
    main()
