"""
schemathesis against the OpenAPI document a real server serves, with all its checks: every
answer has a documented status and matches its schema, every request the document allows is
accepted, every one it forbids is a 400, and nothing is a 5xx.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path

from ..twistd_process import Twistd

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
TOKEN = "schemathesis-token-0123456789"


def run_schemathesis(url: str, *options: str) -> str:
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            url,
            "--checks",
            "all",
            "--max-examples",
            "40",
            # A fixed seed: the same cases on every run, so CI is repeatable. Run it by hand
            # without --seed (and with more examples) to explore further.
            "--seed",
            "20261203",
            "--no-color",
            # A stream's response never ends; tests/streams reads it with real SSE clients.
            "--exclude-path-regex",
            "/stream/",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def start(workdir: Path, servers: list[Twistd], *args: str) -> Twistd:
    server = Twistd(
        workdir, "--port", "tcp:0:interface=127.0.0.1", "--data-dir", "data", *args
    ).start()
    servers.append(server)
    server.wait_for(r"Redis at unix:\S+ db 0 is reachable")
    # Some traffic, so that the stored axes have values to filter and iterate by.
    for path in ("", "a", "b?x=1", "nothing/here"):
        with contextlib.suppress(OSError):  # a 404 is traffic too
            server.get(path)
    return server


def test_the_served_document_holds(workdir: Path, servers: list[Twistd]) -> None:
    """
    Without a token (a loopback client), every operation of every metrica passes every check.
    """
    server = start(workdir, servers)
    output = run_schemathesis(server.url + "stats/openapi.json")
    tested = re.search(r"Tested: (\d+)", output)
    # The index, the list and the sessions, 3 views of each of the 3 built-in metricas, the
    # activity list, an event's users and the cohort table, and the Prometheus metrics
    # (schemathesis leaves out the document it reads): a document that lost its paths would
    # pass vacuously.
    assert tested is not None and int(tested.group(1)) == 16, output[-3000:]
    assert "No issues found" in output


def test_the_document_with_a_token_holds(workdir: Path, servers: list[Twistd]) -> None:
    """
    With a token, the document declares the bearer security: requests with it pass every
    check, and schemathesis's own check that a request without it is refused (401) holds.
    """
    token_file = workdir / "token"
    token_file.write_text(TOKEN)
    server = start(workdir, servers, "--stats-token-file", str(token_file))
    output = run_schemathesis(
        server.url + "stats/openapi.json", "--header", f"Authorization: Bearer {TOKEN}"
    )
    assert "No issues found" in output
