"""The stateful runtime at the process level: the toy service (tests/toy_service.py) run as
`python -m tests.toy_service`, SIGKILLed mid-stream and restarted, stopped dead at the
runtime's crash points and restarted, and joined then left (SIGTERM) by a second process
mid-stream. Each time, at the end: every input counted exactly once (stored tallies, and
the totals announced run 1..n per key), every output id present and none published under
another id, one case per customer (two simultaneous contacts per customer from senders on
different partitions, re-keyed by customer), nothing dead-lettered.

The tier runs LEXCARE_FAULTS_RUNTIME_EVENTS inputs (default 300); more:
    LEXCARE_FAULTS_RUNTIME_EVENTS=5000 uv run pytest tests/faults/test_runtime_process.py
"""

import asyncio
import itertools
import os
import signal
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo import AsyncMongoClient

from shared.events import derived_event_id
from shared.faults import CRASH_EXIT_CODE
from shared.runtime.engine import CRASH_POINTS
from shared.topics import dlq
from tests.conftest import eventually
from tests.faults.tools import ServiceProcess, assigned, handled
from tests.kafka_tools import RawKafka, key_on
from tests.runtime_state import stored_state
from tests.toy_service import (
    ADDED,
    CONTACT,
    COUNTED,
    FILED,
    OPENED,
    RESOLVED,
    counted_id,
)

pytestmark = pytest.mark.faults

EVENTS = int(os.environ.get("LEXCARE_FAULTS_RUNTIME_EVENTS", "300"))
STREAM_S = 12.0
"""How long a paced stream lasts, so that kills and the rebalance fall inside it."""
PARTITIONS = 3
KEYS = 12
AT = "2026-11-23T09:00:00+07:00"
ENV = {"LEXCARE_PARTITIONS": str(PARTITIONS), "LEXCARE_BATCH_TIMEOUT_MS": "20"}


def envelope(event_type: str, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": AT,
        "producer": "fault-test",
        **payload,
    }


def sender(customer: int, side: int) -> str:
    """The sender id of one of a customer's two contacts: on partition c + side, so the
    pair lands on two different partitions."""
    return key_on((customer + side) % PARTITIONS, PARTITIONS, f"s{customer}")


