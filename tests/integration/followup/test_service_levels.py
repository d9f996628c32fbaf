"""Service levels over the real broker and database: followup's clocks (a fake clock moved by
the test, the shipped policy) announce warnings and breaches, routing escalates them; a
wait on the customer moves the breach; a restart announces nothing twice."""

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import orjson
import pytest
from pymongo import AsyncMongoClient

from services.followup.app import FollowupSettings, create_app
from services.routing.app import RoutingSettings
from services.routing.app import create_app as create_routing
from shared.clock import FakeClock
from tests.conftest import eventually
from tests.kafka_tools import RawKafka
from tests.runtime_state import stored_state
from tests.unit.followup.builders import classified, vn, wire
from tests.unit.routing.factories import person, roster_yaml

pytestmark = pytest.mark.integration
MONDAY_8 = vn(2026, 11, 30, 8, 0)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_breach_is_warned_then_escalated_once_by_routing(
    infra, settings_for, run_app, tmp_path
):
    settings = settings_for(FollowupSettings)
    clock = FakeClock(MONDAY_8)
    roster = tmp_path / "roster.yaml"
    roster.write_text(
        roster_yaml(
            person("law-a", years_experience=3, capacity=1),
            person("law-b", years_experience=15, capacity=1),
            person("law-c", years_experience=9, capacity=2),
        )
    )
    await run_app(create_routing(settings_for(RoutingSettings, roster_file=roster)))
    await run_app(create_app(settings, clock=clock))
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    db = client[settings.mongo_db]
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        cases = {"c-1": "land", "c-2": "land", "c-3": "criminal"}  # nobody knows criminal law
        for case_id, field in cases.items():
            event = classified(case_id, MONDAY_8, legal_field=field)
            await kafka.send("case.classified", wire(event), key=case_id)
        first = await kafka.distinct("case.assigned", count=3)
        holders = {e["case_id"]: e["assignee_id"] for e in first}
        assert holders == {"c-1": "law-b", "c-2": "law-c", "c-3": None}
        await eventually(lambda: _holders(db, settings.partitions, holders), timeout=30)

        clock.set(vn(2026, 11, 30, 17, 0))  # Monday evening: every first response missed
        warnings = await kafka.distinct("sla.warning", count=3)
        assert {(e["case_id"], moment(e["occurred_at"])) for e in warnings} == {
            ("c-1", vn(2026, 11, 30, 15, 42)),  # 80 % of 4 business hours
            ("c-2", vn(2026, 11, 30, 15, 42)),
            ("c-3", vn(2026, 11, 30, 9, 48)),  # criminal: 1h
        }
        breaches = await kafka.distinct("sla.breached", count=3)
        assert {(e["case_id"], moment(e["occurred_at"])) for e in breaches} == {
            ("c-1", vn(2026, 11, 30, 16, 30)),
            ("c-2", vn(2026, 11, 30, 16, 30)),
            ("c-3", vn(2026, 11, 30, 10, 0)),
        }
        # Each breach names who held the case then (per case.assigned): the KPIs' lawyer.
        assert {e["case_id"]: e["assignee_id"] for e in breaches} == holders
        [escalated] = await kafka.distinct("case.escalated", count=1)
        assert (escalated["case_id"], escalated["reason"]) == ("c-3", "no_expert")
        assigned = await kafka.distinct("case.assigned", count=5)
        again = [e for e in assigned if e["reason"] == "reassigned"]
        # Each land case went once to another lawyer with a free slot (who depends on which
        # breach routing saw first; the ranking itself is unit-tested).
        assert sorted(e["case_id"] for e in again) == ["c-1", "c-2"]
        for event in again:
            assert event["previous_assignee_id"] == holders[event["case_id"]]
            assert event["assignee_id"] not in (None, holders[event["case_id"]])

        records = await kafka.settle("case.escalated", quiet=1.0)
        assert len({orjson.loads(r.value)["event_id"] for r in records}) == 1
        assigned = await kafka.settle("case.assigned", quiet=1.0)
        assert len({orjson.loads(r.value)["event_id"] for r in assigned}) == 5
    await client.drop_database(settings.mongo_db)
    await client.close()


