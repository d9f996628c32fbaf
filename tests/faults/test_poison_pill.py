"""A message that makes its handler raise every time is dead-lettered after bounded tries,
and the messages behind it on the same partition are processed (SPEC §8), over the real
broker with the shared DeliveryGuard."""

import uuid

import pytest

from shared import topics
from shared.events import CaseResolved
from shared.kafka import make_router, subscriber_options
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings
from tests.conftest import eventually
from tests.faults.tools import caught_up, headers_of
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.faults


def resolved(summary: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "case.resolved",
        "occurred_at": "2026-11-23T10:00:00+07:00",
        "producer": "staff-tool",
        "case_id": "case-1",
        "outcome": "advised",
        "summary": summary,
    }


async def test_a_poison_message_is_dead_lettered_after_bounded_tries_and_the_partition_moves_on(
    infra, settings_for, run_app
):
    settings = settings_for(LexcareSettings, service_name="probe", max_attempts=3)
    parts = plumbing(settings)
    router = make_router(settings)
    tries: dict[str, int] = {}
    handled: list[str] = []

    @router.subscriber(topics.CASE_RESOLVED, **subscriber_options(settings))
    async def on_case_resolved(event: CaseResolved) -> None:
        tries[event.summary or ""] = tries.get(event.summary or "", 0) + 1
        if event.summary.startswith("poison"):
            raise RuntimeError("this message always fails")
        handled.append(event.summary)

    parts.broker.include_router(router)
    await run_app(build_app(parts))

    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        sent = [resolved("good-0"), resolved("poison-1"), resolved("poison-2"), resolved("good-3")]
        for event in sent:
            await kafka.send("case.resolved", event, key="case-1", partition=0)

        dead = await kafka.read("case.resolved.dlq", until=lambda r: len(r) >= 2)
        await eventually(lambda: handled == ["good-0", "good-3"], timeout=30)
        group = f"{settings.consumer_group}.{topics.CASE_RESOLVED}"
        await eventually(lambda: caught_up(infra.kafka, group, settings.topic("case.resolved")))
        await kafka.settle("case.resolved.dlq", quiet=0.5)

    assert [r.value for r in kafka.seen["case.resolved.dlq"]] == [r.value for r in dead[:2]], (
        "each poison message is dead-lettered exactly once"
    )
    assert {headers_of(r)["x-original-offset"] for r in dead} == {"1", "2"}
    for record in dead:
        headers = headers_of(record)
        assert "RuntimeError: this message always fails" in headers["x-error"]
        assert headers["x-consumer"] == settings.consumer_group
        assert headers["x-original-topic"] == settings.topic("case.resolved")
    assert tries == {"good-0": 1, "poison-1": 3, "poison-2": 3, "good-3": 1}
