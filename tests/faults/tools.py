"""Helpers of the faults tier: services as processes, consumer-group offsets."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.infra import ROOT, free_port

PARTITIONS = 2
"""Partitions of every topic a service process creates."""
ON_RUNTIME = frozenset({"intake", "routing", "survey", "followup", "metrics"})
"""Services on the stateful runtime: one consumer group over all their input topics."""


def consumer_group(prefix: str, service: str, topic: str) -> str:
    """The consumer group in which `service` reads `topic` (`prefix`: the test's topics')."""
    if service in ON_RUNTIME:
        return f"lexcare-{prefix}{service}"
    return f"lexcare-{prefix}{service}.{topic}"


class ServiceProcess:
    """One lexcare service run as `python -m services.<name>` (or `module`), its output in a
    file."""

    def __init__(
        self,
        name: str,
        *,
        kafka: str,
        mongo_url: str,
        namespace: str,
        log: Path,
        env: dict[str, str] | None = None,
        module: str | None = None,
    ) -> None:
        self.name = name
        self.module = module or f"services.{name}"
        self.port = free_port()
        self.log = log
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LEXCARE_")},
            "PYTHONPATH": str(ROOT),
            "LEXCARE_KAFKA": kafka,
            "LEXCARE_MONGO_URL": mongo_url,
            "LEXCARE_TOPIC_PREFIX": f"{namespace}.",
            "LEXCARE_MONGO_DB_PREFIX": namespace,
            "LEXCARE_PARTITIONS": str(PARTITIONS),
            "LEXCARE_RETRY_BACKOFF_S": "0.05",
            "LEXCARE_LOG_FORMAT": "json",
            "LEXCARE_HTTP_PORT": str(self.port),
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, **env: str) -> "ServiceProcess":
        """Start (or restart) the process with extra environment `env`."""
        merged = {k: v for k, v in {**self.env, **env}.items() if v is not None}
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=ROOT,
                env=merged,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        return self

    def ready(self) -> bool:
        """True when /readyz answers 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the service is ready; fail if it exits or the deadline passes."""
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self.ready):
            assert self.proc is not None and self.proc.poll() is None, (
                f"{self.name} exited with {self.proc and self.proc.returncode}:\n{self.tail()}"
            )
            assert time.monotonic() < deadline, f"{self.name} not ready:\n{self.tail()}"
            await asyncio.sleep(0.2)

    async def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for the process to end by itself; return its exit status."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"{self.name} still running:\n{self.tail()}"
            await asyncio.sleep(0.1)
        return self.proc.returncode

    def signal(self, sig: int) -> None:
        """Send `sig` to the process."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    async def terminate(self, timeout: float = 40.0) -> int:
        """SIGTERM the process and wait for it (SIGKILL after the timeout)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.signal(signal.SIGTERM)
        try:
            return await self.wait_exit(timeout)
        except AssertionError:
            self.kill()
            raise

    def tail(self, chars: int = 3000) -> str:
        """The end of the process's output."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def assigned(process: ServiceProcess) -> list[list[int]]:
    """The partitions each rebalance gave the process, from its JSON log."""
    found = []
    for line in process.tail(chars=1_000_000).splitlines():
        if '"partitions_assigned"' in line:
            found.append(json.loads(line[line.index("{") :])["partitions"])
    return found


def handled(process: ServiceProcess) -> float:
    """Events the process's runtime handled so far (its Prometheus counter)."""
    url = f"http://127.0.0.1:{process.port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("lexcare_events_handled_total{")
    )


SERVICES = ["intake", "routing", "followup", "survey", "metrics"]

PIPELINE_ENV = {"LEXCARE_PUBLISH_INTERVAL_S": "0.5", "LEXCARE_SURVEY_FATIGUE_DAYS": "0"}
"""Quick KPI publishing, and no survey fatigue so every case in a story is surveyed."""


def pipeline(
    *, kafka: str, mongo_url: str, namespace: str, logs: Path
) -> dict[str, "ServiceProcess"]:
    """The five services as processes (not started) in one test namespace."""
    return {
        name: pipeline_process(
            name, kafka=kafka, mongo_url=mongo_url, namespace=namespace, log=logs / f"{name}.log"
        )
        for name in SERVICES
    }


def pipeline_process(
    name: str, *, kafka: str, mongo_url: str, namespace: str, log: Path
) -> "ServiceProcess":
    """One service of the pipeline as a process (not started): another instance of it when
    the pipeline's is running."""
    return ServiceProcess(
        name, kafka=kafka, mongo_url=mongo_url, namespace=namespace, log=log, env=PIPELINE_ENV
    )


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The offsets consumer group `group` has committed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    """The end offset of every partition of `topic`."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        return await consumer.end_offsets(list(consumer.assignment()))
    finally:
        await consumer.stop()


async def caught_up(bootstrap: str, group: str, topic: str) -> bool:
    """True when `group` has committed every message of `topic`."""
    ends = await end_offsets(bootstrap, topic)
    done = await committed(bootstrap, group)
    return all(done.get(tp, 0) >= end for tp, end in ends.items())


def headers_of(record: Any) -> dict[str, str]:
    """A record's headers decoded."""
    return {k: v.decode(errors="replace") for k, v in record.headers or ()}
