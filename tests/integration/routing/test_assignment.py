"""Routing over the real Kafka and database: assignment, quotes, the queue, duplicates."""

import pytest

from services.routing.app import create_app
from tests.conftest import eventually
from tests.integration.routing.conftest import everything_on, held, routing_state
from tests.kafka_tools import RawKafka
from tests.unit.routing.factories import classified, contract, person, resolved

pytestmark = pytest.mark.integration

CASES = ["c-1", "c-2", "c-3", "c-4"]


def for_case(events: list[dict], case_id: str) -> list[dict]:
    """The events about one case, in topic order."""
    return [e for e in events if e["case_id"] == case_id]


async def test_a_new_case_goes_to_the_least_loaded_expert_and_is_quoted(
    infra, routing_settings, run_app
):
    settings = routing_settings(
        person("law-senior", years_experience=20),
        person("law-junior", years_experience=3),
        person("con-land", role="consultant", years_experience=30),
    )
    await run_app(create_app(settings))
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        sent = classified("case-1", "land", is_dispute=True)
        await kafka.send("case.classified", sent, key="case-1")

        [assigned] = await kafka.events("case.assigned", count=1)
        assert assigned["assignee_id"] == "law-senior"
        assert assigned["assignee_role"] == "lawyer"
        assert assigned["reason"] == "assigned"
        assert assigned["correlation_id"] == sent["event_id"]

        [quote] = await kafka.events("fee.quoted", count=1)
        assert quote["case_id"] == "case-1"
        assert quote["correlation_id"] == sent["event_id"]
        assert set(quote["prices_vnd"]) == {"phone", "letter", "office", "onsite"}
        assert all(isinstance(v, int) and v > 0 for v in quote["prices_vnd"].values())
        assert quote["dispute_surcharge_vnd"] > 0
        assert quote["recommended_method"] == "office"


async def test_a_legal_aid_case_is_quoted_zero_with_the_referral(infra, routing_settings, run_app):
    settings = routing_settings(person("law-1"))
    await run_app(create_app(settings))
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        await kafka.send("case.classified", classified("case-aid", legal_aid=True), key="case-aid")

        [quote] = await kafka.events("fee.quoted", count=1)
        assert quote["prices_vnd"] == {"phone": 0, "letter": 0, "office": 0, "onsite": 0}
        assert quote["legal_aid"] is True
        assert quote["referral"].startswith("Anh/chị vui lòng liên hệ đến Trung tâm trợ giúp")


async def test_capacity_runs_out_then_a_resolved_case_frees_a_slot_for_the_oldest_waiting(
    infra, routing_settings, run_app, database
):
    settings = routing_settings(person("law-1", capacity=2), person("law-2", capacity=0))
    await run_app(create_app(settings))
    db = database(settings)
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        # One partition, so the cases arrive in the order sent.
        sent = {case_id: classified(case_id, minute=n) for n, case_id in enumerate(CASES)}
        for event in sent.values():
            await kafka.send("case.classified", event, partition=0)
        await kafka.send(
            "case.classified", classified("c-ip", "intellectual_property"), partition=0
        )

        events = await kafka.events("case.assigned", count=5)
        assert [e["assignee_id"] for e in for_case(events, "c-1")] == ["law-1"]
        assert [e["assignee_id"] for e in for_case(events, "c-2")] == ["law-1"]
        assert [e["reason"] for e in for_case(events, "c-3")] == ["no_capacity"]
        assert [e["reason"] for e in for_case(events, "c-4")] == ["no_capacity"]
        assert for_case(events, "c-3")[0]["assignee_id"] is None
        assert [e["reason"] for e in for_case(events, "c-ip")] == ["no_expert"]

        await kafka.send("contract.signed", contract("c-1"), key="c-1")
        await kafka.send("case.resolved", resolved("c-1", lawyer_id="law-1"), key="c-1")

        events = await kafka.events("case.assigned", count=6)
        [later] = events[5:]
        assert later["case_id"] == "c-3"  # the oldest waiting case, not c-4
        assert later["assignee_id"] == "law-1"
        assert later["reason"] == "assigned"
        assert later["correlation_id"] == sent["c-3"]["event_id"]  # c-3's story
        stored = await routing_state(db, settings)
        assert sorted(c for c, p in held(stored).items() if p == "law-1") == ["c-2", "c-3"]
        contract_stored = await eventually(
            lambda: stored_value(db, settings, "contract/HD-c-1"), timeout=10
        )
        assert (contract_stored["case_id"], contract_stored["amount_vnd"]) == ("c-1", 5_000_000)
        assert contract_stored["delivery_method"] == "office"
        assert stored.values["case/c-1"]["resolution"]["outcome"] == "advised"
        assert stored.values["case/c-4"]["state"] == "waiting"
        # In the order they will be served (c-ip was opened first; nobody knows its field).
        queue = sorted(key for key in stored.values if key.startswith("wait/"))
        assert [key.split("|")[2] for key in queue] == ["c-ip", "c-4"]
        assert "queue" not in stored.values  # a key per waiting case, not one value


async def stored_value(db, settings, key: str) -> dict | None:
    """The stored value of `key`, once there."""
    return (await routing_state(db, settings)).values.get(key)


async def test_a_waiting_complaint_jumps_the_queue(infra, routing_settings, run_app):
    settings = routing_settings(person("law-1", capacity=1))
    await run_app(create_app(settings))
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        await kafka.send("case.classified", classified("c-busy", minute=0), partition=0)
        await kafka.send("case.classified", classified("c-old", minute=1), partition=0)
        complaint = classified("c-angry", minute=2, kind="complaint", is_complaint=True)
        await kafka.send("case.classified", complaint, partition=0)
        await kafka.events("case.assigned", count=3)

        await kafka.send("case.resolved", resolved("c-busy"), key="c-busy")

        events = await kafka.events("case.assigned", count=4)
        assert events[3]["case_id"] == "c-angry"
        assert events[3]["assignee_id"] == "law-1"


async def test_duplicate_events_change_nothing_twice(infra, routing_settings, run_app, database):
    settings = routing_settings(person("law-1", capacity=2), person("law-2", capacity=2))
    await run_app(create_app(settings))
    db = database(settings)
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        first = classified("c-1")
        for _ in range(3):
            await kafka.send("case.classified", first, key="c-1")
        await kafka.send("case.classified", classified("c-2", minute=1), key="c-2")
        await kafka.events("case.assigned", count=2)  # topics are not ordered among themselves
        done = resolved("c-1")
        await kafka.send("case.resolved", done, key="c-1")
        await kafka.send("case.resolved", done, key="c-1")
        await kafka.send("case.classified", classified("c-3", minute=2), key="c-3")

        async def all_handled() -> bool:
            values = (await routing_state(db, settings)).values
            return "case/c-3" in values and values["case/c-1"]["state"] == "resolved"

        await eventually(all_handled)
        assigned = await everything_on(infra.kafka, settings.topic("case.assigned"))
        quotes = await everything_on(infra.kafka, settings.topic("fee.quoted"))

        assert len(assigned) == 3  # c-1, c-2, c-3: the duplicates published nothing
        assert len(quotes) == 3
        assert sorted(held(await routing_state(db, settings))) == ["c-2", "c-3"]
