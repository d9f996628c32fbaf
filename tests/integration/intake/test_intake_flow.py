"""Intake over the real broker and database: contacts in, customers and cases out."""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from pymongo import AsyncMongoClient

from services.intake.app import IntakeSettings, create_app, runtime_of
from shared.kafka import ensure_topics
from shared.runtime import Runtime
from tests.conftest import eventually
from tests.kafka_tools import RawKafka
from tests.runtime_state import stored_state

pytestmark = pytest.mark.integration


def contact(**overrides: Any) -> dict:
    """A contact.received as a channel adapter publishes it."""
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": "contact.received",
        "schema_version": 1,
        "occurred_at": "2026-11-23T09:15:00+07:00",
        "producer": "zalo-adapter",
        "channel": "zalo",
        "sender_id": f"zalo-{uuid.uuid4().hex[:8]}",
        "kind": "inquiry",
        "customer": {"name": "  Nguyễn Văn An ", "phone": "0912 345 678"},
        "message": "Cho em hỏi thủ tục ly hôn đơn phương, chồng ko chịu ký",
    }
    event.update(overrides)
    return event


def staff_event(event_type: str, **payload: Any) -> dict:
    """An event a staff tool publishes (contract.signed, case.resolved)."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": "2026-11-24T10:00:00+07:00",
        "producer": "staff-tool",
        **payload,
    }


class Intake(RawKafka):
    """A raw Kafka client beside a running intake, plus a look at the state it stored."""

    def __init__(self, infra: Any, settings: IntakeSettings) -> None:
        super().__init__(infra.kafka, settings.topic_prefix)
        self.db = AsyncMongoClient(settings.mongo_url, tz_aware=True)[settings.mongo_db]
        self.partitions = settings.partitions

    async def value(self, key: str) -> dict[str, Any] | None:
        """A value of intake's state as a restarted owner would restore it."""
        return (await stored_state(self.db, self.partitions)).values.get(key)


@pytest.fixture
async def intake(infra, namespace, settings_for, run_app) -> AsyncIterator[Callable[..., Any]]:
    """Start intake (with optional setting overrides) and return a client for it."""
    clients: list[Intake] = []

    async def start(**overrides: Any) -> Intake:
        # Every environment shares the consumer group `lexcare-intake`; a group of our own
        # keeps other test runs' rebalances from stalling this one.
        settings = settings_for(IntakeSettings, service_name=f"intake-{namespace}", **overrides)
        await run_app(create_app(settings))
        client = Intake(infra, settings)
        await client.__aenter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.__aexit__(None, None, None)
        await client.db.client.close()


async def send(kafka: RawKafka, event: dict) -> None:
    await kafka.send("contact.received", event, key=event.get("sender_id") or event["event_id"])


async def test_a_contact_is_normalised_classified_and_a_second_channel_joins_its_case(intake):
    kafka = await intake()
    # An uncontested divorce ("chồng ko chịu ký" would make it a dispute: the corpora say so).
    first = contact(documents=[], message="Cho em hỏi thủ tục ly hôn thuận tình cần giấy tờ gì ạ")
    await send(kafka, first)
    [opened] = await kafka.events("case.classified", count=1)

    assert opened["correlation_id"] == first["event_id"]
    assert opened["new_case"] is True
    assert opened["legal_field"] == "family"
    assert opened["is_dispute"] is False
    assert opened["segment"] == "new"
    assert opened["contact"]["phone"] == "+84912345678"
    assert opened["contact"]["name"] == "Nguyễn Văn An"
    assert set(opened["missing_items"]) == {"email", "address", "birth_date", "documents"}

    second = contact(
        channel="phone",
        sender_id=None,
        producer="call-center",
        customer={"phone": "+84 912.345.678", "email": "An@Example.VN", "birth_date": "1960-05-01"},
        message="Tôi gọi lại về vụ ly hôn, gửi thêm giấy đăng ký kết hôn",
        documents=["dkkh.pdf"],
    )
    await send(kafka, second)
    attached = (await kafka.events("case.classified", count=2))[1]
    assert attached["correlation_id"] == second["event_id"]
    assert attached["case_id"] == opened["case_id"]
    assert attached["customer_id"] == opened["customer_id"]
    assert attached["new_case"] is False
    assert attached["channel"] == "phone"
    assert attached["legal_aid"] is True
    assert attached["legal_aid_categories"] == ["elderly"]
    assert attached["age_band"] == ">50"
    assert attached["missing_items"] == ["address"]


