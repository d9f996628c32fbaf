"""The broker and database tests run against, decided in one place.

1. LEXCARE_KAFKA and LEXCARE_MONGO_URL set: use those (CI services, a dev's own stack).
2. A Docker engine answers: testcontainers (apache/kafka and mongo images).
3. Otherwise: the project's own local processes (deploy/local/*.sh): Kafka from Maven
   Central jars and FerretDB, on free ports, in a temporary directory, stopped at the end.
"""

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / "deploy" / "local"


@dataclass(frozen=True)
class Infra:
    """Where the tests' broker and database listen, and how they were provided."""

    kafka: str
    mongo_url: str
    kind: str
    workdir: Path | None = None


def free_port(span: int = 1) -> int:
    """A TCP port such that `span` consecutive ports are free on 127.0.0.1.

    Drawn below the kernel's ephemeral range: a port from that range (what `bind(0)` hands
    out) can be taken, between this check and the server's own bind, as the source port of
    any outgoing connection on the machine, and the server then dies with "address in use".
    """
    low, high = _listen_port_range()
    for _ in range(500):
        base = random.randint(low, high - span)
        if all(_port_free(base + i) for i in range(span)):
            return base
    raise RuntimeError(f"no {span} free consecutive ports in {low}-{high}")


def free_ports(*spans: int) -> list[int]:
    """The first ports of ranges of `spans` free ports that do not overlap one another:
    ports drawn for servers not started yet all look free, so two draws may meet."""
    taken: set[int] = set()
    bases: list[int] = []
    for span in spans:
        for _ in range(500):
            base = free_port(span)
            ports = set(range(base, base + span))
            if not ports & taken:
                break
        else:
            raise RuntimeError(f"no {span} free ports apart from {sorted(taken)}")
        taken |= ports
        bases.append(base)
    return bases


def _listen_port_range() -> tuple[int, int]:
    """Ports no outgoing connection takes: from 15000 to just below the ephemeral range."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    if ephemeral_low - 15000 < 1000:  # an unusual kernel setting: fall back to a fixed range
        return 61000, 65000
    return 15000, ephemeral_low - 1


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def docker_available() -> bool:
    """True when a Docker engine answers (not just the client binary)."""
    if os.environ.get("LEXCARE_NO_DOCKER") or not shutil.which("docker"):
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@contextlib.contextmanager
def _containers() -> Iterator[Infra]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    with (
        KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
        MongoDbContainer("mongo:8.0") as mongo,
    ):
        yield Infra(kafka.get_bootstrap_server(), mongo.get_connection_url(), "testcontainers")


@contextlib.contextmanager
def _local_processes() -> Iterator[Infra]:
    workdir = Path(tempfile.mkdtemp(prefix="lexcare-test-"))
    kafka_port = free_port(span=2)  # broker and controller
    mongo_port = free_port()
    started: list[tuple[str, Path]] = []
    try:
        for script, port in (("kafka.sh", kafka_port), ("ferretdb.sh", mongo_port)):
            data = workdir / script.removesuffix(".sh")
            subprocess.run(["bash", str(LOCAL / script), "start", str(data), str(port)], check=True)
            started.append((script, data))
        yield Infra(
            f"127.0.0.1:{kafka_port}",
            f"mongodb://127.0.0.1:{mongo_port}/",
            "local",
            workdir,
        )
    finally:
        for script, data in reversed(started):
            subprocess.run(["bash", str(LOCAL / script), "stop", str(data), "--purge"], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def provide_infra() -> Iterator[Infra]:
    """Yield a running broker and database for the whole test session."""
    kafka, mongo = os.environ.get("LEXCARE_KAFKA"), os.environ.get("LEXCARE_MONGO_URL")
    if kafka and mongo:
        yield Infra(kafka, mongo, "external")
    elif docker_available():
        with _containers() as infra:
            yield infra
    else:
        with _local_processes() as infra:
            yield infra
