"""
Instructions per request, counted by valgrind's callgrind: the same request path as
``bench.request_cost`` (a real ``HTTPChannel`` on an in-memory transport), measured in a unit this
shared machine's noise cannot move.

    .venv/bin/python -m bench.instructions [--requests 2000]

Each configuration of ``bench.request_cost`` (bare twisted.web without and with the same
cookies, tracking, clusterer, the whole pipeline for a returning and for a new visitor) runs in
a fresh ``python`` under ``valgrind --tool=callgrind`` twice, serving 500 and then
``500 + --requests`` requests; the difference of the two totals divided by ``--requests`` is
the cost of one request, start-up and warm-up cancelled out. Whatever else the machine does,
the configurations of one run compare to within about half a percent; separate runs of the
same code differ by up to 2% (object addresses decide some dictionaries' layouts), so compare
configurations within a run.

What this leaves out is the same for every server: the reactor's socket calls and the kernel.
So ``bare/this`` here is the ratio of the Python work per request, a lower bound of the
throughput ratio that wrk measures over a real socket. Needs Debian's ``valgrind``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.http_throughput import PROJECT

WARM_UP = 500
CONFIGURATIONS = (
    "bare",
    "bare, same cookies",
    "tracking",
    "clusterer",
    "counting",
    "pipeline, no streams",
    "pipeline, no metrics",
    "pipeline",
    "pipeline, new visitors",
)


def serve(configuration: str, count: int) -> None:
    """
    In the process being counted: build ``configuration`` and serve ``count`` requests.
    """
    from twisted.internet import reactor

    from bench.request_cost import configurations, drive, request_for

    site = configurations(reactor, Path(tempfile.mkdtemp(prefix="ts-bench-")))[configuration]()
    drive(site, request_for(configuration, site), count)


def total_instructions(configuration: str, count: int) -> int:
    """
    Instructions of a whole ``python`` process serving ``count`` requests.
    """
    with tempfile.TemporaryDirectory(prefix="ts-callgrind-") as work:
        out = Path(work) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.instructions",
                "--serve",
                configuration,
                str(count),
            ],
            cwd=PROJECT,
            # A fixed hash seed: string hashing decides dict layouts, hence instructions.
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        found = re.findall(r"^(?:summary|totals): (\d+)", out.read_text(), flags=re.M)
        return max(int(number) for number in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--serve", nargs=2, metavar=("CONFIGURATION", "COUNT"), help="internal")
    parser.add_argument(
        "--only",
        action="append",
        choices=CONFIGURATIONS,
        help="count only these configurations (repeatable; bare is always counted)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    per_request = {}
    chosen = [c for c in CONFIGURATIONS if not args.only or c in args.only or c == "bare"]
    for configuration in chosen:
        before = total_instructions(configuration, WARM_UP)
        after = total_instructions(configuration, WARM_UP + args.requests)
        per_request[configuration] = (after - before) / args.requests
    base = per_request["bare"]
    print(f"instructions per request, {args.requests} requests counted")
    for configuration, cost in per_request.items():
        print(
            f"{configuration:<22} {cost:9,.0f}  +{cost - base:7,.0f}  bare/this {base / cost:.2f}"
        )


if __name__ == "__main__":
    main()
