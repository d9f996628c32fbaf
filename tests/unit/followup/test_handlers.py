"""Followup's rules over a partition's state in memory, as the runtime runs them: each event
and each due timer on a view of one `PartitionState`, the internal re-keying topic fed back,
the published requests collected. No broker, no database."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import pytest

from services.followup.domain import CarePolicy, CaseState, CustomerState
from services.followup.handlers import Care, register
from shared import topics
from shared.calendar import CareCalendar
from shared.events import Event
from shared.runtime import Context, Timer, View
from shared.runtime.state import DELETED, PartitionState
from tests.unit.followup.builders import became_loyal, classified, completed, resolved, vn


class Desk:
    """Followup's registered rules run over one partition, in order, like the runtime."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.state: PartitionState[Any] = PartitionState(0)
        self.routes: dict[str, tuple[type[Event], Callable[..., None]]] = {}
        self.timer_rules: dict[str, Callable[..., None]] = {}
        self.internal: set[str] = set()
        self.sent: list[dict[str, Any]] = []
        self.levels: list[dict[str, Any]] = []
        register(self, Care(calendar=CareCalendar(), policy=CarePolicy()))  # type: ignore[arg-type]

    # What `register` calls on a Runtime.
    def on(
        self, topic: str, model: type[Event], *, internal: bool = False, stateless: bool = False
    ):
        def add(rule):
            self.routes[topic] = (model, rule)
            if internal:
                self.internal.add(topic)
            return rule

        return add

    def on_timer(self, kind: str):
        def add(rule):
            self.timer_rules[kind] = rule
            return rule

        return add

    def publish(self, event: Event) -> None:
        """Run the rule of the event's topic; feed what it emits to the internal topic back."""
        model, rule = self.routes[event.event_type]
        self._run(lambda view, ctx: rule(view, model.model_validate(event), ctx))

    def advance(self, to: datetime) -> int:
        """Move the clock and fire every timer due by then, soonest first; how many care
        timers fired (service-level clocks fire too, counted apart: test_levels.py)."""
        self.now, fired = to, 0
        while due := sorted(
            (t for t in self.state.timers.values() if t.due_at <= to), key=lambda t: t.due_at
        ):
            self.fire(due[0])
            fired += not due[0].kind.startswith("sla.")
        return fired

    def fire(self, timer: Timer) -> None:
        """Fire `timer` as the runtime does (even when it fired before)."""

        def rule(view: View[Any], ctx: Context) -> None:
            view.drop_timer(timer.id)
            self.timer_rules[timer.kind](view, timer, ctx)

        self._run(rule)

    def pending(self, prefix: str = "") -> dict[str, Timer]:
        return {i: t for i, t in self.state.timers.items() if i.startswith(prefix)}

    def value(self, key: str) -> Any:
        return self.state.values.get(key)

    def _run(self, rule: Callable[[View[Any], Context], None]) -> None:
        view: View[Any] = View(self.state)
        ctx = Context(view, now=self.now, topic=lambda name: name)
        rule(view, ctx)
        for key, value in view.writes.items():
            self.state.put(key, value)
        for timer_id, timer in view.timer_writes.items():
            if timer is DELETED:
                self.state.timers.pop(timer_id, None)
            else:
                self.state.timers[timer_id] = timer
        for out in ctx.emitted:
            if out.topic in self.internal:
                model, _ = self.routes[out.topic]
                self.publish(model.model_validate_json(out.value))
            elif out.topic.startswith("sla."):
                self.levels.append(orjson.loads(out.value))
            else:
                assert out.topic == topics.CARE_CONTACT_REQUESTED
                self.sent.append(orjson.loads(out.value))


@pytest.fixture
def desk() -> Desk:
    return Desk(vn(2026, 11, 23, 8, 0))


def open_case_and_send_first_contact(desk: Desk) -> None:
    """Case c1 opens on Monday 08:00; at 09:00 its first contact goes out."""
    desk.publish(classified("c1", vn(2026, 11, 23, 8)))
    desk.advance(vn(2026, 11, 23, 9, 0))


def test_a_new_case_is_contacted_when_the_window_opens(desk):
    event = classified("c1", vn(2026, 11, 23, 8, 0))
    desk.publish(event)
    assert desk.advance(vn(2026, 11, 23, 8, 59)) == 0
    assert desk.advance(vn(2026, 11, 23, 9, 0)) == 1
    [request] = desk.sent
    assert request["kind"] == "first_contact"
    assert request["case_id"] == "c1"
    assert request["contact"]["sender_id"] == "zalo:1"
    assert request["correlation_id"] == str(event.event_id)
    case = desk.value("case/c1")
    assert isinstance(case, CaseState)
    assert case.requests[request["request_id"]].timer_id == "first_contact:c1"


def test_a_second_contact_on_the_case_plans_no_timer_twice(desk):
    desk.publish(classified("c1", vn(2026, 11, 23, 8, 0)))
    before = dict(desk.state.timers)
    desk.publish(classified("c1", vn(2026, 11, 23, 8, 5), new_case=False))
    assert desk.state.timers == before
    assert set(before) >= {"first_contact:c1"}


def test_the_customer_is_owned_by_its_own_key_with_its_birthday(desk):
    desk.publish(classified("c1", vn(2026, 11, 23, 8, 0), birthday="11-27"))
    customer = desk.value("customer/cus-c1")
    assert isinstance(customer, CustomerState)
    assert (customer.last_case_id, customer.birthday) == ("c1", "11-27")
    [birthday] = desk.pending("birthday:").values()
    assert birthday.id == "birthday:cus-c1:2026-11-27"
    assert birthday.payload["customer_id"] == "cus-c1"


