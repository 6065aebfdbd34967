"""
``python -m twisted_sessions localsite``: a whole site on this machine in one command.

It starts a Redis Cluster (``--primaries`` primaries, each with ``--replicas`` replicas), N
``twistd sessions`` on it (``--servers``), and HAProxy in front (``--port``), prints where
everything is, and stops it all on Ctrl-C or SIGTERM. Every child dies with it, even if it is
killed. Options after ``--`` go to every server (``-- --stats-token-file token.txt``).

The tests drive the same :class:`LocalSite` (tests/deploy), so this command is what they prove.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .haproxy import haproxy_config
from .processes import free_port, spawn, stop, wait_for_port
from .rediscluster import ClusterSetupError, LocalRedisCluster

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class LocalSite:
    """
    A Redis Cluster, ``servers`` servers on it and HAProxy in front, in ``directory``.

    :param port: HAProxy's port (a free one if ``None``).
    :param server_args: more ``twistd sessions`` options for every server.
    """

    def __init__(
        self,
        directory: Path,
        servers: int = 3,
        primaries: int = 3,
        replicas: int = 0,
        port: int | None = None,
        server_args: Sequence[str] = (),
    ) -> None:
        if servers < 1:
            raise ValueError(f"--servers must be 1 or more, not {servers}")
        haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
        if haproxy is None:
            raise ClusterSetupError("haproxy not found (on Debian: apt-get install haproxy)")
        self._haproxy = haproxy
        self.directory = directory
        self.cluster = LocalRedisCluster(directory / "redis", primaries, replicas)
        self.port = port or free_port()
        self.server_ports = [free_port() for _ in range(servers)]
        self.server_args = list(server_args)
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self.balancer: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """
        The site's address: HAProxy.
        """
        return f"http://127.0.0.1:{self.port}"

    def server_url(self, index: int) -> str:
        """
        Server ``index``'s own address (its stats tree answers loopback clients there).
        """
        return f"http://127.0.0.1:{self.server_ports[index]}"

    def server_id(self, index: int) -> str:
        """
        Server ``index``'s ``--server-id``.
        """
        return f"s{index + 1}"

    def start(self) -> LocalSite:
        """
        Start the cluster, then the servers, then HAProxy; return once all listen.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cluster.start()
        for index in range(len(self.server_ports)):
            self.start_server(index, wait=False)
        for index, port in enumerate(self.server_ports):
            wait_for_port(port, self.servers[index], f"server {self.server_id(index)}", 60)
        config = self.directory / "haproxy.cfg"
        config.write_text(
            haproxy_config(
                self.port,
                [(self.server_id(i), port) for i, port in enumerate(self.server_ports)],
                log=True,
                socket=str(self.directory / "haproxy.sock"),
            )
        )
        self.balancer = spawn(
            [self._haproxy, "-db", "-f", str(config)], self.directory / "haproxy.log"
        )
        wait_for_port(self.port, self.balancer, "haproxy", 15)
        return self

    def start_server(self, index: int, wait: bool = True) -> None:
        """
        Start (or restart) server ``index``.
        """
        name = self.server_id(index)
        data = self.directory / name
        data.mkdir(parents=True, exist_ok=True)
        port = self.server_ports[index]
        self.servers[index] = spawn(
            [
                *TWISTD,
                "--pidfile",
                "",
                "-n",
                "sessions",
                "--port",
                f"tcp:{port}:interface=127.0.0.1",
                "--redis",
                self.cluster.url,
                "--data-dir",
                str(data),
                "--server-id",
                name,
                *self.server_args,
            ],
            self.directory / f"{name}.log",
        )
        if wait:
            wait_for_port(port, self.servers[index], f"server {name}", 60)

    def kill_server(self, index: int) -> None:
        """
        Kill server ``index`` with SIGKILL, as a crash would.
        """
        process = self.servers.pop(index)
        process.kill()
        process.wait()

    def stop_server(self, index: int) -> int:
        """
        Stop server ``index`` as an operator does (SIGTERM: it flushes); its exit status.
        """
        return stop(self.servers.pop(index))

    def stop(self) -> None:
        """
        Stop HAProxy, the servers (each flushes), then the cluster.
        """
        if self.balancer is not None:
            stop(self.balancer)
            self.balancer = None
        for index in list(self.servers):
            self.stop_server(index)
        self.cluster.stop()


def main(argv: list[str]) -> int:
    """
    The command: start the site, print where it is, wait for Ctrl-C or SIGTERM, stop it.
    """
    server_args: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, server_args = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m twisted_sessions localsite",
        description="A Redis Cluster, N twistd sessions and HAProxy on this machine.",
        epilog="Options after -- go to every server (e.g. -- --stats-token-file token.txt).",
    )
    parser.add_argument("--servers", type=int, default=3, help="how many servers (3)")
    parser.add_argument("--primaries", type=int, default=3, help="Redis primaries (3)")
    parser.add_argument("--replicas", type=int, default=0, help="replicas per primary (0)")
    parser.add_argument("--port", type=int, default=8080, help="HAProxy's port (8080)")
    parser.add_argument("--dir", type=Path, default=None, help="where files go (a temp dir)")
    options = parser.parse_args(argv)
    for name in ("servers", "primaries", "replicas", "port"):
        if getattr(options, name) < (0 if name == "replicas" else 1):
            parser.error(f"--{name} must be {'0' if name == 'replicas' else '1'} or more")
    temporary = None
    directory = options.dir
    if directory is None:
        temporary = tempfile.TemporaryDirectory(prefix="twisted-sessions-site-")
        directory = Path(temporary.name)
    try:
        site = LocalSite(
            directory,
            options.servers,
            options.primaries,
            options.replicas,
            options.port,
            server_args,
        )
    except (ValueError, ClusterSetupError) as error:
        parser.error(str(error))
    stopping: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        site.start()
        print(f"site: {site.url}  (HAProxy, files in {directory})")
        print(f"redis: {site.cluster.url}")
        for index in range(options.servers):
            print(f"{site.server_id(index)}: {site.server_url(index)}/stats/")
        print("Ctrl-C stops it all.", flush=True)
        while not stopping:
            time.sleep(0.2)
    except (ClusterSetupError, RuntimeError) as error:
        sys.stderr.write(f"localsite: {error} (logs in {directory})\n")
        return 1
    finally:
        site.stop()
        if temporary is not None:
            temporary.cleanup()
    return 0
