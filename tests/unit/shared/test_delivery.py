"""The delivery guard in memory: bad input to the DLQ, poison messages bounded, good ones pass."""

import uuid

import pytest
from faststream.kafka import KafkaMessage, TestKafkaBroker

from shared import topics
from shared.delivery import DeliveryGuard, Rejected
from shared.events import CaseResolved
from shared.kafka import make_broker, make_router, subscriber_options
from shared.logging import configure_logging
from shared.settings import LexcareSettings


def resolved(**overrides: object) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "case.resolved",
        "occurred_at": "2026-11-23T10:00:00+07:00",
        "producer": "staff-tool",
        "case_id": "case-1",
        "outcome": "advised",
        **overrides,
    }


@pytest.fixture
def harness():
    settings = LexcareSettings(service_name="probe", retry_backoff_s=0, max_attempts=3)
    broker = make_broker(settings, configure_logging("probe"), DeliveryGuard(settings))
    router = make_router(settings)
    seen: list[str] = []
    reasons: list[str] = []

    @router.subscriber(topics.CASE_RESOLVED, **subscriber_options(settings))
    async def on_case_resolved(event: CaseResolved) -> None:
        if event.summary == "poison":
            raise RuntimeError("always fails")
        if event.summary == "reject":
            raise Rejected("case is unknown")
        seen.append(event.case_id)

    @router.subscriber(topics.dlq(topics.CASE_RESOLVED))
    async def dlq_probe(body: dict, message: KafkaMessage) -> None:
        reasons.append(message.headers["x-error"])

    broker.include_router(router)
    return broker, on_case_resolved, dlq_probe, seen, reasons


async def test_an_invalid_event_is_dead_lettered_with_the_field_that_is_wrong(harness):
    broker, _, dlq_probe, seen, reasons = harness
    sent = resolved(outcome="vanished")
    async with TestKafkaBroker(broker):
        await broker.publish(sent, topic=topics.CASE_RESOLVED)
        dlq_probe.mock.assert_called_once_with(sent)
    assert seen == []
    assert reasons == [reasons[0]]
    assert reasons[0].startswith("invalid event: outcome: Input should be 'advised'")


async def test_a_rejected_event_is_dead_lettered_with_the_handlers_reason(harness):
    broker, _, dlq_probe, seen, reasons = harness
    async with TestKafkaBroker(broker):
        await broker.publish(resolved(summary="reject"), topic=topics.CASE_RESOLVED)
        dlq_probe.mock.assert_called_once()
    assert seen == []
    assert reasons == ["Rejected: case is unknown"]


async def test_a_valid_event_reaches_the_handler_once(harness):
    broker, handler, dlq_probe, seen, reasons = harness
    async with TestKafkaBroker(broker):
        await broker.publish(resolved(), topic=topics.CASE_RESOLVED)
        handler.mock.assert_called_once()
        dlq_probe.mock.assert_not_called()
    assert seen == ["case-1"]
    assert reasons == []