async def test_an_unreachable_contact_goes_to_the_dlq_with_its_reason(intake):
    kafka = await intake()
    await send(kafka, contact(sender_id=None, customer={"name": "An", "phone": "12"}))
    good = contact()
    await send(kafka, good)
    [dead] = await kafka.read("contact.received.dlq", until=lambda r: len(r) >= 1)
    reason = dict(dead.headers)["x-error"].decode()
    assert "no way to reach the customer" in reason
    assert "unusable: phone" in reason
    [classified] = await kafka.events("case.classified", count=1)
    assert classified["correlation_id"] == good["event_id"]


async def test_the_same_contact_twice_is_classified_once(intake):
    kafka = await intake()
    event = contact()
    await send(kafka, event)
    await send(kafka, event)
    await kafka.events("case.classified", count=1)
    records = await kafka.settle("case.classified", quiet=2.0)
    assert len(records) == 1


async def test_a_contact_joining_two_customers_merges_them_with_their_cases(intake):
    kafka = await intake()
    by_phone = contact(channel="zalo", customer={"phone": "0987 654 321"})
    by_email = contact(
        channel="facebook",
        producer="facebook-adapter",
        customer={"email": "binh@example.vn"},
        message="Công ty nợ lương 3 tháng, em muốn kiện",
        occurred_at="2026-11-23T10:00:00+07:00",
    )
    await send(kafka, by_phone)
    await send(kafka, by_email)
    first_two = await kafka.events("case.classified", count=2)
    customers = {e["correlation_id"]: e["customer_id"] for e in first_two}
    assert customers[by_phone["event_id"]] != customers[by_email["event_id"]]

    joining = contact(
        channel="email",
        sender_id=None,
        producer="mail-adapter",
        customer={"phone": "84987654321", "email": "BINH@example.vn"},
        message="Tôi hỏi thêm về vụ ly hôn",
        occurred_at="2026-11-23T11:00:00+07:00",
    )
    await send(kafka, joining)
    [merged] = await kafka.events("customer.merged", count=1)
    assert merged["correlation_id"] == joining["event_id"]
    assert merged["customer_id"] == customers[by_phone["event_id"]]
    assert merged["merged_customer_ids"] == [customers[by_email["event_id"]]]
    cases = {e["correlation_id"]: e["case_id"] for e in first_two}
    assert merged["moved_case_ids"] == [cases[by_email["event_id"]]]

    third = (await kafka.events("case.classified", count=3))[2]
    assert third["customer_id"] == merged["customer_id"]
    assert third["new_case"] is False
    assert third["segment"] == "potential"


async def test_a_contact_racing_a_known_customer_for_identifiers_ends_with_that_customer(intake):
    kafka = await intake()
    known = contact(channel="zalo", customer={"phone": "0903 111 222"})
    await send(kafka, known)
    [first] = await kafka.events("case.classified", count=1)
    racing = [
        contact(
            channel="facebook",
            producer="fb",
            customer={"email": "cuong@example.vn"},
            occurred_at="2026-11-23T10:00:00+07:00",
        ),
        contact(
            channel="website",
            sender_id=None,
            customer={"phone": "0903111222", "email": "Cuong@example.vn"},
            occurred_at="2026-11-23T10:00:00+07:00",
        ),
    ]
    await asyncio.gather(
        *(kafka.send("contact.received", e, partition=i) for i, e in enumerate(racing))
    )
    classified = await classified_for(kafka, {e["event_id"] for e in racing})
    merges = [orjson.loads(r.value) for r in await kafka.settle("customer.merged")]
    customers = {e["customer_id"] for e in classified.values()}
    survivor = first["customer_id"]
    folded = {m for merge in merges for m in merge["merged_customer_ids"]}
    assert customers <= {survivor} | folded
    later = contact(channel="website", sender_id=None, customer={"email": "cuong@example.vn"})
    await send(kafka, later)
    [joined] = (await classified_for(kafka, {later["event_id"]})).values()
    assert joined["customer_id"] == survivor
    owner = await kafka.value("identifier/email:cuong@example.vn")
    assert owner is not None and owner["customer_id"] == survivor


async def classified_for(kafka: RawKafka, contact_ids: set[str]) -> dict[str, dict]:
    """The case.classified of each given contact, once each, waiting until all are there."""

    def decoded(records: list) -> dict[str, dict]:
        events = (orjson.loads(r.value) for r in records)
        return {e["correlation_id"]: e for e in events if e["correlation_id"] in contact_ids}

    records = await kafka.read(
        "case.classified", until=lambda r: len(decoded(r)) == len(contact_ids)
    )
    return decoded(records)


