"""Batch consumption in memory: per-record guarding, order per key, concurrency across keys."""

import asyncio
import uuid
from collections import defaultdict

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaMessage, TestKafkaBroker
from pymongo.errors import AutoReconnect

from shared import topics
from shared.batching import BatchSubscriber
from shared.delivery import CURRENT_GUARD, DeliveryGuard
from shared.events import CaseResolved
from shared.kafka import make_broker, make_router
from shared.logging import configure_logging
from shared.settings import LexcareSettings
from tests.fakes import MemoryProcessed


def resolved(case_id: str, summary: str = "") -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "case.resolved",
            "occurred_at": "2026-11-23T10:00:00+07:00",
            "producer": "staff-tool",
            "case_id": case_id,
            "outcome": "advised",
            "summary": summary,
        }
    )


def records(*bodies: bytes) -> tuple[ConsumerRecord, ...]:
    """Consumer records of one partition, keyed by the case id in each body."""
    return tuple(
        ConsumerRecord(
            topic=topics.CASE_RESOLVED,
            partition=0,
            offset=offset,
            timestamp=0,
            timestamp_type=0,
            key=(orjson.loads(body).get("case_id") or "").encode() if body[:1] == b"{" else None,
            value=body,
            checksum=None,
            serialized_key_size=0,
            serialized_value_size=len(body),
            headers=[],
        )
        for offset, body in enumerate(bodies)
    )


class Harness:
    """A batch subscriber on an in-memory broker, recording what its handler did."""

    def __init__(self) -> None:
        self.settings = LexcareSettings(
            service_name="probe", retry_backoff_s=0, max_attempts=3, batch_concurrency=4
        )
        self.guard = DeliveryGuard(self.settings)
        self.broker = make_broker(self.settings, configure_logging("probe"), self.guard)
        self.ledger = MemoryProcessed()
        router = make_router(self.settings)
        self.subscribe = BatchSubscriber(router, self.settings, self.ledger.batch)
        self.handled: dict[str, list[str]] = defaultdict(list)
        self.failures: dict[str, int] = defaultdict(int)
        self.running = 0
        self.most_at_once = 0
        self.dead: list[str] = []

        @self.subscribe(topics.CASE_RESOLVED)
        async def on_case_resolved(event: CaseResolved) -> None:
            """Record the event; `summary` scripts a failure."""
            if await self.ledger.seen(event.event_id):
                return
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            try:
                await asyncio.sleep(0.01)
                if event.summary == "flaky" and self.failures[event.case_id] < 2:
                    self.failures[event.case_id] += 1
                    raise RuntimeError("fails twice, then works")
                if event.summary == "database down":
                    raise AutoReconnect("connection refused")
                self.handled[event.case_id].append(str(event.event_id))
            finally:
                self.running -= 1
            await self.ledger.mark(event.event_id, event_type=event.event_type)

        self.handler = on_case_resolved

        @router.subscriber(topics.dlq(topics.CASE_RESOLVED))
        async def dlq_probe(message: KafkaMessage) -> None:
            self.dead.append(message.headers["x-error"])

        self.broker.include_router(router)

    async def consume(self, batch: tuple[ConsumerRecord, ...]) -> None:
        """Hand `batch` to the subscriber as one poll, as the guard middleware does."""
        token = CURRENT_GUARD.set(self.guard)
        try:
            await self.subscribe.handle(CaseResolved, self.handler, batch)
        finally:
            CURRENT_GUARD.reset(token)


@pytest.fixture
async def harness():
    h = Harness()
    async with TestKafkaBroker(h.broker):
        yield h


async def test_bad_records_in_a_batch_are_dead_lettered_alone_and_the_rest_handled(harness):
    good = [resolved(f"case-{i}") for i in range(5)]
    invalid = orjson.dumps({**orjson.loads(resolved("case-x")), "outcome": "vanished"})
    batch = records(good[0], b"\xff not json", good[1], invalid, *good[2:])
    await harness.consume(batch)
    assert sorted(harness.handled) == [f"case-{i}" for i in range(5)]
    # Their keys are handled concurrently: the two dead letters may come in either order.
    dead = sorted(harness.dead)
    assert len(dead) == 2
    assert dead[0].startswith("invalid event: outcome: Input should be 'advised'")
    assert dead[1].startswith("not valid JSON")


async def test_one_case_is_handled_in_log_order_and_different_cases_at_once(harness):
    per_case = {f"case-{c}": [resolved(f"case-{c}") for _ in range(4)] for c in range(6)}
    interleaved = [body for round_ in zip(*per_case.values(), strict=True) for body in round_]
    await harness.consume(records(*interleaved))
    for case_id, bodies in per_case.items():
        assert harness.handled[case_id] == [orjson.loads(b)["event_id"] for b in bodies]
    assert 1 < harness.most_at_once <= harness.settings.batch_concurrency


async def test_a_failing_record_is_retried_in_place_without_holding_back_the_batch(harness):
    await harness.consume(records(resolved("case-1", "flaky"), resolved("case-2")))
    assert harness.failures["case-1"] == 2
    assert set(harness.handled) == {"case-1", "case-2"}
    assert harness.dead == []


async def test_a_poison_record_is_dead_lettered_after_max_attempts(harness):
    harness.failures["case-1"] = -10  # fails more often than max_attempts allows
    await harness.consume(records(resolved("case-1", "flaky"), resolved("case-2")))
    assert list(harness.handled) == ["case-2"]
    assert harness.dead == ["RuntimeError: fails twice, then works"]


async def test_an_infrastructure_failure_fails_the_batch_after_the_rest_is_handled(harness):
    batch = records(resolved("case-1"), resolved("case-2", "database down"), resolved("case-3"))
    with pytest.raises(AutoReconnect):
        await harness.consume(batch)
    assert set(harness.handled) == {"case-1", "case-3"}
    assert harness.dead == []
    # Redelivered as a whole (nack), the handled records are skipped by the ledger.
    await harness.consume(records(resolved("case-4")) + batch[:1])
    assert len(harness.handled["case-1"]) == 1


async def test_a_published_batch_reaches_the_one_event_handler(harness):
    body = resolved("case-9")
    await harness.broker.publish(body, topic=topics.CASE_RESOLVED, key=b"case-9")
    assert harness.handled["case-9"] == [orjson.loads(body)["event_id"]]