@dataclass(frozen=True)
class Stream:
    """The input: adds over a few keys, and pairs of contacts of one customer."""

    added: list[dict[str, Any]]
    pairs: list[tuple[dict[str, Any], dict[str, Any]]]

    @classmethod
    def of(cls, events: int) -> "Stream":
        customers = events // 6  # a third of the inputs are contacts, two per customer
        added = [envelope(ADDED, case_id=f"case-{n % KEYS}") for n in range(events - 2 * customers)]
        pairs = [
            (
                envelope(CONTACT, sender_id=sender(c, 0), customer_id=f"customer-{c}"),
                envelope(CONTACT, sender_id=sender(c, 1), customer_id=f"customer-{c}"),
            )
            for c in range(customers)
        ]
        return cls(added, pairs)

    @property
    def contacts(self) -> list[dict[str, Any]]:
        return [c for pair in self.pairs for c in pair]

    @property
    def size(self) -> int:
        return len(self.added) + len(self.contacts)

    async def send(
        self, kafka: RawKafka, *, paced: bool = False, hold: asyncio.Event | None = None
    ) -> None:
        """Publish the stream, adds spread evenly between the pairs; a pair's two contacts at once,
        on two different partitions. `paced`: spread over about STREAM_S seconds; `hold`:
        the last tenth waits for it (so that what the test does meanwhile is mid-stream)."""
        pause = STREAM_S / max(len(self.pairs), 1) if paced else 0.0
        per_pair = -(-len(self.added) // max(len(self.pairs), 1))
        adds = iter(self.added)
        for c, pair in enumerate(self.pairs):
            if hold is not None and c == len(self.pairs) * 9 // 10:
                await hold.wait()
            for event in itertools.islice(adds, per_pair):
                await kafka.send(ADDED, event, key=event["case_id"])
            await asyncio.gather(*(kafka.send(CONTACT, e, key=e["sender_id"]) for e in pair))
            if pause:
                await asyncio.sleep(pause)
        for event in adds:
            await kafka.send(ADDED, event, key=event["case_id"])


def resolved_id(contact: dict[str, Any]) -> uuid.UUID:
    return derived_event_id(contact["event_id"], RESOLVED, "")


async def outcome(kafka: RawKafka, db: Any, stream: Stream) -> dict[str, Any]:
    """Wait for every expected output, then check the exact end state; return the numbers."""
    await kafka.distinct(COUNTED, count=len(stream.added), timeout=90)
    await kafka.distinct(FILED, count=len(stream.contacts), timeout=90)
    counted = [orjson.loads(r.value) for r in await kafka.settle(COUNTED)]
    filed = [orjson.loads(r.value) for r in await kafka.settle(FILED, quiet=0.3)]
    opened = [orjson.loads(r.value) for r in await kafka.settle(OPENED, quiet=0.3)]

    # Every output id present, none published under another id.
    assert {e["event_id"] for e in counted} == {counted_id(a) for a in stream.added}
    assert {e["event_id"] for e in filed} == {
        str(derived_event_id(resolved_id(c), FILED, "")) for c in stream.contacts
    }
    assert {e["event_id"] for e in opened} <= {
        str(derived_event_id(resolved_id(c), OPENED, "")) for c in stream.contacts
    }
    # Counted exactly once: per key the distinct totals announced are 1..n.
    per_key: dict[str, set[int]] = defaultdict(set)
    for event in {e["event_id"]: e for e in counted}.values():
        per_key[event["case_id"]].add(event["total"])
    expected = Counter(a["case_id"] for a in stream.added)
    assert {k: sorted(v) for k, v in per_key.items()} == {
        k: list(range(1, n + 1)) for k, n in expected.items()
    }
    # One case per customer; every contact filed once, on it.
    cases = {e["event_id"]: e for e in opened}.values()
    per_customer = Counter(e["customer_id"] for e in cases)
    assert per_customer == Counter({f"customer-{c}": 1 for c in range(len(stream.pairs))})
    case_of = {e["customer_id"]: e["case_id"] for e in cases}
    by_contact = {e["contact_id"]: e for e in filed}
    assert sorted(by_contact) == sorted(c["event_id"] for c in stream.contacts)
    assert all(e["case_id"] == case_of[e["customer_id"]] for e in by_contact.values())
    # The stored state, as a restarted owner would restore it.
    stored = (await stored_state(db, PARTITIONS)).values
    assert {k: (v["total"], v["events"]) for k, v in stored.items() if v["kind"] == "tally"} == {
        k: (n, n) for k, n in expected.items()
    }
    assert {k for k, v in stored.items() if v["kind"] == "customer" and v["contacts"] == 2} == {
        f"customer/{c}" for c in per_customer
    }
    for topic in (ADDED, CONTACT, RESOLVED):
        assert await kafka.settle(dlq(topic), quiet=0.2) == [], f"dead letters on {topic}"
    records = [*counted, *filed, *opened]
    distinct = {e["event_id"] for e in records}
    return {"inputs": stream.size, "outputs": len(distinct), "resent": len(records) - len(distinct)}


@dataclass
class Toy:
    """The test's toy processes, its broker client and the toy's database."""

    infra: Any
    namespace: str
    logs: Path
    kafka: RawKafka
    db: Any
    processes: list[ServiceProcess]

    def process(self, name: str = "toy") -> ServiceProcess:
        """A toy service process (not started), its output in `<name>.log`."""
        process = ServiceProcess(
            "toy",
            kafka=self.infra.kafka,
            mongo_url=self.infra.mongo_url,
            namespace=self.namespace,
            log=self.logs / f"{name}.log",
            env=ENV,
            module="tests.toy_service",
        )
        self.processes.append(process)
        return process

    async def counted(self, at_least: int) -> None:
        """Wait until `at_least` distinct inputs were counted."""
        await self.kafka.distinct(COUNTED, count=at_least, timeout=60)


@pytest.fixture
async def toy(infra, namespace, tmp_path) -> AsyncIterator[Toy]:
    mongo = AsyncMongoClient(infra.mongo_url)
    async with RawKafka(infra.kafka, f"{namespace}.") as kafka:
        running = Toy(infra, namespace, tmp_path, kafka, mongo[f"{namespace}_toy"], [])
        try:
            yield running
        finally:
            for process in running.processes:
                await process.terminate()
            await mongo.close()


@pytest.mark.timeout(180)  # a deadline for slow shared machines, not a timing check
async def test_the_toy_service_sigkilled_mid_stream_counts_every_input_exactly_once(toy):
    stream = Stream.of(EVENTS)
    process = toy.process()
    process.start()
    await process.wait_ready()
    sending = asyncio.create_task(stream.send(toy.kafka, paced=True))
    kills = 0
    for share in (1 / 3, 2 / 3):  # killed a third and two thirds of the way
        await toy.counted(int(len(stream.added) * share))
        process.kill()
        kills += 1
        process.start()
        await process.wait_ready()
    await sending
    numbers = await outcome(toy.kafka, toy.db, stream)
    assert process.starts == kills + 1 == 3
    print(f"\nSIGKILL: {numbers}, {kills} kills, {kills} restarts, 0 lost, 0 double-counted")


@pytest.mark.parametrize("point", CRASH_POINTS)
@pytest.mark.timeout(180)
async def test_the_toy_service_stopped_at_a_runtime_crash_point_counts_every_input_once(toy, point):
    stream = Stream.of(EVENTS)
    process = toy.process()
    process.start(LEXCARE_FAULT_INJECTION=f"runtime_{point}:toy")
    await process.wait_ready()
    await stream.send(toy.kafka)
    assert await process.wait_exit(timeout=60) == CRASH_EXIT_CODE, process.tail()
    process.start()  # the same service, without the fault
    await process.wait_ready()
    numbers = await outcome(toy.kafka, toy.db, stream)
    assert process.starts == 2
    print(f"\ncrash point {point}: {numbers}, 1 crash, 1 restart, 0 lost, 0 double-counted")


@pytest.mark.timeout(180)
async def test_a_second_process_joining_and_leaving_mid_stream_changes_no_result(toy):
    stream = Stream.of(EVENTS)
    one, two = toy.process("one"), toy.process("two")
    one.start()
    await one.wait_ready()
    left = asyncio.Event()
    sending = asyncio.create_task(stream.send(toy.kafka, paced=True, hold=left))
    await toy.counted(len(stream.added) // 5)
    two.start()  # joins mid-stream: the partitions are shared
    await two.wait_ready()
    await eventually(lambda: any(assigned(two)), timeout=40)
    await eventually(lambda: handled(two) > 0, timeout=40)  # two does a share of the work
    await toy.counted(len(stream.added) * 2 // 3)
    two_handled = handled(two)
    # Leaves mid-stream (uvicorn re-raises the SIGTERM once shut down); one takes over.
    assert await two.terminate() in (0, -signal.SIGTERM), two.tail()
    assert "Application shutdown complete." in two.tail()
    left.set()
    await eventually(lambda: assigned(one)[-1] == list(range(PARTITIONS)), timeout=40)
    await sending
    numbers = await outcome(toy.kafka, toy.db, stream)
    shared = [p for p in assigned(two) if p]
    assert shared and all(len(p) < PARTITIONS for p in shared), assigned(two)
    print(f"\nrebalance: {numbers}, two owned {shared} and handled {two_handled} events")
