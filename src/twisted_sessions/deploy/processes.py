"""
Child processes of the local site: started so that they die with their parent, even one killed
with SIGKILL (through the embedded Redis's orphan guard), and waited for by their ports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..storage import _orphan_guard

GUARD = Path(_orphan_guard.__file__)


def free_port() -> int:
    """
    A loopback TCP port nothing listens on now.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spawn(command: Sequence[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """
    Start ``command`` with its output in ``log``; it gets SIGTERM when this process dies.
    """
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, str(GUARD), str(os.getpid()), *command],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    """
    Return once ``127.0.0.1:port`` accepts connections.

    :raises RuntimeError: naming ``what`` if the process exits or ``timeout`` passes first.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """
    SIGTERM, then SIGKILL after ``timeout`` seconds; the exit status.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
