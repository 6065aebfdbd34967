"""
``python -m twisted_sessions localsite``: the one command that starts a Redis Cluster, the
servers and HAProxy, and stops them all.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

from twisted_sessions.deploy.processes import free_port

COMMAND = [sys.executable, "-m", "twisted_sessions", "localsite"]


def test_bad_options_are_named() -> None:
    done = subprocess.run([*COMMAND, "--servers", "0"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "--servers must be 1 or more" in done.stderr
    assert "Traceback" not in done.stderr


def test_starts_serves_and_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    directory = tmp_path / "site"
    process = subprocess.Popen(
        [*COMMAND, "--servers", "2", "--port", str(port), "--dir", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops it all" in line:
                break
        printed = "".join(lines)
        assert f"site: http://127.0.0.1:{port}" in printed
        assert "redis: redis+cluster://127.0.0.1:" in printed
        with urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
            assert "TWISTED_VISITOR" in response.headers.get("Set-Cookie", "") + "".join(
                response.headers.get_all("Set-Cookie") or []
            )
        pids = _children(process.pid)
        assert len(pids) == 2 + 3 + 1  # Two servers, three primaries, HAProxy.
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        if process.poll() is None:
            process.kill()


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
