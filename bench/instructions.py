"""
Instructions per request of the real servers, counted by valgrind's callgrind: a measure this
shared machine's noise cannot move.

    .venv/bin/python -m bench.instructions [--requests 2000] [--cookieless]

Each server runs under ``valgrind --tool=callgrind`` with counting off; after a warm-up, counting
is switched on for exactly ``--requests`` keep-alive GETs from one client, then off. The servers
are the wrk benchmark's (``bench.http_throughput``): bare twisted.web serving ``bench.pages``,
and ``twistd -n sessions --app bench.pages.page`` (the whole pipeline), plus the pipeline with
its counting turned off (``--no-count-requests --no-count-sessions --no-stats``) to tell
tracking from counting.

Callgrind counts user-space instructions only: the kernel's share of a request (the socket
calls, the same for every server) is not in these numbers, so ``bare/this`` here is a lower
bound of the throughput ratio wrk measures. Needs Debian's ``valgrind``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.http_throughput import PROJECT, TWISTD, free_port, wait_for


def requests(port: int, count: int, cookie: str | None) -> None:
    """
    ``count`` GETs of ``/`` on one keep-alive connection, with ``cookie`` if given.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Cookie": cookie} if cookie else {}
    for _ in range(count):
        connection.request("GET", "/", headers=headers)
        connection.getresponse().read()
    connection.close()


def cookie_of(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", "/")
    response = connection.getresponse()
    response.read()
    return "; ".join(c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie") or [])


def instructions(name: str, argv: list[str], port: int, count: int, returning: bool) -> int:
    """
    Instructions the server ``argv`` (listening on ``port``) executes for ``count`` requests.
    """
    work = Path(tempfile.mkdtemp(prefix=f"ts-callgrind-{name.replace(' ', '-')}-"))
    out = work / "callgrind.out"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    server = subprocess.Popen(
        [*valgrind, f"--callgrind-out-file={out}", *argv],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/", timeout=300)
        cookie = cookie_of(port) if returning else None
        requests(port, 300, cookie)  # Warm-up: caches, first-seen axis values, imports.

        def control(*flags: str) -> None:
            subprocess.run(
                ["callgrind_control", *flags, str(server.pid)],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        control("--instr=on")
        requests(port, count, cookie)
        control("--instr=off")
        control("--dump")
        time.sleep(1)
    finally:
        server.terminate()
        server.wait(120)
    total = 0
    for dump in work.glob("callgrind.out*"):
        for found in re.findall(r"^(?:summary|totals): (\d+)", dump.read_text(), flags=re.M):
            total = max(total, int(found))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--cookieless", action="store_true", help="clients that never send cookies back"
    )
    args = parser.parse_args()
    returning = not args.cookieless
    servers: list[tuple[str, list[str], int]] = []
    port = free_port()
    servers.append(("bare twisted.web", [sys.executable, "-m", "bench.pages", str(port)], port))
    for name, extra in (
        ("tracking only", ["--no-count-requests", "--no-count-sessions", "--no-stats"]),
        ("full pipeline", []),
    ):
        port = free_port()
        data = tempfile.mkdtemp(prefix="ts-callgrind-data-")
        argv = [*TWISTD, "--pidfile", "", "-n", "sessions", "--port"]
        argv += [f"tcp:{port}:interface=127.0.0.1", "--data-dir", data]
        servers.append((name, [*argv, "--app", "bench.pages.page", *extra], port))
    results = {}
    for name, argv, port in servers:
        results[name] = instructions(name, argv, port, args.requests, returning) / args.requests
    base = results["bare twisted.web"]
    client = "returning visitor" if returning else "cookieless client"
    print(f"{args.requests} requests, {client}")
    for name, per_request in results.items():
        print(
            f"{name:<18} {per_request:10,.0f} instructions/request"
            f"  +{per_request - base:8,.0f}  bare/this {base / per_request:.2f}"
        )


if __name__ == "__main__":
    main()
