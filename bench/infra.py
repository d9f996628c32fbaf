"""Broker, database and service processes for the benchmarks; lag, memory and documents.

The broker and database are the ones in LEXCARE_KAFKA / LEXCARE_MONGO_URL when both are
set; otherwise deploy/local's Kafka and FerretDB on free ports in a temporary directory,
purged at the end (the same helper the tests use).
"""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from tests.infra import Infra, _local_processes, free_port

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("intake", "routing", "followup", "survey", "metrics")


@contextlib.contextmanager
def provide_infra() -> Iterator[Infra]:
    """The broker and database: from the environment, else started here and purged after."""
    kafka, mongo = os.environ.get("LEXCARE_KAFKA"), os.environ.get("LEXCARE_MONGO_URL")
    if kafka and mongo:
        yield Infra(kafka, mongo, "external")
    else:
        with _local_processes() as infra:
            yield infra


def rss_mib(pid: int) -> float | None:
    """Resident memory of process `pid` in MiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time process `pid` used so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(port: int, names: tuple[str, ...]) -> dict[str, float]:
    """The values of unlabelled gauges `names` on a service's /metrics (absent: left out)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            found[name] = float(value)
    return found


@dataclass
class ServiceProcess:
    """One service run as `python -m services.<name>` with its LEXCARE_* environment."""

    name: str
    infra: Infra
    topic_prefix: str
    db_prefix: str
    extra_env: dict[str, str] = field(default_factory=dict)
    profile_to: Path | None = None
    """Run under pyinstrument and write its text report here when the service stops."""
    trace_to: Path | None = None
    """Run under tracemalloc (bench.traced): `trace_sample` writes a report in this dir."""
    trim: bool = False
    """Run under bench.trimmed: `give_back` makes it return its free heap to the system."""
    stalls_to: Path | None = None
    """Watch its event loop (bench.stalls): each stall over `stalls_ms` is appended here."""
    stalls_ms: float = 0.0
    port: int = 0
    proc: subprocess.Popen | None = None
    log: Path | None = None

    def start(self, log_dir: Path) -> None:
        """Start the process (logs at WARNING, JSON, to a file under log_dir)."""
        self.port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "LEXCARE_KAFKA": self.infra.kafka,
            "LEXCARE_MONGO_URL": self.infra.mongo_url,
            "LEXCARE_TOPIC_PREFIX": self.topic_prefix,
            "LEXCARE_MONGO_DB_PREFIX": self.db_prefix,
            "LEXCARE_HTTP_PORT": str(self.port),
            "LEXCARE_LOG_LEVEL": "WARNING",
            "LEXCARE_LOG_FORMAT": "json",
            **self.extra_env,
        }
        if self.stalls_to is not None:
            env |= {
                "BENCH_STALLS_FILE": str(self.stalls_to),
                "BENCH_STALLS_MS": str(self.stalls_ms),
            }
        self.log = log_dir / f"{self.topic_prefix}{self.name}.log"
        command = [sys.executable, "-m", f"services.{self.name}"]
        if self.profile_to is not None:
            command = [sys.executable, "-m", "bench.profiled", self.name, str(self.profile_to)]
        elif self.trace_to is not None:
            command = [sys.executable, "-m", "bench.traced", self.name, str(self.trace_to)]
        elif self.trim:
            command = [sys.executable, "-m", "bench.trimmed", self.name]
        elif self.stalls_to is not None:
            command = [sys.executable, "-m", "bench.stalls", self.name]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.proc is not None
        return self.proc.pid

    def ready(self) -> bool:
        """True when /readyz answers 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def sample(self) -> None:
        """At a growth sample: a traced service writes its memory report (bench.traced), a
        trimmed one returns its free heap (bench.trimmed); others are left alone."""
        if (self.trace_to is not None or self.trim) and self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGUSR2)

    def heap(self) -> dict[str, float]:
        """What a trimmed service's allocators held at its last sample, MiB (the line
        bench.trimmed writes to its log; empty when there is none)."""
        if self.log is None or not self.log.exists():
            return {}
        for line in reversed(self.log.read_text(errors="replace").splitlines()):
            if line.startswith('{"bench_heap"'):
                return json.loads(line)["bench_heap"]
        return {}

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM, wait for the graceful shutdown, SIGKILL if it overruns."""
        if not self.alive():
            return
        assert self.proc is not None
        if self.profile_to is not None:
            self.proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 30
            while not self.profile_to.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def wait_ready(services: list[ServiceProcess], timeout: float = 120.0) -> None:
    """Wait until every service answers /readyz (fail if one exits or the deadline passes)."""
    deadline = time.monotonic() + timeout
    waiting = list(services)
    while waiting:
        for svc in list(waiting):
            if not svc.alive():
                tail = svc.log.read_text()[-2000:] if svc.log else ""
                raise RuntimeError(f"{svc.name} exited: {tail}")
            if await asyncio.to_thread(svc.ready):
                waiting.remove(svc)
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout}s: {[s.name for s in waiting]}")
        await asyncio.sleep(0.2)


