"""Crash at the worst moment, for routing, followup and survey (intake: test_crash_points).

Each service, on the stateful runtime, is killed at the runtime's own crash points: after
a batch is persisted and before it is published, after it is published and before its
offsets are committed; its restored state is checked too. Restarted without the fault,
every input has exactly one effect:
one assignment (and one held capacity slot) per case, one survey per resolved case, one
apology request per complaint — redeliveries republish the same event ids, which
consumers dedupe."""

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from pymongo import AsyncMongoClient

from shared.faults import CRASH_EXIT_CODE
from tests.conftest import eventually
from tests.faults.tools import PARTITIONS, ServiceProcess, caught_up, consumer_group
from tests.kafka_tools import RawKafka
from tests.runtime_state import stored_state

pytestmark = pytest.mark.faults
KINDS = ("survey_reminder", "survey_expiry")

CASES = 12
FIELDS = ["land", "family", "labor", "enterprise", "criminal", "civil_commercial"]


def classified(n: int, *, complaint: bool = False) -> dict[str, Any]:
    """Intake's case.classified of a new case, one legal field after another."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "case.classified",
        "occurred_at": "2026-11-23T09:15:00+07:00",
        "producer": "intake",
        "case_id": f"case-crash-{n}",
        "customer_id": f"cus-crash-{n}",
        "contact_id": str(uuid.uuid4()),
        "new_case": True,
        "channel": "zalo",
        "kind": "complaint" if complaint else "inquiry",
        "legal_field": FIELDS[n % len(FIELDS)],
        "confidence": 0.9,
        "is_dispute": False,
        "is_complaint": complaint,
        "legal_aid": False,
        "segment": "potential",
        "contact": {"channel": "zalo", "sender_id": f"zalo:crash-{n}"},
    }


def resolved(n: int) -> dict[str, Any]:
    """A staff tool's case.resolved."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "case.resolved",
        "occurred_at": "2026-11-23T15:00:00+07:00",
        "producer": "staff-tool",
        "case_id": f"case-crash-{n}",
        "outcome": "advised",
    }


@dataclass(frozen=True)
class Scenario:
    """What one service is fed, what it must publish once per case, what it must store."""

    service: str
    inputs: list[tuple[str, dict[str, Any]]]
    output: str
    documents: dict[str, int]
    """Documents each collection must hold at the end (effects applied exactly once)."""
    env: dict[str, str] = field(default_factory=dict)
    only: dict[str, str] = field(default_factory=dict)
    """Fields an output event must have to count (others may fire meanwhile)."""
    stored: dict[str, int] = field(default_factory=dict)
    """On the runtime: values its restored state must hold, by key prefix."""
    inputs_first: bool = False
    """Start once without the fault and stop, then send the inputs before the faulted
    start: routing's start hands its roster file in, and that batch would be the one to
    crash, before the service is ready."""

    def counts(self, event: dict[str, Any]) -> bool:
        """Whether `event` is one of the outputs this scenario counts."""
        return all(event.get(k) == v for k, v in self.only.items())


def scenario(service: str) -> Scenario:
    if service == "routing":
        return Scenario(
            "routing",
            [("case.classified", classified(n)) for n in range(CASES)],
            output="case.assigned",
            documents={},
            stored={"case/": CASES},
            inputs_first=True,
        )
    if service == "survey":
        return Scenario(
            "survey",
            [("case.classified", classified(n)) for n in range(CASES)]
            + [("case.resolved", resolved(n)) for n in range(CASES)],
            output="survey.requested",
            documents={},
            stored={"case/": CASES, "link/": CASES, "survey/": CASES},
        )
    return Scenario(
        "followup",
        [("case.classified", classified(n, complaint=True)) for n in range(CASES)],
        output="care.contact.requested",
        documents={},
        only={"kind": "apology"},  # the first contact may fire too, if a window is open
    )


def outputs(plan: Scenario, records: list) -> dict[str, dict[str, Any]]:
    """The distinct counted output events, by event id (as a deduping consumer sees them)."""
    events = (orjson.loads(r.value) for r in records)
    return {e["event_id"]: e for e in events if plan.counts(e)}


