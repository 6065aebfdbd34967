"""
The README tells the truth: its two set-up commands are the ones CI runs, its curl walkthrough
shows a visit in the stats of a real server, and every Python block in it runs.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .twistd_process import Twistd

PROJECT = Path(__file__).resolve().parent.parent
README = (PROJECT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def setup_commands() -> list[str]:
    """
    The first two shell blocks of the README.
    """
    return [code.strip() for lang, code in BLOCKS if lang == "sh"][:2]


def test_readme_starts_with_two_setup_commands() -> None:
    """
    The first code blocks are the two set-up commands: install-and-run, then install-and-test.
    """
    first_blocks = [lang for lang, _ in BLOCKS[:2]]
    assert first_blocks == ["sh", "sh"]
    run, test = setup_commands()
    assert "\n" not in run and "\n" not in test
    assert run.endswith("twistd -n sessions")
    assert "pytest" in test


def test_ci_runs_the_readme_commands() -> None:
    """
    .ci/run runs the README's test command verbatim, and the README's run command through
    .ci/readme-server, which reads it from the README itself.
    """
    ci = (PROJECT / ".ci" / "run").read_text()
    _, test = setup_commands()
    assert test in ci.splitlines()
    assert "bash .ci/readme-server" in ci
    assert "README.md" in (PROJECT / ".ci" / "readme-server").read_text()


@pytest.mark.parametrize(
    "code", [code for lang, code in BLOCKS if lang == "python"], ids=lambda c: c.split("\n")[0]
)
def test_python_blocks_run(code: str) -> None:
    """
    Every Python block of the README runs as written (its asserts included).
    """
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


def test_curl_walkthrough_shows_your_own_visit(tmp_path_factory: pytest.TempPathFactory) -> None:
    """
    The README's curl walkthrough, run line by line as written against a real server (on a
    free port instead of 8080), shows the newcomer's own visit: every line answers JSON, the
    request is counted today and under its resource, and the visit is open.
    """
    [walkthrough] = [code for lang, code in BLOCKS if lang == "sh" and "curl -s -c jar" in code]
    workdir = Path(tmp_path_factory.mktemp("readme"))
    server = Twistd(workdir, "--port", "tcp:0:interface=127.0.0.1", "--data-dir", "data")
    try:
        server.start()
        server.wait_for(r"Redis at unix:\S+ db 0 is reachable")
        # Midnight (UTC) between the visit and the query for "today" would find the visit in
        # yesterday, as it would for a newcomer: then the walkthrough runs again, once.
        for _ in range(2):
            day = datetime.now(UTC).date()
            outputs = []
            for line in walkthrough.strip().splitlines():
                command = line.replace("http://127.0.0.1:8080/", server.url)
                done = subprocess.run(
                    ["bash", "-c", command], cwd=workdir, capture_output=True, text=True, timeout=30
                )
                assert done.returncode == 0, (command, done.stderr)
                outputs.append(done.stdout)
            if datetime.now(UTC).date() == day:
                break
    finally:
        server.stop()
    visit, index, today, by_resource, sessions = outputs
    assert visit == ""
    assert {"metricas", "gauges"} <= json.loads(index).keys()
    assert json.loads(today)["count"] >= 1
    assert "/" in {item["key"] for item in json.loads(by_resource)["items"]}
    assert json.loads(sessions)["active_clustered_sessions"] >= 1