async def test_contracts_make_a_customer_loyal_and_a_resolved_case_is_not_joined(intake):
    kafka = await intake(loyal_contracts=2)
    first = contact()
    await send(kafka, first)
    [opened] = await kafka.events("case.classified", count=1)
    case_id = opened["case_id"]

    for number in (1, 2):
        signed = staff_event(
            "contract.signed",
            case_id=case_id,
            contract_id=f"HD-{number}",
            amount_vnd=5_000_000,
            delivery_method="office",
        )
        await kafka.send("contract.signed", signed, key=case_id)
        await kafka.send("contract.signed", signed, key=case_id)
    changes = await kafka.events("customer.segment_changed", count=2)
    assert [(c["previous_segment"], c["segment"]) for c in changes] == [
        ("new", "customer"),
        ("customer", "loyal"),
    ]
    assert changes[1]["contracts"] == 2
    assert changes[1]["customer_id"] == opened["customer_id"]
    assert changes[1]["contact"]["phone"] == "+84912345678"

    resolved = staff_event("case.resolved", case_id=case_id, outcome="advised")
    await kafka.send("case.resolved", resolved, key=case_id)
    await kafka.send("case.resolved", staff_event("case.resolved", case_id="case-x", outcome="won"))
    [dead] = await kafka.read("case.resolved.dlq", until=lambda r: len(r) >= 1)
    assert "unknown case" in dict(dead.headers)["x-error"].decode()

    async def case_closed() -> bool:
        customer = await kafka.value(f"customer/{opened['customer_id']}")
        return customer is not None and customer["open_cases"] == []

    await eventually(case_closed)
    again = contact(sender_id=first["sender_id"], occurred_at="2026-11-25T09:00:00+07:00")
    await send(kafka, again)
    reopened = (await kafka.events("case.classified", count=2))[1]
    assert reopened["correlation_id"] == again["event_id"]
    assert reopened["new_case"] is True
    assert reopened["case_id"] != case_id
    assert reopened["segment"] == "loyal"
    assert len(await kafka.settle("customer.segment_changed", quiet=1.0)) == 2


@pytest.fixture
async def runtimes(infra, namespace, settings_for) -> AsyncIterator[Callable[..., Any]]:
    """Start intake's runtime (no HTTP app), several of them sharing three partitions."""
    settings = settings_for(
        IntakeSettings, service_name=f"intake-{namespace}", partitions=3, batch_timeout_ms=20
    )
    client = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    await ensure_topics(settings)
    running: list[Runtime[Any]] = []

    async def start() -> Runtime[Any]:
        runtime = runtime_of(settings, client[settings.mongo_db])
        await runtime.start()
        running.append(runtime)
        return runtime

    yield start
    for runtime in running:
        await runtime.stop()
    await client.close()


@pytest.mark.parametrize("instances", [1, 2])
async def test_two_simultaneous_contacts_of_one_customer_on_two_partitions_open_one_case(
    instances, runtimes, infra, namespace
):
    started = [await runtimes() for _ in range(instances)]
    await eventually(lambda: all(r.partitions for r in started), timeout=30)
    assert sorted(p for r in started for p in r.partitions) == [0, 1, 2]
    customers = 20
    async with RawKafka(infra.kafka, f"{namespace}.") as kafka:
        sent = []
        for c in range(customers):  # one phone, two senders on two channels, two partitions
            phone = f"0903 {c:03d} 111"
            pair = [
                contact(channel="zalo", sender_id=f"zalo-{c}", customer={"phone": phone}),
                contact(channel="facebook", sender_id=f"psid-{c}", customer={"phone": phone}),
            ]
            await asyncio.gather(
                *(
                    kafka.send("contact.received", e, key=e["sender_id"], partition=(c + i) % 3)
                    for i, e in enumerate(pair)
                )
            )
            sent += pair
        classified = await classified_for(kafka, {e["event_id"] for e in sent})
        records = await kafka.settle("case.classified")
        assert len({orjson.loads(r.value)["event_id"] for r in records}) == len(sent)
        merges = await kafka.settle("customer.merged")
    per_phone: dict[str, set[tuple[str, str]]] = {}
    for event in sent:
        out = classified[event["event_id"]]
        per_phone.setdefault(out["contact"]["phone"], set()).add(
            (out["customer_id"], out["case_id"])
        )
    assert len(per_phone) == customers
    assert all(len(pairs) == 1 for pairs in per_phone.values()), per_phone  # one case each
    opened = Counter(e["new_case"] for e in classified.values())
    assert opened == {True: customers, False: customers}
    assert merges == []
