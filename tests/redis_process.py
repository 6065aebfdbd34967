"""
A real ``redis-server`` for tests: started by the test run on a private unix socket in a
temporary directory, never the machine's server on 6379, and always stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from twisted_sessions.storage import RedisAddress
from twisted_sessions.storage.embedded import find_redis_server


class RedisProcess:
    """
    One ``redis-server`` child on a unix socket, no persistence unless asked.
    """

    def __init__(self, directory: Path | None = None, appendonly: bool = False) -> None:
        self._tmp = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ts-redis-")
            directory = Path(self._tmp.name)
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> RedisAddress:
        """
        Where the server listens.
        """
        return RedisAddress(path=str(self.socket))

    def start(self) -> RedisProcess:
        """
        Start the server and wait until it accepts connections.
        """
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                find_redis_server(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                # Durable at once: a SIGKILL must not lose what was acknowledged.
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("test redis-server did not start")
            time.sleep(0.01)
        return self

    def kill(self) -> None:
        """
        Kill the server abruptly (SIGKILL), as a crash would.
        """
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """
        Stop the server and clean up.
        """
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