def test_a_contact_on_the_birthday_after_the_greeting_greets_no_second_time(desk):
    desk.publish(classified("c1", vn(2026, 11, 23, 8), birthday="11-27"))
    desk.advance(vn(2026, 11, 27, 9, 0))
    desk.now = vn(2026, 11, 27, 10, 0)
    desk.publish(classified("c2", vn(2026, 11, 27, 10, 0), customer_id="cus-c1"))
    desk.advance(vn(2026, 11, 27, 18, 0))
    assert [r["kind"] for r in desk.sent].count("birthday") == 1
    assert set(desk.pending("birthday:")) == {"birthday:cus-c1:2027-11-27"}


def test_resolution_cancels_the_cadence_and_plans_the_check_in(desk):
    desk.publish(classified("c1", vn(2026, 11, 23, 8)))
    desk.publish(resolved("c1", vn(2026, 11, 23, 10)))
    assert desk.pending("care:") == {}
    assert desk.pending("first_contact:") == {}
    assert desk.pending("check_in:c1")["check_in:c1"].due_at == vn(2026, 11, 30, 10)


def test_a_second_resolution_after_the_check_in_plans_no_second_check_in(desk):
    desk.publish(classified("c1", vn(2026, 11, 23, 8)))
    desk.publish(resolved("c1", vn(2026, 11, 23, 10)))
    desk.advance(vn(2026, 11, 30, 10))
    desk.publish(resolved("c1", vn(2026, 11, 30, 11)))
    assert desk.advance(vn(2026, 12, 31, 10)) == 0
    assert [r["kind"] for r in desk.sent] == ["check_in"]


def test_no_answer_is_retried_three_times_then_given_up(desk):
    open_case_and_send_first_contact(desk)
    for attempt in range(1, 5):
        request = desk.sent[-1]
        assert request["attempt"] == attempt
        desk.publish(completed("c1", request["request_id"], "no_answer", desk.now))
        retries = desk.pending("first_contact:c1:retry")
        if attempt < 4:
            retry = retries[f"first_contact:c1:retry{attempt + 1}"]
            desk.advance(retry.due_at)
        else:
            assert retries == {}
    attempts = [r["attempt"] for r in desk.sent if r["kind"] == "first_contact"]
    assert attempts == [1, 2, 3, 4]
    last = desk.value("case/c1").requests[desk.sent[-1]["request_id"]]
    assert last.outcomes == ("no_answer",)


def test_wrong_number_pauses_care_until_the_customer_comes_back(desk):
    open_case_and_send_first_contact(desk)
    desk.publish(completed("c1", desk.sent[0]["request_id"], "wrong_number", desk.now))
    assert desk.pending("care:c1") == {}
    assert desk.value("case/c1").unreachable
    desk.now = vn(2026, 11, 24, 10)
    desk.publish(classified("c1", vn(2026, 11, 24, 10), new_case=False))
    [care] = desk.pending("care:c1").values()
    assert care.due_at == vn(2026, 11, 26, 9, 0)


def test_declined_stops_every_care_contact_of_the_case(desk):
    open_case_and_send_first_contact(desk)
    desk.publish(completed("c1", desk.sent[0]["request_id"], "declined", desk.now))
    desk.publish(resolved("c1", vn(2026, 11, 23, 10)))
    assert desk.pending() == {}
    assert desk.advance(vn(2026, 12, 31, 10)) == 0


def test_loyalty_offer_goes_to_the_customers_latest_case(desk):
    desk.publish(classified("c1", vn(2026, 11, 23, 8)))
    desk.publish(became_loyal("cus-c1", vn(2026, 11, 23, 8, 30), case_id="c9"))
    desk.advance(vn(2026, 11, 23, 9, 0))
    offer = next(r for r in desk.sent if r["kind"] == "loyalty_offer")
    assert offer["case_id"] == "c1"
    assert offer["customer_id"] == "cus-c1"


def test_an_unanswered_greeting_is_retried_by_the_customers_owner(desk):
    desk.publish(classified("c1", vn(2026, 11, 23, 8), birthday="11-27"))
    desk.advance(vn(2026, 11, 27, 9, 0))
    greeting = next(r for r in desk.sent if r["kind"] == "birthday")
    assert greeting["case_id"] == "c1"
    # The outcome arrives keyed by the case; the case passes it on to the customer's key.
    desk.publish(completed("c1", greeting["request_id"], "no_answer", desk.now))
    [retry] = desk.pending("birthday:cus-c1:2026-11-27:retry").values()
    assert retry.payload["customer_id"] == "cus-c1"
    desk.advance(retry.due_at)
    again = [r for r in desk.sent if r["kind"] == "birthday"]
    assert [r["attempt"] for r in again] == [1, 2]
    customer = desk.value("customer/cus-c1")
    assert customer.requests[greeting["request_id"]].outcomes == ("no_answer",)


def test_a_timer_fired_twice_repeats_the_same_request_and_event_ids(desk):
    open_case_and_send_first_contact(desk)
    [first] = desk.sent
    desk.fire(Timer("first_contact:c1", vn(2026, 11, 23, 9), "first_contact", {"case_id": "c1"}))
    again = desk.sent[-1]
    assert (first["request_id"], first["event_id"]) == (again["request_id"], again["event_id"])
    assert len(desk.value("case/c1").requests) == 1
