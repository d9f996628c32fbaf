"""Health, readiness and Prometheus metrics over HTTP, against services running as processes.

Each service runs as `python -m services.<name>` (what the container runs) with LEXCARE_*
variables pointing at the test broker and database, under the test's topic and database
prefix. The database reaches one service through a TCP proxy the test can cut, to show
/readyz turning 503 (and back) while /healthz stays 200.
"""

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import eventually
from tests.infra import ROOT, Infra, free_port
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.e2e

SERVICES = ("intake", "routing", "followup", "survey", "metrics", "gateway", "desk")


class ServiceProcess:
    """One service started as `python -m services.<name>`, its log in a file."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.env, self.log = name, env, log
        self.port = int(env["LEXCARE_HTTP_PORT"])
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ServiceProcess":
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def get(self, path: str) -> tuple[int, str, str]:
        """Status, content type and body of GET `path` (errors are answers too)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.headers["content-type"], r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers["content-type"], error.read().decode()

    async def aget(self, path: str) -> tuple[int, str, str]:
        return await asyncio.to_thread(self.get, path)

    async def ready(self, timeout: float = 90.0) -> "ServiceProcess":
        async def answers_ready() -> bool:
            assert self.proc and self.proc.poll() is None, f"{self.name} exited:\n{self.tail()}"
            with contextlib.suppress(OSError):
                return (await self.aget("/readyz"))[0] == 200
            return False

        await eventually(answers_ready, timeout=timeout, interval=0.3)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send `sig` and wait for the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def stop_gracefully(self) -> None:
        """SIGTERM, then check the shutdown ran to its end (uvicorn re-raises the signal
        after a clean shutdown, so the exit status is -SIGTERM, 143 in a container)."""
        code = self.stop(signal.SIGTERM)
        log = self.log.read_text(errors="replace")
        assert code in (0, -signal.SIGTERM), f"{self.name} exited {code}:\n{self.tail()}"
        assert "FastStream app shut down gracefully" in log, self.tail()
        assert "Application shutdown complete" in log, self.tail()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@pytest.fixture
def service(
    infra: Infra, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    """Start services as processes in the test's namespace; SIGKILL leftovers at the end."""
    started: list[ServiceProcess] = []

    def start(name: str, **env: str) -> ServiceProcess:
        variables = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "LEXCARE_KAFKA": infra.kafka,
            "LEXCARE_MONGO_URL": infra.mongo_url,
            "LEXCARE_TOPIC_PREFIX": f"{namespace}.",
            "LEXCARE_MONGO_DB_PREFIX": namespace,
            "LEXCARE_PARTITIONS": "2",
            "LEXCARE_HTTP_HOST": "127.0.0.1",
            "LEXCARE_HTTP_PORT": str(free_port()),
            "LEXCARE_LOG_FORMAT": "json",
            "LEXCARE_GRACEFUL_TIMEOUT_S": "10",
            "LEXCARE_GATEWAY_SMTP_PORT": str(free_port()),  # read by the gateway only
            **env,
        }
        process = ServiceProcess(name, variables, tmp_path / f"{name}-{len(started)}.log")
        started.append(process.start())
        return process

    yield start
    for process in started:
        if process.proc and process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


class TcpProxy:
    """A cuttable TCP forwarder: the database 'goes away' when it is closed."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.links |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Stop accepting and drop every open connection."""
        assert self.server is not None
        self.server.close()
        for link in self.links:
            link.close()
        self.links.clear()
        await self.server.wait_closed()


