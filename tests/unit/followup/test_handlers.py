"""Followup's handlers and timer firing in memory: TestKafkaBroker and an in-memory store."""

from datetime import datetime
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from services.followup.domain import (
    CarePolicy,
    CaseState,
    CustomerState,
    PlannedTimer,
    RequestRecord,
)
from services.followup.handlers import Care, build_router
from shared import topics
from shared.calendar import CareCalendar
from shared.clock import FakeClock
from shared.delivery import DeliveryGuard
from shared.kafka import make_broker
from shared.logging import configure_logging
from shared.settings import LexcareSettings
from shared.timers import Timer, TimerLoop
from tests.fakes import MemoryProcessed
from tests.unit.followup.builders import became_loyal, classified, completed, resolved, vn, wire


class MemoryTimers:
    """DurableTimers' behaviour without a database (one instance)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def schedule(self, timer_id: str, *, due_at, kind, payload=None, case_id=None) -> None:
        self.docs.setdefault(
            timer_id,
            {
                "due_at": due_at,
                "kind": kind,
                "payload": payload or {},
                "case_id": case_id,
                "state": "pending",
            },
        )

    async def cancel(self, *, case_id: str, kinds: list[str] | None = None) -> int:
        hits = [
            d
            for d in self.docs.values()
            if d["case_id"] == case_id
            and d["state"] == "pending"
            and (kinds is None or d["kind"] in kinds)
        ]
        for doc in hits:
            doc["state"] = "cancelled"
        return len(hits)

    async def claim_due(self, now: datetime, *, limit: int = 100) -> list[Timer]:
        due = [
            (i, d) for i, d in self.docs.items() if d["state"] == "pending" and d["due_at"] <= now
        ]
        for _, doc in due:
            doc["state"] = "leased"
        return [Timer(i, d["due_at"], d["kind"], d["payload"], d["case_id"], 1) for i, d in due]

    async def done(self, timer_id: str, *, state: str = "done") -> None:
        self.docs[timer_id]["state"] = state

    def pending(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        return {
            i: d for i, d in self.docs.items() if i.startswith(prefix) and d["state"] == "pending"
        }


class MemoryStore:
    """FollowupStore's methods over dicts."""

    def __init__(self) -> None:
        self.processed = MemoryProcessed()
        self.timers = MemoryTimers()
        self.cases: dict[str, dict] = {}
        self.customers: dict[str, dict] = {}
        self.requests: dict[str, RequestRecord] = {}
        self.outcomes: dict[str, set[str]] = {}

    async def case(self, case_id):
        doc = self.cases.get(case_id) if case_id else None
        return CaseState(case_id=case_id, **doc) if doc else None

    async def save_case(self, case_id, changes):
        self.cases.setdefault(case_id, {}).update(
            {k: v for k, v in changes.items() if k != "case_id"}
        )

    async def customer(self, customer_id):
        doc = self.customers.get(customer_id) if customer_id else None
        return CustomerState(customer_id=customer_id, **doc) if doc else None

    async def save_customer(self, customer_id, changes):
        self.customers.setdefault(customer_id, {}).update(
            {k: v for k, v in changes.items() if k != "customer_id"}
        )

    async def schedule(self, timers: list[PlannedTimer]) -> None:
        for t in timers:
            await self.timers.schedule(
                t.id, due_at=t.due_at, kind=str(t.kind), payload=t.payload, case_id=t.case_id
            )

    async def cancel(self, case_id, kinds):
        return await self.timers.cancel(case_id=case_id, kinds=[str(k) for k in kinds])

    async def record_request(self, record: RequestRecord) -> None:
        self.requests.setdefault(record.request_id, record)

    async def request(self, request_id):
        return self.requests.get(request_id) if request_id else None

    async def record_outcome(self, request_id, *, outcome, event_id):
        self.outcomes.setdefault(request_id, set()).add(outcome)


@pytest.fixture
def followup():
    settings = LexcareSettings(service_name="followup", retry_backoff_s=0)
    broker = make_broker(settings, configure_logging("followup"), DeliveryGuard(settings))
    store = MemoryStore()
    clock = FakeClock(vn(2026, 11, 23, 8, 0))
    care = Care(calendar=CareCalendar(), policy=CarePolicy(), clock=clock)
    router, fire = build_router(settings, store, care)
    broker.include_router(router)
    sent: list[dict] = []

    @broker.subscriber(topics.CARE_CONTACT_REQUESTED)
    async def probe(body: dict) -> None:
        sent.append(body)

    loop = TimerLoop(store.timers, clock, fire)  # type: ignore[arg-type]
    return broker, store, clock, loop, sent


async def open_case_and_send_first_contact(broker, clock: FakeClock, loop: TimerLoop) -> None:
    """Case c1 opens on Monday 08:00; at 09:00 its first contact goes out."""
    await broker.publish(wire(classified("c1", vn(2026, 11, 23, 8))), topic=topics.CASE_CLASSIFIED)
    clock.set(vn(2026, 11, 23, 9, 0))
    await loop.run_once()


