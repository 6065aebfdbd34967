"""
A real ``twistd -n sessions`` in a child process, for end-to-end tests over a real port.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.request import HTTPCookieProcessor, build_opener

PROJECT = Path(__file__).resolve().parent.parent
#: ``twistd`` run by this interpreter (``python -m twisted`` is the newer ``twist`` runner).
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
_LISTENING = re.compile(r"listening on (http://\S+/)")


def live_processes_mentioning(text: str) -> list[int]:
    """
    Pids of processes (not zombies) whose command line contains ``text``.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


class Twistd:
    """
    ``python -m twisted -n sessions ARGS`` with its output in a file.
    """

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.log_path = workdir / "twistd.out"
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.opener = build_opener(HTTPCookieProcessor(CookieJar()))

    def start(self, wait: bool = True) -> Twistd:
        """
        Start the server; with ``wait``, until it says where it listens.
        """
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [*TWISTD, "--pidfile", "", "-n", "sessions", *self.args],
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        if wait:
            self.wait_for(_LISTENING)
            match = _LISTENING.search(self.output)
            assert match is not None
            self.url = match.group(1)
        return self

    @property
    def output(self) -> str:
        """
        Everything the server printed so far.
        """
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: re.Pattern[str] | str, timeout: float = 20) -> None:
        """
        Wait until the output matches ``pattern``.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while not regex.search(self.output):
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"twistd exited:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{regex.pattern!r} not seen in:\n{self.output}")
            time.sleep(0.05)

    def get(self, path: str = "") -> tuple[int, str]:
        """
        GET a path over the real port, keeping cookies like a browser.
        """
        with self.opener.open(self.url + path, timeout=10) as response:
            return response.status, response.read().decode()

    def signal(self, signum: int) -> None:
        """
        Send ``signum`` to the server.
        """
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def wait(self, timeout: float = 30) -> int:
        """
        Wait for the server to exit; its exit code.
        """
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        """
        Make sure the server is gone (test cleanup).
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


def run_twistd(workdir: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """
    Run ``twistd -n sessions ARGS`` to completion (for usage errors).
    """
    return subprocess.run(
        [*TWISTD, "--pidfile", "", "-n", "sessions", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
