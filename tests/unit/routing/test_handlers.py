"""Routing's handlers in memory: TestKafkaBroker and an in-memory store."""

import contextlib
from pathlib import Path

import pytest
import yaml
from faststream.kafka import KafkaMessage, TestKafkaBroker

from services.routing import domain
from services.routing.app import RoutingSettings
from services.routing.handlers import build_router
from shared import topics
from shared.delivery import DeliveryGuard
from shared.kafka import make_broker, make_router
from shared.logging import configure_logging
from tests.unit.routing.factories import (
    classified,
    contract,
    person,
    resolved,
    roster_updated,
)
from tests.unit.routing.fakes import FakeRoutingStore


class Harness:
    """Routing's router on an in-memory broker, with probes on what it publishes."""

    def __init__(self, *people) -> None:
        settings = RoutingSettings(retry_backoff_s=0)
        fees = domain.parse_fee_schedule(yaml.safe_load(Path(settings.fees_file).read_text()))
        self.store = FakeRoutingStore(*people)
        self.broker = make_broker(settings, configure_logging("routing"), DeliveryGuard(settings))
        self.broker.include_router(build_router(settings, self.store, fees))
        self.assigned: list[dict] = []
        self.quoted: list[dict] = []
        self.dead: list[str] = []
        probes = make_router(settings)

        @probes.subscriber(topics.CASE_ASSIGNED)
        async def on_assigned(body: dict) -> None:
            self.assigned.append(body)

        @probes.subscriber(topics.FEE_QUOTED)
        async def on_quoted(body: dict) -> None:
            self.quoted.append(body)

        @probes.subscriber(topics.dlq(topics.ROSTER_UPDATED))
        async def on_dead(body: dict, message: KafkaMessage) -> None:
            self.dead.append(message.headers["x-error"])

        self.broker.include_router(probes)

    async def send(self, topic: str, event: dict) -> None:
        await self.broker.publish(event, topic=topic)

    def outcomes(self) -> list[tuple[str, str | None, str]]:
        return [(e["case_id"], e["assignee_id"], e["reason"]) for e in self.assigned]


@pytest.fixture
def harness():
    def build(*people):
        return Harness(*people)

    return build


async def test_a_new_case_is_quoted_and_given_to_the_best_expert(harness):
    h = harness(person("law-1", years_experience=4), person("law-2", years_experience=9))
    async with TestKafkaBroker(h.broker):
        sent = classified("c-1", is_dispute=True)
        await h.send(topics.CASE_CLASSIFIED, sent)
    assert h.outcomes() == [("c-1", "law-2", "assigned")]
    assert h.assigned[0]["assignee_role"] == "lawyer"
    assert h.assigned[0]["correlation_id"] == sent["event_id"]
    [quote] = h.quoted
    assert quote["recommended_method"] == "office"
    assert quote["dispute_surcharge_vnd"] == 2_000_000
    assert h.store.holder("c-1") == "law-2"


async def test_the_same_event_twice_assigns_and_quotes_once(harness):
    h = harness(person("law-1", capacity=5))
    async with TestKafkaBroker(h.broker):
        sent = classified("c-1")
        await h.send(topics.CASE_CLASSIFIED, sent)
        await h.send(topics.CASE_CLASSIFIED, sent)
    assert len(h.assigned) == 1
    assert len(h.quoted) == 1
    assert len(h.store.slots) == 1


async def test_a_contact_attached_to_a_known_case_keeps_its_assignee(harness):
    h = harness(person("law-1", capacity=5), person("law-2", capacity=5))
    async with TestKafkaBroker(h.broker):
        await h.send(topics.CASE_CLASSIFIED, classified("c-1"))
        attached = classified("c-1", new_case=False, is_complaint=True)
        await h.send(topics.CASE_CLASSIFIED, attached)
    assert h.outcomes() == [("c-1", "law-1", "assigned")]
    assert len(h.quoted) == 1
    assert h.store.cases["c-1"]["routed"].is_complaint is True