@pytest.mark.parametrize(
    ("service", "fault"),
    [
        ("routing", "runtime_after_persist:routing"),
        ("routing", "runtime_after_publish:routing"),
        ("survey", "runtime_after_persist:survey"),
        ("survey", "runtime_after_publish:survey"),
        ("followup", "runtime_after_persist:followup"),
        ("followup", "runtime_after_publish:followup"),
    ],
    ids=lambda v: v.replace(":", "@"),
)
async def test_a_service_killed_at_a_crash_point_applies_each_input_exactly_once(
    infra, namespace, tmp_path, service, fault
):
    plan = scenario(service)
    process = ServiceProcess(
        service,
        kafka=infra.kafka,
        mongo_url=infra.mongo_url,
        namespace=namespace,
        log=tmp_path / f"{service}.log",
    )
    prefix = f"{namespace}."
    try:
        if plan.inputs_first:
            process.start(**plan.env)
            await process.wait_ready()
            await process.terminate()
        else:
            process.start(LEXCARE_FAULT_INJECTION=fault, **plan.env)
            await process.wait_ready()
        async with RawKafka(infra.kafka, prefix) as kafka:
            for topic, event in plan.inputs:
                await kafka.send(topic, event, key=event["case_id"])
            if plan.inputs_first:
                process.start(LEXCARE_FAULT_INJECTION=fault, **plan.env)
            assert await process.wait_exit(timeout=60) == CRASH_EXIT_CODE, process.tail()

            process.start(**plan.env)  # the same service, without the fault
            await process.wait_ready()
            await kafka.read(
                plan.output,
                until=lambda r: len(outputs(plan, r)) >= CASES,
                timeout=90,
            )
            for topic in {topic for topic, _ in plan.inputs}:
                group = consumer_group(prefix, service, topic)
                await eventually(lambda g=group, t=topic: caught_up(infra.kafka, g, prefix + t))
            records = await kafka.settle(plan.output, quiet=1.5)
    finally:
        await process.terminate()

    events = outputs(plan, records)
    per_case = Counter(e["case_id"] for e in events.values())
    assert set(per_case) == {f"case-crash-{n}" for n in range(CASES)}
    assert set(per_case.values()) == {1}, f"one distinct {plan.output} per case: {per_case}"
    counted = {r.value for r in records if plan.counts(orjson.loads(r.value))}
    assert len(counted) == CASES, "a redelivery republishes the same event"
    mongo = AsyncMongoClient(infra.mongo_url)
    try:
        db = mongo[f"{namespace}_{service}"]
        stored = {name: await db[name].count_documents({}) for name in plan.documents}
        assert stored == plan.documents
        if service == "survey":
            await check_survey_state(db, plan)
        if service == "routing":
            await check_routing_state(db, plan, events)
        if service == "followup":
            await check_followup_state(db, events)
    finally:
        await mongo.close()
    assert process.starts == (3 if plan.inputs_first else 2)


async def check_survey_state(db: Any, plan: Scenario) -> None:
    """Survey's restored state: per case its facts, its link and one survey sent, pending
    its reminder and expiry."""
    stored = await stored_state(db, PARTITIONS)
    kept = {p: sum(1 for key in stored.values if key.startswith(p)) for p in plan.stored}
    assert kept == plan.stored
    surveys = [v for key, v in stored.values.items() if key.startswith("survey/")]
    assert all(v["survey"]["skipped"] is None and v["outcome"] is None for v in surveys)
    timers = sorted(stored.timers)
    assert timers == sorted(f"{v['survey']['survey_id']}:{k}" for v in surveys for k in KINDS)


async def check_routing_state(db: Any, plan: Scenario, events: dict[str, dict[str, Any]]) -> None:
    """Routing's restored state: per case one record; one held slot per assigned case, never
    two, held by the one person its one assignment names; the others wait in the queue."""
    stored = await stored_state(db, PARTITIONS)
    kept = {p: sum(1 for key in stored.values if key.startswith(p)) for p in plan.stored}
    assert kept == plan.stored
    slots = [(c, p) for p, held in stored.values["roster"]["held"].items() for c in held.values()]
    holders = dict(slots)
    assert len(holders) == len(slots), f"a case holds two slots: {slots}"
    assigned = {e["case_id"]: e["assignee_id"] for e in events.values() if e["assignee_id"]}
    assert holders == assigned
    for case_id in {e["case_id"] for e in events.values()}:
        record = stored.values[f"case/{case_id}"]
        assert record["assignee_id"] == assigned.get(case_id)
        assert record["state"] == ("assigned" if case_id in assigned else "waiting")
    waiting = {f"case-crash-{n}" for n in range(CASES)} - set(assigned)
    queue = [key for key in stored.values if key.startswith("wait/")]
    assert {key.split("|")[2] for key in queue} == waiting


async def check_followup_state(db: Any, events: dict[str, dict[str, Any]]) -> None:
    """Followup's restored state: per case one apology planned, fired and recorded, once;
    per customer the re-keyed fact applied."""
    stored = await stored_state(db, PARTITIONS)
    assert stored.pending("apology:") == {}
    sent = {e["case_id"]: e["request_id"] for e in events.values()}
    for n in range(CASES):
        case = stored.values[f"case/case-crash-{n}"]
        apologies = [i for i, kind in case["planned"].items() if kind == "apology"]
        assert len(apologies) == 1, case["planned"]
        requests = [r for r in case["requests"].values() if r["kind"] == "apology"]
        assert [r["request_id"] for r in requests] == [sent[f"case-crash-{n}"]]
        customer = stored.values[f"customer/cus-crash-{n}"]
        assert customer["last_case_id"] == f"case-crash-{n}"
