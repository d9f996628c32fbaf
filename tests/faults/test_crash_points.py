"""Crash at the worst moment: intake killed after its runtime stored a batch but before
publishing it and committing, or after publishing but before committing. Restarted without
the fault, every contact is classified exactly once and the restored state holds one
customer, one case and one identifier per contact (SPEC §8: a killed service, restarted,
loses nothing and double-counts nothing)."""

import uuid
from collections import Counter

import pytest
from pymongo import AsyncMongoClient

from shared.faults import CRASH_EXIT_CODE
from tests.conftest import eventually
from tests.faults.tools import PARTITIONS, ServiceProcess, caught_up, consumer_group
from tests.kafka_tools import RawKafka
from tests.runtime_state import stored_state

pytestmark = pytest.mark.faults

CONTACTS = 20


def contact(n: int) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "contact.received",
        "occurred_at": "2026-11-23T09:15:00+07:00",
        "producer": "zalo-adapter",
        "channel": "zalo",
        "sender_id": f"zalo:crash-{n}",
        "message": "Tôi muốn hỏi về thủ tục ly hôn đơn phương",
    }


@pytest.mark.parametrize(
    "fault",
    ["runtime_after_persist:intake", "runtime_after_publish:intake"],
    ids=["after-persist-before-publish", "after-publish-before-commit"],
)
async def test_intake_killed_at_a_crash_point_applies_each_contact_exactly_once(
    infra, namespace, tmp_path, fault
):
    intake = ServiceProcess(
        "intake",
        kafka=infra.kafka,
        mongo_url=infra.mongo_url,
        namespace=namespace,
        log=tmp_path / "intake.log",
    )
    prefix = f"{namespace}."
    sent = [contact(n) for n in range(CONTACTS)]
    try:
        intake.start(LEXCARE_FAULT_INJECTION=fault)
        await intake.wait_ready()
        async with RawKafka(infra.kafka, prefix) as kafka:
            for event in sent:
                await kafka.send("contact.received", event, key=event["sender_id"])
            assert await intake.wait_exit(timeout=60) == CRASH_EXIT_CODE, intake.tail()

            intake.start()  # the same service, without the fault
            await intake.wait_ready()
            classified = await kafka.distinct("case.classified", count=CONTACTS, timeout=90)
            group = consumer_group(prefix, "intake", "contact.received")
            await eventually(
                lambda: caught_up(infra.kafka, group, prefix + "contact.received"), timeout=60
            )
            records = await kafka.settle("case.classified", quiet=1.0)
    finally:
        await intake.terminate()

    per_contact = Counter(event["contact_id"] for event in classified)
    assert set(per_contact) == {e["event_id"] for e in sent}
    assert max(per_contact.values()) == 1, "one distinct case.classified per contact"
    assert len({r.value for r in records}) == CONTACTS, "a redelivery republishes the same event"
    mongo = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    try:
        stored = (await stored_state(mongo[f"{namespace}_intake"], PARTITIONS)).values
    finally:
        await mongo.close()
    kinds = Counter(value["kind"] for value in stored.values())
    assert kinds == {"customer": CONTACTS, "case": CONTACTS, "identifier": CONTACTS}
    cases = {e["customer_id"]: e["case_id"] for e in classified}
    for customer_id, case_id in cases.items():
        customer = stored[f"customer/{customer_id}"]
        assert customer["case_ids"] == [case_id], "one case per contact, filed once"
        assert stored[f"case/{case_id}"]["customer_id"] == customer_id
    assert intake.starts == 2