async def test_nobody_fitting_is_published_and_the_case_waits_for_a_freed_slot(harness):
    h = harness(person("law-1", capacity=1))
    async with TestKafkaBroker(h.broker):
        await h.send(topics.CASE_CLASSIFIED, classified("c-1"))
        waiting = classified("c-2", minute=1)
        await h.send(topics.CASE_CLASSIFIED, waiting)
        await h.send(topics.CASE_CLASSIFIED, classified("c-fam", "family"))
        assert h.outcomes() == [
            ("c-1", "law-1", "assigned"),
            ("c-2", None, "no_capacity"),
            ("c-fam", None, "no_expert"),
        ]
        await h.send(topics.CONTRACT_SIGNED, contract("c-1"))
        await h.send(topics.CASE_RESOLVED, resolved("c-1"))
    assert h.outcomes()[3:] == [("c-2", "law-1", "assigned")]
    assert h.assigned[3]["correlation_id"] == waiting["event_id"]  # c-2's story, not c-1's
    assert h.store.holder("c-2") == "law-1"
    assert h.store.cases["c-fam"]["state"] == "waiting"
    assert h.store.contracts["HD-c-1"]["case_id"] == "c-1"


async def test_a_resolved_case_is_not_assigned_when_its_classification_comes_late(harness):
    h = harness(person("law-1"))
    async with TestKafkaBroker(h.broker):
        await h.send(topics.CASE_RESOLVED, resolved("c-1"))
        await h.send(topics.CASE_CLASSIFIED, classified("c-1"))
    assert h.assigned == []
    assert h.store.slots == {}


async def test_a_deactivated_persons_cases_are_reassigned_or_wait(harness):
    h = harness(person("law-1", capacity=2, years_experience=20), person("law-2", capacity=1))
    async with TestKafkaBroker(h.broker):
        await h.send(topics.CASE_CLASSIFIED, classified("c-1"))
        await h.send(topics.CASE_CLASSIFIED, classified("c-2", minute=1))
        await h.send(topics.CASE_CLASSIFIED, classified("c-3", minute=2))
        assert [holder for _, holder, _ in h.outcomes()] == ["law-1", "law-2", "law-1"]

        await h.send(topics.ROSTER_UPDATED, roster_updated(person("law-1", active=False)))
        moved = h.assigned[3:]
        assert [(e["case_id"], e["assignee_id"], e["reason"]) for e in moved] == [
            ("c-1", None, "no_capacity"),
            ("c-3", None, "no_capacity"),
        ]
        assert {e["previous_assignee_id"] for e in moved} == {"law-1"}

        await h.send(topics.ROSTER_UPDATED, roster_updated(person("law-3", capacity=5)))
    assert h.outcomes()[5:] == [("c-1", "law-3", "reassigned"), ("c-3", "law-3", "reassigned")]


async def test_an_invalid_roster_update_goes_to_the_dead_letter_topic(harness):
    h = harness(person("law-1"))
    bad = roster_updated(person("law-9"))
    bad["person"]["capacity"] = -1
    async with TestKafkaBroker(h.broker):
        await h.send(topics.ROSTER_UPDATED, bad)
    assert "law-9" not in h.store.people
    assert len(h.dead) == 1
    assert h.dead[0].startswith("invalid event: person.capacity")


async def test_a_contact_on_a_case_routing_never_saw_is_routed_as_new(harness):
    h = harness(person("law-1"))
    async with TestKafkaBroker(h.broker):
        await h.send(topics.CASE_CLASSIFIED, classified("c-1", new_case=False))
    assert h.outcomes() == [("c-1", "law-1", "assigned")]
    assert len(h.quoted) == 1


async def test_a_handler_retried_after_a_crash_reuses_its_claim_and_event_id(harness):
    h = harness(person("law-1", capacity=3), person("law-2", capacity=3))
    store_mark_assigned = h.store.mark_assigned
    crashes = ["once"]

    async def crash_once(claim):
        if crashes:
            crashes.pop()
            raise RuntimeError("process killed after publishing")
        await store_mark_assigned(claim)

    h.store.mark_assigned = crash_once
    sent = classified("c-1")
    async with TestKafkaBroker(h.broker):
        with contextlib.suppress(RuntimeError):
            await h.send(topics.CASE_CLASSIFIED, sent)
        await h.send(topics.CASE_CLASSIFIED, sent)  # Kafka redelivers the uncommitted record
    assert len(h.store.slots) == 1
    assert len(h.assigned) == 2  # published before the crash, and again by the retry...
    assert {e["event_id"] for e in h.assigned} == {h.assigned[0]["event_id"]}  # ...same id
    assert {e["assignee_id"] for e in h.assigned} == {"law-1"}
    assert h.store.cases["c-1"]["state"] == "assigned"