class Kafka:
    """Admin operations the benchmark needs: topics, end offsets, committed offsets."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.offsets = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)

    async def __aenter__(self) -> "Kafka":
        await self.admin.start()
        await self.offsets.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.offsets.stop()
        await self.admin.close()

    async def create(self, names: list[str], partitions: int = 3) -> None:
        """Create topics that do not exist yet."""
        existing = set(await self.admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if missing:
            await self.admin.create_topics(missing)

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The topic's partitions (empty if it does not exist)."""
        parts = await self.offsets._client.fetch_all_metadata()  # one metadata round trip
        ids = parts.partitions_for_topic(topic) or set()
        return [TopicPartition(topic, p) for p in sorted(ids)]

    async def end_offsets(self, topics: list[str]) -> dict[TopicPartition, int]:
        """Current end offset of every partition of `topics`."""
        tps = [tp for t in topics for tp in await self.partitions(t)]
        return await self.offsets.end_offsets(tps) if tps else {}

    async def committed(self, group_prefix: str) -> dict[TopicPartition, int]:
        """Committed offsets of every consumer group whose id starts with `group_prefix`,
        summed over the groups (records handled; a lag needs `committed_by_group`)."""
        result: dict[TopicPartition, int] = {}
        for offsets in (await self.committed_by_group(group_prefix)).values():
            for tp, offset in offsets.items():
                result[tp] = result.get(tp, 0) + offset
        return result

    async def committed_by_group(self, group_prefix: str) -> dict[str, dict[TopicPartition, int]]:
        """Committed offsets of each consumer group whose id starts with `group_prefix`."""
        groups = [g[0] for g in await self.admin.list_consumer_groups()]
        result: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            if group.startswith(group_prefix):
                offsets = await self.admin.list_consumer_group_offsets(group)
                result[group] = {tp: m.offset for tp, m in offsets.items() if m.offset >= 0}
        return result

    async def delete_prefix(self, prefix: str) -> None:
        """Delete every topic under `prefix` (frees the broker's file handles)."""
        names = [t for t in await self.admin.list_topics() if t.startswith(prefix)]
        with contextlib.suppress(Exception):
            if names:
                await self.admin.delete_topics(names)


async def document_counts(mongo_url: str, db_prefix: str) -> dict[str, dict[str, int]]:
    """Documents per collection of every service database `<db_prefix>_<service>`."""
    client: AsyncMongoClient = AsyncMongoClient(mongo_url)
    try:
        counts: dict[str, dict[str, int]] = {}
        for name in await client.list_database_names():
            if not name.startswith(f"{db_prefix}_"):
                continue
            db = client[name]
            service = name.removeprefix(f"{db_prefix}_")
            counts[service] = {
                c: await db[c].count_documents({}) for c in sorted(await db.list_collection_names())
            }
        return counts
    finally:
        await client.close()


async def drop_databases(mongo_url: str, db_prefix: str) -> None:
    """Drop every database under `db_prefix` (the benchmark's own)."""
    client: AsyncMongoClient = AsyncMongoClient(mongo_url)
    try:
        for name in await client.list_database_names():
            if name.startswith(f"{db_prefix}_"):
                await client.drop_database(name)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def running(services: list[ServiceProcess], log_dir: Path) -> AsyncIterator[None]:
    """Start the services, wait until ready, stop them at the end."""
    try:
        for svc in services:
            svc.start(log_dir)
        await wait_ready(services)
        yield
    finally:
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in services))