async def test_a_wait_on_the_customer_moves_the_breach_past_the_pause(infra, settings_for, run_app):
    settings = settings_for(FollowupSettings)
    clock = FakeClock(vn(2026, 11, 30, 9, 0))
    await run_app(create_app(settings, clock=clock))
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    db = client[settings.mongo_db]
    try:
        async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
            opened = classified("c-p", vn(2026, 11, 30, 9, 0))
            await kafka.send("case.classified", wire(opened), key="c-p")
            # Topics are not ordered between each other: the staff wait follows the opening.
            await eventually(lambda: _clocks(db, settings.partitions, "c-p"), timeout=30)
            await kafka.send(
                "case.waiting_on_customer", staff("c-p", vn(2026, 11, 30, 10)), key="c-p"
            )
            await eventually(lambda: _paused(db, settings.partitions, "c-p"), timeout=30)

            clock.set(vn(2026, 12, 3, 12, 0))  # Thursday: the clock has stood since Monday
            await kafka.send(
                "case.customer_replied", staff("c-p", vn(2026, 12, 3, 14, 30)), key="c-p"
            )
            clock.set(vn(2026, 12, 4, 11, 0))
            breaches = await kafka.distinct("sla.breached", count=1)
            # 1h used on Monday, 3h left from Thursday 14:30: 2h that afternoon, 1h Friday.
            assert [(e["target"], moment(e["occurred_at"])) for e in breaches] == [
                ("first_response", vn(2026, 12, 4, 10, 0))
            ]
            assert breaches[0]["elapsed_business_s"] == 4 * 3600
    finally:
        await client.drop_database(settings.mongo_db)
        await client.close()


async def test_a_clock_planned_before_a_restart_breaches_once_after_it(
    infra, settings_for, run_app
):
    settings = settings_for(FollowupSettings)
    clock = FakeClock(MONDAY_8)
    first = await run_app(create_app(settings, clock=clock))
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    db = client[settings.mongo_db]
    cases = [f"c-r{i}" for i in range(6)]
    try:
        async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
            for case_id in cases:
                await kafka.send(
                    "case.classified", wire(classified(case_id, MONDAY_8)), key=case_id
                )
            await eventually(lambda: _planned(db, settings.partitions, len(cases)), timeout=30)
            await first.stop()

            clock.set(vn(2026, 11, 30, 17, 0))
            await run_app(create_app(settings, clock=clock))
            await kafka.distinct("sla.breached", count=len(cases))
            records = await kafka.settle("sla.breached", quiet=2.0)
            published = Counter(orjson.loads(r.value)["event_id"] for r in records)
            assert len(published) == len(cases)
            assert set(published.values()) == {1}
            after = await stored_state(db, settings.partitions)
            # The first responses' timers are gone; the resolutions' still wait (Saturday).
            assert not [t for t in after.pending("sla.") if t.endswith(":first_response")]
            assert len(after.pending("sla.breach:")) == len(cases)
    finally:
        await client.drop_database(settings.mongo_db)
        await client.close()


def staff(case_id: str, at: datetime) -> dict[str, Any]:
    """case.waiting_on_customer / case.customer_replied as a staff tool publishes them."""
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": at.isoformat(),
        "producer": "staff-tool",
        "case_id": case_id,
        "agent_id": "law-land-01",
    }


async def _clocks(db: Any, partitions: int, case_id: str) -> dict[str, Any]:
    value = (await stored_state(db, partitions)).values.get(f"case/{case_id}") or {}
    return value.get("sla") or {}


async def _paused(db: Any, partitions: int, case_id: str) -> bool:
    pauses = (await _clocks(db, partitions, case_id)).get("pauses") or []
    return bool(pauses) and pauses[-1].get("end") is None


async def _holders(db: Any, partitions: int, holders: dict[str, str | None]) -> bool:
    values = (await stored_state(db, partitions)).values
    return all(
        f"case/{c}" in values and values[f"case/{c}"].get("assignee_id") == h
        for c, h in holders.items()
    )


async def _planned(db: Any, partitions: int, expected: int) -> bool:
    stored = await stored_state(db, partitions)
    return len(stored.pending("sla.breach:")) >= 2 * expected
