"""
Requests per second through HAProxy with 1, 2 and 3 servers on one 3-primary Redis Cluster,
against one server reached directly, in the same run.

    .venv/bin/python -m bench.cluster_site [--seconds 5] [--rounds 3] [--connections 32]

The site is :class:`~twisted_sessions.deploy.localsite.LocalSite` (what ``python -m
twisted_sessions localsite`` runs) with three servers; HAProxy's runtime API turns servers on
and off between runs (``set server sessions/s2 state maint``), so the 1-, 2- and 3-server runs
share the same processes and the same cluster. wrk (Debian's) sends returning visitors: each
request carries one of 2,000 visitor cookies at random (a Lua script), so the stick table
spreads them over the servers in service and keeps each on one. The baseline is server s1
reached directly, without HAProxy, same cookies. Rounds go 1, 2, 3 servers, then direct; the
median of each is printed, and its ratio to the direct server.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import tempfile
from pathlib import Path

from twisted_sessions.deploy.localsite import LocalSite

VISITORS = """
local ids = {}
for i = 1, 2000 do ids[i] = string.format("%032x", i * 7919) end
math.randomseed(os.time())
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/", {["Cookie"] = "TWISTED_VISITOR=" .. id})
end
"""


def wrk(url: str, seconds: int, connections: int, script: Path) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def runtime(socket_path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(socket_path))
        connection.sendall(command.encode() + b"\n")
        return connection.recv(65536).decode()


def serve_with(site: LocalSite, count: int) -> None:
    for index in range(len(site.server_ports)):
        state = "ready" if index < count else "maint"
        runtime(
            site.directory / "haproxy.sock",
            f"set server sessions/{site.server_id(index)} state {state}",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        directory = Path(tmp)
        script = directory / "visitors.lua"
        script.write_text(VISITORS)
        site = LocalSite(directory / "site", servers=3, primaries=3).start()
        results: dict[str, list[float]] = {}
        try:
            # Warm up every server (and the stick table) once.
            serve_with(site, 3)
            wrk(site.url + "/", 2, options.connections, script)
            for _ in range(options.rounds):
                for count in (1, 2, 3):
                    serve_with(site, count)
                    rate = wrk(site.url + "/", options.seconds, options.connections, script)
                    results.setdefault(f"HAProxy, {count} server(s)", []).append(rate)
                rate = wrk(site.server_url(0) + "/", options.seconds, options.connections, script)
                results.setdefault("s1 directly", []).append(rate)
        finally:
            site.stop()
    base = statistics.median(results["s1 directly"])
    print(f"{options.rounds} rounds of {options.seconds} s, {options.connections} connections")
    for name, rates in results.items():
        median = statistics.median(rates)
        listed = ", ".join(f"{r:,.0f}" for r in rates)
        print(f"{name:>22}: {median:9,.0f} req/s ({listed}), {median / base:.2f}x direct")


if __name__ == "__main__":
    main()