@pytest.fixture
async def mongo_proxy(infra: Infra) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A proxy to the test database and a MongoDB URL that goes through it."""
    url = urlsplit(infra.mongo_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 27017)
    await proxy.open()
    netloc = url.netloc.replace(f"{url.hostname}:{url.port}", f"127.0.0.1:{proxy.port}")
    yield proxy, url._replace(netloc=netloc).geturl()
    with contextlib.suppress(AssertionError):
        await proxy.cut()


def contact(event_id: str, sender: str) -> dict:
    return {
        "event_id": event_id,
        "event_type": "contact.received",
        "occurred_at": "2026-11-23T09:15:00+07:00",
        "producer": "e2e-health",
        "channel": "zalo",
        "sender_id": sender,
        "kind": "inquiry",
        "customer": {"name": "Nguyễn Văn An", "phone": "0912 345 678"},
        "message": "Tôi muốn hỏi về tranh chấp đất đai với hàng xóm",
    }


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, or None when it is absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        if series.split("{")[0] != name:
            continue
        found = series[len(name) :].strip("{}")
        if ",".join(sorted(found.split(","))) == wanted or (not labels and not found):
            return float(value)
    return None


async def smtp_greeting(port: int) -> int:
    """The reply code the SMTP listener on `port` greets a client with."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return int((await asyncio.wait_for(reader.readline(), timeout=10))[:3])
    finally:
        writer.close()


async def test_every_service_answers_liveness_readiness_and_prometheus(service, namespace):
    running = [service(name) for name in SERVICES]
    await asyncio.gather(*(process.ready() for process in running))
    for process in running:
        status, content_type, body = await process.aget("/healthz")
        assert (status, json.loads(body)) == (200, {"status": "alive"}), process.name
        assert content_type == "application/json"
        status, _, body = await process.aget("/readyz")
        assert (status, json.loads(body)) == (
            200,
            {"status": "ready", "broker": True, "database": True},
        ), process.name
        status, content_type, body = await process.aget("/metrics")
        assert status == 200 and content_type.startswith("text/plain; version=")

        async def lag_lines(process: ServiceProcess = process) -> list[str]:
            # Lag per assigned partition, once the group has assigned them and fetched.
            body = (await process.aget("/metrics"))[2]
            return [line for line in body.splitlines() if line.startswith("lexcare_consumer_lag{")]

        try:
            lag = await eventually(lag_lines, timeout=60, interval=0.5)
        except AssertionError as error:
            raise AssertionError(f"{process.name}: no consumer lag\n{process.tail()}") from error
        assert all(f'topic="{namespace}.' in line for line in lag), process.name
        assert sample(body, "lexcare_timers_due") == 0.0
        for name in ("lexcare_events_handled_total", "lexcare_handler_seconds"):
            assert f"# TYPE {name.removesuffix('_total')}" in body, (process.name, name)
        if process.name == "gateway":
            assert "# TYPE lexcare_gateway_refused_total counter" in body
            assert await smtp_greeting(int(process.env["LEXCARE_GATEWAY_SMTP_PORT"])) == 220
    for process in running:
        process.stop_gracefully()


async def test_metrics_count_a_handled_contact_its_latency_and_a_dead_letter(
    service, infra, namespace
):
    intake = await service("intake").ready()
    topic = f"{namespace}.contact.received"
    _, _, before = await intake.aget("/metrics")
    assert sample(before, "lexcare_events_handled_total", topic=topic) in (None, 0.0)

    event_id = str(uuid.uuid4())
    async with RawKafka(infra.kafka, f"{namespace}.") as kafka:
        await kafka.send("contact.received", contact(event_id, "zalo:health-1"), key="zalo:1")
        await kafka.send("contact.received", b"{not json", key="zalo:2")
        await kafka.read(
            "case.classified",
            until=lambda records: any(event_id.encode() in r.value for r in records),
            timeout=60,
        )
        dead = await kafka.read("contact.received.dlq", until=lambda records: len(records) >= 1)
    assert dead[0].value == b"{not json"
    assert {"x-error", "x-consumer"} <= {key for key, _ in dead[0].headers}

    async def counted() -> str | None:
        _, _, body = await intake.aget("/metrics")
        handled = sample(body, "lexcare_events_handled_total", topic=topic)
        dead_letters = sample(body, "lexcare_dead_letters_total", topic=topic)
        lag = [sample(body, "lexcare_consumer_lag", topic=topic, partition=str(p)) for p in (0, 1)]
        return body if handled == 1.0 and dead_letters == 1.0 and lag == [0.0, 0.0] else None

    body = await eventually(counted, timeout=30)
    assert sample(body, "lexcare_handler_seconds_count", topic=topic) == 1.0
    assert sample(body, "lexcare_handler_seconds_bucket", topic=topic, le="+Inf") == 1.0
    # Personal data never reaches the metrics endpoint.
    assert "0912" not in body and "Nguyễn" not in body
    intake.stop_gracefully()


