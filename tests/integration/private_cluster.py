"""A 3-broker cluster of one's own on free ports (scripts/kafka/cluster.sh), and replica checks.

`cluster.sh` blocks for seconds: from async tests call the methods via `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.support.private_broker import KAFKA_HOME

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = ROOT / "scripts" / "kafka" / "cluster.sh"
NODES = (1, 2, 3)


@dataclass(frozen=True)
class PrivateCluster:
    """Nodes 1-3 on `ports` (brokers) and `controller_ports`; data under var/kafka per port."""

    ports: tuple[int, int, int]
    controller_ports: tuple[int, int, int]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def up(self, node: int | None = None) -> None:
        """Start every stopped node (or just `node`) and wait until all 3 brokers are registered."""
        self._script("up", *([] if node is None else [str(node)]))

    def kill(self, node: int) -> None:
        """SIGKILL one node, as a crash would; its data stays for `up(node)`."""
        self._script("kill", str(node))

    def remove(self) -> None:
        """Stop every node and delete their data, configs and logs."""
        self._script("reset")
        for port in self.ports:
            (KAFKA_HOME / f"server-{port}.properties").unlink(missing_ok=True)
            (KAFKA_HOME / "logs" / f"server-{port}.log").unlink(missing_ok=True)

    def rss_kb(self) -> dict[int, int]:
        """Resident memory of each running node, in KiB (from /proc)."""
        sizes = {}
        for node, port in zip(NODES, self.ports, strict=True):
            pid = (KAFKA_HOME / f"kafka-{port}.pid").read_text().strip()
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            sizes[node] = int(next(ln for ln in status if ln.startswith("VmRSS")).split()[1])
        return sizes

    def _script(self, *args: str) -> None:
        env = dict(os.environ)
        env["KAFKA_CLUSTER_PORTS"] = " ".join(map(str, self.ports))
        env["KAFKA_CLUSTER_CONTROLLER_PORTS"] = " ".join(map(str, self.controller_ports))
        subprocess.run([str(CLUSTER_SCRIPT), *args], env=env, check=True, timeout=180)


async def describe_partitions(bootstrap: str, topics: Iterable[str]) -> dict[str, list[Any]]:
    """Each topic's partitions as the metadata reports them (leader, replicas, isr)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return {topic["topic"]: topic["partitions"] for topic in described}


async def topic_config(bootstrap: str, topics: Iterable[str], name: str) -> dict[str, str]:
    """The value of config `name` of each topic, as the brokers report it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, topic, {name: None}) for topic in topics
        ]
        [response] = await admin.describe_configs(resources)
    finally:
        await admin.close()
    values = {}
    for error_code, _, _, topic, entries in response.resources:
        assert error_code == 0, (topic, error_code)
        values[topic] = next(entry[1] for entry in entries if entry[0] == name)
    return values


async def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> node id of its leader."""
    [partitions] = (await describe_partitions(bootstrap, [topic])).values()
    return {p["partition"]: p["leader"] for p in partitions}


async def wait_fully_replicated(
    bootstrap: str, topics: Iterable[str], timeout: float = 90.0
) -> None:
    """Until every partition of `topics` has all 3 replicas in sync (a restarted node caught up)."""
    topics = list(topics)
    deadline = time.monotonic() + timeout
    lagging: list[tuple[str, int]] = []
    while time.monotonic() < deadline:
        try:
            described = await describe_partitions(bootstrap, topics)
        except Exception as error:  # metadata from a node still starting
            lagging = [("?", -1)]
            last_error: object = error
        else:
            lagging = [
                (topic, p["partition"])
                for topic, partitions in described.items()
                for p in partitions
                if sorted(p["isr"]) != sorted(p["replicas"]) or len(p["replicas"]) != 3
            ]
            last_error = None
            if not lagging:
                return
        await asyncio.sleep(0.5)
    raise AssertionError(f"not fully replicated after {timeout:.0f} s: {lagging} ({last_error!r})")