async def test_a_new_case_is_contacted_when_the_window_opens(followup):
    broker, store, clock, loop, sent = followup
    event = classified("c1", vn(2026, 11, 23, 8, 0))
    async with TestKafkaBroker(broker):
        await broker.publish(wire(event), topic=topics.CASE_CLASSIFIED)
        assert await loop.run_once() == 0
        clock.set(vn(2026, 11, 23, 9, 0))
        assert await loop.run_once() == 1
    [request] = sent
    assert request["kind"] == "first_contact"
    assert request["case_id"] == "c1"
    assert request["contact"]["sender_id"] == "zalo:1"
    assert request["correlation_id"] == str(event.event_id)
    assert store.requests[request["request_id"]].timer_id == "first_contact:c1"


async def test_a_redelivered_contact_schedules_nothing_new(followup):
    broker, store, *_ = followup
    event = classified("c1", vn(2026, 11, 23, 8, 0))
    async with TestKafkaBroker(broker):
        await broker.publish(wire(event), topic=topics.CASE_CLASSIFIED)
        before = dict(store.timers.docs)
        await broker.publish(wire(event), topic=topics.CASE_CLASSIFIED)
    assert store.timers.docs == before
    assert set(before) >= {"first_contact:c1"}


async def test_resolution_cancels_the_cadence_and_plans_the_check_in(followup):
    broker, store, *_ = followup
    async with TestKafkaBroker(broker):
        await broker.publish(
            wire(classified("c1", vn(2026, 11, 23, 8))), topic=topics.CASE_CLASSIFIED
        )
        await broker.publish(wire(resolved("c1", vn(2026, 11, 23, 10))), topic=topics.CASE_RESOLVED)
    assert store.timers.pending("care:") == {}
    assert store.timers.pending("first_contact:") == {}
    assert store.timers.pending("check_in:c1")["check_in:c1"]["due_at"] == vn(2026, 11, 30, 10)


async def test_no_answer_is_retried_three_times_then_given_up(followup):
    broker, store, clock, loop, sent = followup
    async with TestKafkaBroker(broker):
        await open_case_and_send_first_contact(broker, clock, loop)
        for attempt in range(1, 5):
            request = sent[-1]
            assert request["attempt"] == attempt
            answer = completed("c1", request["request_id"], "no_answer", clock.now())
            await broker.publish(wire(answer), topic=topics.CARE_CONTACT_COMPLETED)
            retries = store.timers.pending("first_contact:c1:retry")
            if attempt < 4:
                retry = retries[f"first_contact:c1:retry{attempt + 1}"]
                clock.set(retry["due_at"])
                await loop.run_once()
            else:
                assert retries == {}
    attempts = [r["attempt"] for r in sent if r["kind"] == "first_contact"]
    assert attempts == [1, 2, 3, 4]
    assert store.outcomes[sent[-1]["request_id"]] == {"no_answer"}


async def test_wrong_number_pauses_care_until_the_customer_comes_back(followup):
    broker, store, clock, loop, sent = followup
    async with TestKafkaBroker(broker):
        await open_case_and_send_first_contact(broker, clock, loop)
        wrong = completed("c1", sent[0]["request_id"], "wrong_number", clock.now())
        await broker.publish(wire(wrong), topic=topics.CARE_CONTACT_COMPLETED)
        assert store.timers.pending("care:c1") == {}
        back = classified("c1", vn(2026, 11, 24, 10), new_case=False)
        clock.set(vn(2026, 11, 24, 10))
        await broker.publish(wire(back), topic=topics.CASE_CLASSIFIED)
    [(_, care)] = store.timers.pending("care:c1").items()
    assert care["due_at"] == vn(2026, 11, 26, 9, 0)


async def test_loyalty_offer_goes_to_the_customers_latest_case(followup):
    broker, _, clock, loop, sent = followup
    async with TestKafkaBroker(broker):
        await broker.publish(
            wire(classified("c1", vn(2026, 11, 23, 8))), topic=topics.CASE_CLASSIFIED
        )
        loyal = became_loyal("cus-c1", vn(2026, 11, 23, 8, 30))
        await broker.publish(wire(loyal), topic=topics.CUSTOMER_SEGMENT_CHANGED)
        clock.set(vn(2026, 11, 23, 9, 0))
        await loop.run_once()
    offer = next(r for r in sent if r["kind"] == "loyalty_offer")
    assert offer["case_id"] == "c1"
    assert offer["customer_id"] == "cus-c1"


async def test_a_timer_fired_twice_repeats_the_same_request_and_event_ids(followup):
    broker, store, clock, loop, sent = followup
    async with TestKafkaBroker(broker):
        await open_case_and_send_first_contact(broker, clock, loop)
        timer = store.timers.docs["first_contact:c1"]
        await loop.fire(
            Timer("first_contact:c1", timer["due_at"], "first_contact", timer["payload"], "c1", 2)
        )
    first, again = sent
    assert first["request_id"] == again["request_id"]
    assert first["event_id"] == again["event_id"]
