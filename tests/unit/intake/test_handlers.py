"""Intake's handlers in memory: TestKafkaBroker and a fake store."""

import uuid
from typing import Any

import pytest
from faststream.kafka import KafkaMessage, TestKafkaBroker

from services.intake.app import IntakeSettings, load_lexicon
from services.intake.handlers import build_router
from shared import topics
from shared.delivery import DeliveryGuard
from shared.kafka import make_broker, make_router
from shared.logging import configure_logging
from tests.unit.intake.fakes import FakeIntakeStore


def contact(**overrides: Any) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "contact.received",
        "occurred_at": "2026-11-23T09:15:00+07:00",
        "producer": "zalo-adapter",
        "channel": "zalo",
        "sender_id": "zalo:1",
        "customer": {"name": "An", "phone": "0912 345 678"},
        "message": "Hàng xóm lấn chiếm đất nhà tôi, tôi muốn khởi kiện",
        **overrides,
    }


def signed(case_id: str, contract_id: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "contract.signed",
        "occurred_at": "2026-11-24T10:00:00+07:00",
        "producer": "staff-tool",
        "case_id": case_id,
        "contract_id": contract_id,
        "amount_vnd": 3_000_000,
        "delivery_method": "phone",
    }


class Harness:
    """Intake's router on an in-memory broker, with probes on every topic it publishes."""

    def __init__(self, **overrides: Any) -> None:
        settings = IntakeSettings(retry_backoff_s=0, **overrides)
        self.store = FakeIntakeStore()
        self.broker = make_broker(settings, configure_logging("intake"), DeliveryGuard(settings))
        self.broker.include_router(
            build_router(settings, self.store, lexicon=load_lexicon(), policy=settings.policy())
        )
        self.out: dict[str, list[dict]] = {}
        probes = make_router(settings)
        for topic in (
            topics.CASE_CLASSIFIED,
            topics.CUSTOMER_MERGED,
            topics.CUSTOMER_SEGMENT_CHANGED,
            topics.dlq(topics.CONTACT_RECEIVED),
            topics.dlq(topics.CONTRACT_SIGNED),
        ):
            self.out[topic] = []
            probes.subscriber(topic)(self._collector(topic))
        self.broker.include_router(probes)

    def _collector(self, topic: str) -> Any:
        async def collect(body: Any, message: KafkaMessage) -> None:
            if topic.endswith(".dlq"):
                self.out[topic].append({"reason": message.headers["x-error"]})
            else:
                self.out[topic].append(body)

        return collect

    async def send(self, event: dict, topic: str = topics.CONTACT_RECEIVED) -> None:
        await self.broker.publish(event, topic=topic)


@pytest.fixture
def harness() -> Harness:
    return Harness()


async def test_a_contact_becomes_a_classified_dispute_case_with_its_correlation_id(harness):
    async with TestKafkaBroker(harness.broker):
        sent = contact()
        await harness.send(sent)
    [out] = harness.out[topics.CASE_CLASSIFIED]
    assert out["correlation_id"] == sent["event_id"]
    assert (out["legal_field"], out["is_dispute"], out["new_case"]) == ("land", True, True)
    assert out["contact"]["phone"] == "+84912345678"


async def test_a_duplicate_contact_publishes_nothing_new(harness):
    async with TestKafkaBroker(harness.broker):
        sent = contact()
        await harness.send(sent)
        await harness.send(sent)
    assert len(harness.out[topics.CASE_CLASSIFIED]) == 1
    assert len(harness.store.cases) == 1


async def test_a_handler_replayed_after_a_crash_republishes_the_same_event(harness):
    async with TestKafkaBroker(harness.broker):
        sent = contact()
        await harness.send(sent)
        harness.store.processed.ids.clear()  # crashed before marking the event handled
        await harness.send(sent)
    first, again = harness.out[topics.CASE_CLASSIFIED]
    assert first == again
    assert len(harness.store.cases) == 1


async def test_an_unreachable_contact_is_dead_lettered_with_the_reason(harness):
    async with TestKafkaBroker(harness.broker):
        await harness.send(contact(sender_id=None, customer={"name": "An"}))
    [dead] = harness.out[topics.dlq(topics.CONTACT_RECEIVED)]
    assert "no way to reach the customer" in dead["reason"]
    assert harness.out[topics.CASE_CLASSIFIED] == []