async def test_readiness_fails_while_the_database_is_unreachable_and_recovers(service, mongo_proxy):
    proxy, url = mongo_proxy
    intake = await service("intake", LEXCARE_MONGO_URL=url).ready()

    await proxy.cut()

    async def not_ready() -> dict | None:
        status, _, body = await intake.aget("/readyz")
        return json.loads(body) if status == 503 else None

    answer = await eventually(not_ready, timeout=30, interval=0.5)
    assert answer == {"status": "not_ready", "broker": True, "database": False}
    status, _, _ = await intake.aget("/healthz")
    assert status == 200, "liveness does not depend on the database"

    await proxy.open()
    await intake.ready(timeout=60)
    intake.stop_gracefully()


async def test_sigterm_stops_a_busy_service_cleanly_and_a_restart_loses_nothing(
    service, infra, namespace
):
    intake = await service("intake").ready()
    port = intake.env["LEXCARE_HTTP_PORT"]
    ids = [str(uuid.uuid4()) for _ in range(40)]
    async with RawKafka(infra.kafka, f"{namespace}.") as kafka:
        for number, event_id in enumerate(ids):
            await kafka.send(
                "contact.received", contact(event_id, f"zalo:{number}"), key=f"zalo:{number}"
            )
        # Stop while the burst is being worked through.
        await kafka.read("case.classified", until=lambda records: len(records) >= 1, timeout=60)
        intake.stop_gracefully()

        again = await service("intake", LEXCARE_HTTP_PORT=port).ready()

        def causes(records: list) -> set[str]:
            return {json.loads(r.value)["correlation_id"] for r in records} & set(ids)

        records = await kafka.read(
            "case.classified", until=lambda records: causes(records) == set(ids), timeout=90
        )
    # At-least-once with derived ids: a redelivered contact republishes the same event id.
    classified = {json.loads(r.value)["event_id"] for r in records}
    assert len(classified) == len(ids)
    again.stop_gracefully()


def lag_partitions(metrics: str, topic: str) -> set[int]:
    """Partitions of `topic` an instance reports lag for: the ones assigned to it."""
    found = re.findall(
        rf'lexcare_consumer_lag{{partition="(\d+)",topic="{re.escape(topic)}"}}', metrics
    )
    return {int(partition) for partition in found}


async def test_two_instances_share_the_partitions_of_their_consumer_group(
    service, infra, namespace
):
    topic = f"{namespace}.contact.received"
    first = await service("intake").ready()

    async def owned(process: ServiceProcess) -> set[int]:
        return lag_partitions((await process.aget("/metrics"))[2], topic)

    await eventually(lambda: owned(first), timeout=30, interval=0.5)
    second = await service("intake").ready()

    async def split() -> tuple[set[int], set[int]] | None:
        mine, theirs = await owned(first), await owned(second)
        return (mine, theirs) if mine and theirs and mine | theirs == {0, 1} else None

    mine, theirs = await eventually(split, timeout=60, interval=0.5)
    assert not mine & theirs, "a partition belongs to one instance of the group"

    ids = {partition: str(uuid.uuid4()) for partition in (0, 1)}
    async with RawKafka(infra.kafka, f"{namespace}.") as kafka:
        for partition, event_id in ids.items():
            sender = f"zalo:split-{partition}"
            await kafka.send(
                "contact.received", contact(event_id, sender), key=sender, partition=partition
            )
        await kafka.read(
            "case.classified",
            until=lambda records: (
                {json.loads(r.value)["correlation_id"] for r in records} >= set(ids.values())
            ),
            timeout=60,
        )

    async def handled(process: ServiceProcess) -> float:
        body = (await process.aget("/metrics"))[2]
        return sample(body, "lexcare_events_handled_total", topic=topic) or 0.0

    async def each_handled_one() -> bool:
        # The counter moves once the handler returned, just after it published.
        return (await handled(first), await handled(second)) == (1.0, 1.0)

    # Each instance handled the contact of the partition it owns, and only that one.
    await eventually(each_handled_one, timeout=15, interval=0.3)
    first.stop_gracefully()
    second.stop_gracefully()
