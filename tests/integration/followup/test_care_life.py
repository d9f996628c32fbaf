"""A case's whole care life over real Kafka and FerretDB, with a fake clock."""

from datetime import datetime

import orjson
import pytest
from pymongo import AsyncMongoClient

from services.followup.app import FollowupSettings, create_app
from shared.clock import FakeClock
from tests.conftest import eventually
from tests.kafka_tools import RawKafka
from tests.runtime_state import stored_state
from tests.unit.followup.builders import (
    became_loyal,
    classified,
    completed,
    resolved,
    vn,
    wire,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def followup(infra, settings_for, run_app):
    """A followup with a fake clock on Monday 2026-11-23 08:00 in Hanoi; its database."""
    settings = settings_for(FollowupSettings)
    clock = FakeClock(vn(2026, 11, 23, 8, 0))
    await run_app(create_app(settings, clock=clock))
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    yield settings, clock, client[settings.mongo_db]
    await client.drop_database(settings.mongo_db)
    await client.close()


async def timer_exists(db, timer_id_prefix: str) -> bool:
    """A timer whose id starts with the prefix is pending in the runtime's stored state."""
    return bool((await stored_state(db, 2)).pending(timer_id_prefix))


async def requests_of(kafka: RawKafka, count: int) -> list[dict]:
    return await kafka.events("care.contact.requested", count=count)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def outcomes_of(db, case_id: str, request_id: str) -> list[str]:
    """The outcomes the stored case holds for one of its requests."""
    case = (await stored_state(db, 2)).values.get(f"case/{case_id}", {})
    return case.get("requests", {}).get(request_id, {}).get("outcomes", [])


async def test_a_case_is_cared_for_from_first_contact_to_the_seven_day_check_in(infra, followup):
    settings, clock, db = followup
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        contact = classified("case-life", vn(2026, 11, 23, 8, 0))
        await kafka.send("case.classified", wire(contact), key="case-life")
        await eventually(lambda: timer_exists(db, "first_contact:case-life"))
        await eventually(lambda: timer_exists(db, "care:case-life"))

        # 09:00: the window opens, the first contact goes out.
        clock.set(vn(2026, 11, 23, 9, 0))
        [first] = await requests_of(kafka, 1)
        assert first["kind"] == "first_contact"
        assert at(first["due_at"]) == vn(2026, 11, 23, 9, 0)
        assert first["case_id"] == "case-life"
        assert first["customer_id"] == "cus-case-life"
        assert first["channel"] == "zalo"
        assert first["contact"]["phone"] == "+84912345678"
        assert first["priority"] == "normal"
        assert first["correlation_id"] == str(contact.event_id)
        await kafka.send(
            "care.contact.completed",
            wire(completed("case-life", first["request_id"], "reached", vn(2026, 11, 23, 9, 5))),
            key="case-life",
        )

        # Two days later (a land inquiry, not a dispute): the care contact.
        clock.set(vn(2026, 11, 25, 9, 0))
        care = (await requests_of(kafka, 2))[1]
        assert care["kind"] == "care"
        assert at(care["due_at"]) == vn(2026, 11, 25, 9, 0)
        assert care["attempt"] == 1

        # Nobody answers: retried when the next window opens, 14:30.
        no_answer = completed("case-life", care["request_id"], "no_answer", vn(2026, 11, 25, 9, 10))
        await kafka.send("care.contact.completed", wire(no_answer), key="case-life")
        await eventually(lambda: outcomes_of(db, "case-life", care["request_id"]))
        assert await outcomes_of(db, "case-life", care["request_id"]) == ["no_answer"]
        assert await timer_exists(db, "care:case-life:")  # the retry, and the cadence's next
        clock.set(vn(2026, 11, 25, 14, 30))
        retry = (await requests_of(kafka, 3))[2]
        assert retry["kind"] == "care"
        assert retry["attempt"] == 2
        assert at(retry["due_at"]) == vn(2026, 11, 25, 14, 30)
        assert retry["request_id"] != care["request_id"]

        # Resolved on Thursday: the cadence stops, the check-in is due 7 days later.
        done = resolved("case-life", vn(2026, 11, 26, 10, 0))
        await kafka.send("case.resolved", wire(done), key="case-life")
        await eventually(lambda: timer_exists(db, "check_in:case-life"))
        assert not await timer_exists(db, "care:case-life:")

        clock.set(vn(2026, 12, 3, 10, 0))
        check_in = (await requests_of(kafka, 4))[3]
        assert check_in["kind"] == "check_in"
        assert at(check_in["due_at"]) == vn(2026, 12, 3, 10, 0)
        assert "property_transfer" in check_in["related_services"]

        # Nothing else went out in between: no care after resolution.
        records = await kafka.settle("care.contact.requested", quiet=1.0)
        kinds = [orjson.loads(r.value)["kind"] for r in records]
        assert kinds == ["first_contact", "care", "care", "check_in"]


async def test_a_complaint_gets_an_apology_at_once_and_daily_care(infra, followup):
    settings, clock, db = followup
    clock.set(vn(2026, 11, 23, 20, 0))  # evening: outside every window
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        complaint = classified(
            "case-angry", vn(2026, 11, 23, 20, 0), kind="complaint", is_complaint=True
        )
        await kafka.send("case.classified", wire(complaint), key="case-angry")
        [apology] = await requests_of(kafka, 1)
        assert apology["kind"] == "apology"
        assert apology["priority"] == "high"
        assert at(apology["due_at"]) == vn(2026, 11, 23, 20, 0)

        await eventually(lambda: timer_exists(db, "care:case-angry"))
        # Daily care for complaints: the next working day (Tue 24 Nov 2026 is Vietnam
        # Cultural Day, a public holiday in the deployed calendar).
        clock.set(vn(2026, 11, 25, 9, 0))
        care = (await requests_of(kafka, 2))[1]
        assert care["kind"] == "care"
        assert care["priority"] == "high"
        assert at(care["due_at"]) == vn(2026, 11, 25, 9, 0)


async def test_birthday_and_loyalty_offer(infra, followup):
    settings, clock, db = followup
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        contact = classified("case-bd", vn(2026, 11, 23, 8, 0), birthday="11-24")
        await kafka.send("case.classified", wire(contact), key="case-bd")
        await eventually(lambda: timer_exists(db, "birthday:cus-case-bd:2026-11-24"))
        loyal = became_loyal("cus-case-bd", vn(2026, 11, 23, 8, 30))
        await kafka.send("customer.segment_changed", wire(loyal), key="cus-case-bd")
        await eventually(lambda: timer_exists(db, "loyalty_offer:cus-case-bd"))

        clock.set(vn(2026, 11, 25, 9, 0))
        records = await kafka.read(
            "care.contact.requested",
            until=lambda r: (
                {orjson.loads(x.value)["kind"] for x in r}
                >= {"first_contact", "loyalty_offer", "birthday"}
            ),
        )
        by_kind = {orjson.loads(r.value)["kind"]: orjson.loads(r.value) for r in records}
        # A birthday on a public holiday (Vietnam Cultural Day): the next working morning.
        assert at(by_kind["birthday"]["due_at"]) == vn(2026, 11, 25, 9, 0)
        assert at(by_kind["loyalty_offer"]["due_at"]) == vn(2026, 11, 23, 9, 0)
        assert by_kind["loyalty_offer"]["case_id"] == "case-bd"
        # The next greeting waits for next year's birthday.
        await eventually(lambda: timer_exists(db, "birthday:cus-case-bd:2027-11-24"))


async def test_a_bad_outcome_report_goes_to_the_dlq_and_the_next_one_is_handled(infra, followup):
    settings, clock, db = followup
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        # Keyed by case, as intake publishes: the case and its outcomes share one partition.
        await kafka.send(
            "case.classified", wire(classified("case-dlq", clock.now())), key="case-dlq"
        )
        clock.set(vn(2026, 11, 23, 9, 0))
        [first] = await requests_of(kafka, 1)
        bad = {**wire(completed("case-dlq", first["request_id"], "reached", clock.now()))}
        bad["outcome"] = "maybe"
        await kafka.send("care.contact.completed", bad, key="case-dlq")
        good = completed("case-dlq", first["request_id"], "no_answer", clock.now())
        await kafka.send("care.contact.completed", wire(good), key="case-dlq")

        [dead] = await kafka.read("care.contact.completed.dlq", until=lambda r: len(r) >= 1)
        assert "outcome" in dict(dead.headers)["x-error"].decode()
        await eventually(lambda: timer_exists(db, "first_contact:case-dlq:retry2"))