async def test_a_contact_bringing_a_known_phone_and_email_merges_two_customers(harness):
    async with TestKafkaBroker(harness.broker):
        await harness.send(contact(sender_id="zalo:1", customer={"phone": "0912345678"}))
        await harness.send(
            contact(
                channel="facebook",
                sender_id="psid-9",
                customer={"email": "an@example.vn"},
                message="Công ty nợ lương 3 tháng",
                occurred_at="2026-11-23T10:00:00+07:00",
            )
        )
        await harness.send(
            contact(
                channel="email",
                sender_id=None,
                customer={"phone": "+84 912 345 678", "email": "AN@example.vn"},
                occurred_at="2026-11-23T11:00:00+07:00",
            )
        )
    phone_case, email_case, joined = harness.out[topics.CASE_CLASSIFIED]
    [merged] = harness.out[topics.CUSTOMER_MERGED]
    assert merged["customer_id"] == phone_case["customer_id"]
    assert merged["merged_customer_ids"] == [email_case["customer_id"]]
    assert merged["moved_case_ids"] == [email_case["case_id"]]
    assert joined["customer_id"] == phone_case["customer_id"]
    assert (joined["case_id"], joined["new_case"]) == (phone_case["case_id"], False)
    assert harness.store.cases[email_case["case_id"]]["customer_id"] == merged["customer_id"]


async def test_a_third_contract_makes_the_customer_loyal_once():
    harness = Harness(loyal_contracts=3)
    async with TestKafkaBroker(harness.broker):
        await harness.send(contact())
        case_id = harness.out[topics.CASE_CLASSIFIED][0]["case_id"]
        for number in (1, 2, 3, 3):
            await harness.send(signed(case_id, f"HD-{number}"), topic=topics.CONTRACT_SIGNED)
        await harness.send(signed("case-unknown", "HD-9"), topic=topics.CONTRACT_SIGNED)
    changes = harness.out[topics.CUSTOMER_SEGMENT_CHANGED]
    assert [(c["previous_segment"], c["segment"]) for c in changes] == [
        ("new", "customer"),
        ("customer", "loyal"),
    ]
    assert changes[-1]["contracts"] == 3
    [dead] = harness.out[topics.dlq(topics.CONTRACT_SIGNED)]
    assert "unknown case" in dead["reason"]


async def test_a_second_case_makes_a_new_customer_potential(harness):
    async with TestKafkaBroker(harness.broker):
        await harness.send(contact())
        await harness.send(
            contact(message="Thủ tục đăng ký nhãn hiệu", occurred_at="2026-11-24T09:00:00+07:00")
        )
    first, second = harness.out[topics.CASE_CLASSIFIED]
    assert (first["segment"], second["segment"]) == ("new", "potential")
    assert second["new_case"] is True
    [change] = harness.out[topics.CUSTOMER_SEGMENT_CHANGED]
    assert (change["previous_segment"], change["segment"]) == ("new", "potential")
    assert change["correlation_id"] == second["correlation_id"]


async def test_a_new_customer_that_loses_an_identifier_race_folds_into_its_holder(harness):
    async with TestKafkaBroker(harness.broker):
        await harness.send(contact(sender_id="zalo:1", customer={"phone": "0912345678"}))
        holder = harness.out[topics.CASE_CLASSIFIED][0]["customer_id"]
        real_owners_of = harness.store.owners_of

        async def stale_read(keys: list[str]) -> dict[str, str]:
            harness.store.owners_of = real_owners_of
            return {}  # read before the other contact's claim landed

        harness.store.owners_of = stale_read
        await harness.send(
            contact(channel="facebook", sender_id="psid-2", customer={"phone": "+84912345678"})
        )
    late = harness.out[topics.CASE_CLASSIFIED][1]
    [merged] = harness.out[topics.CUSTOMER_MERGED]
    assert merged["customer_id"] == holder
    assert late["customer_id"] == holder
    assert len(merged["merged_customer_ids"]) == 1
    assert merged["merged_customer_ids"][0] != holder
