"""Followup's service-level clocks as the runtime runs them (in memory, three partitions):
warnings and breaches at their business-time moments, once; met when stopped before;
paused while the firm waits on the customer; re-planned by a new policy."""

import uuid
from datetime import UTC, date, datetime
from typing import Any

from services.followup import sla
from services.followup.app import FollowupSettings, care_of, followup_runtime
from services.followup.internal import SlaPolicyRead
from shared import topics
from shared.calendar import CareCalendar
from shared.clock import FakeClock
from shared.events import CaseAssigned, CaseCustomerReplied, CaseWaitingOnCustomer, derived_event_id
from shared.runtime.state import DELETED
from tests.runtime_harness import NO_DATABASE, RuleHarness
from tests.unit.followup.builders import classified, completed, resolved, vn

MONDAY_8 = vn(2026, 11, 30, 8, 0)


class Harness(RuleHarness):
    """Followup's rules with the shipped policy (normal: 4h first response, 24h resolution)."""

    def __init__(self, start: datetime = MONDAY_8, calendar: CareCalendar | None = None) -> None:
        config = FollowupSettings()
        clock = FakeClock(start)
        self.care = care_of(config, calendar)
        runtime = followup_runtime(config, NO_DATABASE, care=self.care, clock=clock)
        super().__init__(runtime, clock)

    def to(self, moment: datetime) -> None:
        """Move the clock to `moment`, firing what is due."""
        self.advance(moment - self.clock.now())

    def levels(self, topic: str) -> list[dict[str, Any]]:
        return self.out[topic]

    def moments(self, topic: str) -> list[tuple[str, str]]:
        return [(e["target"], e["occurred_at"]) for e in self.out[topic]]


def at(moment: datetime) -> str:
    return moment.isoformat()


def test_a_case_warns_then_breaches_at_its_business_time_moments():
    h = Harness()
    h.send(classified("c1", MONDAY_8))
    h.to(vn(2026, 11, 30, 15, 41))
    assert h.levels(topics.SLA_WARNING) == []
    h.to(vn(2026, 11, 30, 15, 42))
    assert h.moments(topics.SLA_WARNING) == [("first_response", at(vn(2026, 11, 30, 15, 42)))]
    # The breach moment is 16:30; it is announced after the grace (60 s), stamped 16:30.
    h.to(vn(2026, 11, 30, 16, 30, 59))
    assert h.levels(topics.SLA_BREACHED) == []
    h.to(vn(2026, 11, 30, 16, 31))
    [breach] = h.levels(topics.SLA_BREACHED)
    assert breach["occurred_at"] == at(vn(2026, 11, 30, 16, 30))
    assert breach["target"] == "first_response"
    assert (breach["priority"], breach["legal_field"], breach["channel"]) == (
        "normal",
        "land",
        "zalo",
    )
    assert breach["target_business_s"] == breach["elapsed_business_s"] == 4 * 3600
    assert breach["event_id"] == str(
        derived_event_id("sla.breach:c1:first_response", topics.SLA_BREACHED)
    )
    h.to(vn(2026, 12, 31, 12, 0))  # later: the resolution clock breaches too, each once
    assert sorted(h.moments(topics.SLA_BREACHED)) == [
        ("first_response", at(vn(2026, 11, 30, 16, 30))),
        ("resolution", at(vn(2026, 12, 5, 16, 30))),
    ]
    assert len(h.levels(topics.SLA_WARNING)) == 2


def test_service_level_events_name_who_held_the_case_then():
    h = Harness()
    h.send(classified("c1", MONDAY_8))
    h.send(assigned("c1", "law-land-01"))
    h.to(vn(2026, 11, 30, 16, 31))
    h.send(assigned("c1", "law-land-02"))
    h.to(vn(2026, 12, 31, 12, 0))
    named = {e["target"]: e["assignee_id"] for e in h.levels(topics.SLA_BREACHED)}
    assert named == {"first_response": "law-land-01", "resolution": "law-land-02"}


def test_a_case_resolved_a_second_before_its_breach_never_breaches():
    h = Harness()
    h.send(classified("c1", MONDAY_8))
    h.to(vn(2026, 12, 5, 16, 30, 30))  # after the breach moment, within the grace
    h.send(resolved("c1", vn(2026, 12, 5, 16, 29, 59)))  # stamped a second before it
    h.to(vn(2026, 12, 31, 12, 0))
    assert [e["target"] for e in h.levels(topics.SLA_BREACHED)] == ["first_response"]
    [met] = h.levels(topics.SLA_MET)
    assert (met["target"], met["occurred_at"]) == ("resolution", at(vn(2026, 12, 5, 16, 29, 59)))
    assert met["elapsed_business_s"] == 24 * 3600 - 1
    assert not [t for t in h.timers() if t.kind.startswith("sla.")]
    assert h.keys(sla.RUNNING_PREFIX) == []


def test_a_reached_contact_meets_the_first_response_and_the_resolution_runs_on():
    h = Harness()
    h.send(classified("c1", MONDAY_8))
    h.to(vn(2026, 11, 30, 10, 0))
    h.send(completed("c1", None, "no_answer", vn(2026, 11, 30, 9, 50)))
    assert h.levels(topics.SLA_MET) == []
    h.send(completed("c1", None, "reached", vn(2026, 11, 30, 10, 0)))
    [met] = h.levels(topics.SLA_MET)
    assert (met["target"], met["elapsed_business_s"]) == ("first_response", 3600)
    h.send(completed("c1", None, "reached", vn(2026, 11, 30, 10, 5)))  # a second reach
    assert len(h.levels(topics.SLA_MET)) == 1
    h.to(vn(2026, 12, 31, 12, 0))
    assert h.moments(topics.SLA_BREACHED) == [("resolution", at(vn(2026, 12, 5, 16, 30)))]
    assert [e["target"] for e in h.levels(topics.SLA_WARNING)] == ["resolution"]


def test_waiting_on_the_customer_pauses_the_clocks_until_they_reply():
    h = Harness()
    h.send(classified("c1", vn(2026, 11, 30, 9, 0)))
    h.send(waiting("c1", vn(2026, 11, 30, 10, 0)))  # 1h of 4h used
    h.to(vn(2026, 12, 3, 12, 0))
    assert h.levels(topics.SLA_WARNING) == h.levels(topics.SLA_BREACHED) == []
    h.send(replied("c1", vn(2026, 12, 3, 14, 30)))  # Thursday afternoon: 3h left
    h.to(vn(2026, 12, 31, 12, 0))
    first = [e for e in h.levels(topics.SLA_BREACHED) if e["target"] == "first_response"]
    assert [e["occurred_at"] for e in first] == [at(vn(2026, 12, 4, 10, 0))]


def test_the_customers_next_contact_resumes_the_clocks_too():
    h = Harness()
    h.send(classified("c1", vn(2026, 11, 30, 9, 0)))
    h.send(waiting("c1", vn(2026, 11, 30, 10, 0)))
    h.send(classified("c1", vn(2026, 12, 3, 14, 30), new_case=False))
    h.to(vn(2026, 12, 31, 12, 0))
    first = [e for e in h.levels(topics.SLA_BREACHED) if e["target"] == "first_response"]
    assert [e["occurred_at"] for e in first] == [at(vn(2026, 12, 4, 10, 0))]


def test_staff_correcting_the_field_does_not_resume_paused_clocks():
    h = Harness()
    h.send(classified("c1", vn(2026, 11, 30, 9, 0)))
    h.send(waiting("c1", vn(2026, 11, 30, 10, 0)))  # 1h of 4h used
    fixed = classified("c1", vn(2026, 12, 1, 9, 0), new_case=False, correction=True)
    h.send(fixed)  # staff's case.reclassified: the customer did not answer
    h.to(vn(2026, 12, 31, 12, 0))
    assert h.levels(topics.SLA_WARNING) == h.levels(topics.SLA_BREACHED) == []


def test_a_case_that_becomes_a_complaint_is_held_to_the_complaint_targets():
    h = Harness()
    h.send(classified("c1", vn(2026, 11, 30, 9, 0)))
    h.send(classified("c1", vn(2026, 11, 30, 9, 10), new_case=False, is_complaint=True))
    h.to(vn(2026, 11, 30, 11, 0))
    # Complaint: 1h first response from the opening → breached at 10:00.
    [breach] = h.levels(topics.SLA_BREACHED)
    assert (breach["priority"], breach["occurred_at"]) == ("complaint", at(vn(2026, 11, 30, 10)))


def test_a_new_policy_re_plans_every_running_clock_of_the_partition():
    h = Harness()
    for case_id in ("c1", "c2", "c3", "c4"):
        h.send(classified(case_id, vn(2026, 11, 30, 9, 0)))
    h.send(resolved("c4", vn(2026, 11, 30, 9, 30)))
    h.to(vn(2026, 11, 30, 9, 30))
    new = one_hour_first_response()
    broadcast(h, new)
    broadcast(h, new)  # every instance sends it: applied once
    h.to(vn(2026, 11, 30, 11, 0))
    breaches = sorted((e["case_id"], e["occurred_at"]) for e in h.levels(topics.SLA_BREACHED))
    assert breaches == [(c, at(vn(2026, 11, 30, 10, 0))) for c in ("c1", "c2", "c3")]


def test_a_book_that_lists_its_running_clocks_hands_them_to_keys_and_still_re_plans():
    h = Harness()
    for case_id in ("c1", "c2", "c3"):
        h.send(classified(case_id, vn(2026, 11, 30, 9, 0)))
    for state in h.states:  # as a session-7 followup stored them: listed in the book
        listed = [k for k in state.values if k.startswith(sla.RUNNING_PREFIX)]
        for key in listed:
            state.put(key, DELETED)
        running = tuple(key.removeprefix(sla.RUNNING_PREFIX) for key in listed)
        state.put(sla.SLA_KEY, sla.SlaBook(open=running))
    assert h.keys(sla.RUNNING_PREFIX) == []
    broadcast(h, one_hour_first_response())
    assert h.keys(sla.RUNNING_PREFIX) == [sla.running_key(c) for c in ("c1", "c2", "c3")]
    assert all(state.values[sla.SLA_KEY].open == () for state in h.states)
    h.to(vn(2026, 11, 30, 11, 0))
    breaches = sorted((e["case_id"], e["occurred_at"]) for e in h.levels(topics.SLA_BREACHED))
    assert breaches == [(c, at(vn(2026, 11, 30, 10, 0))) for c in ("c1", "c2", "c3")]


def one_hour_first_response() -> sla.SlaPolicy:
    """The shipped policy with a first response due in one business hour."""
    shipped = care_of(FollowupSettings()).sla_policy
    rows = {
        p: r.model_copy(update={"first_response": 3600.0}) for p, r in shipped.priorities.items()
    }
    return shipped.model_copy(update={"priorities": rows})


def test_a_calendar_changed_at_restart_re_plans_the_clocks_with_it():
    before = Harness()
    before.send(classified("c1", MONDAY_8))
    # Restarted with a bridge day off on Monday 30 Nov: the clock counts from Tuesday.
    after = Harness(calendar=CareCalendar(extra_days_off=[date(2026, 11, 30)]))
    after.states = before.states
    broadcast(after, after.care.sla_policy)
    after.to(vn(2026, 12, 2, 12, 0))
    first = [e for e in after.levels(topics.SLA_BREACHED) if e["target"] == "first_response"]
    assert [e["occurred_at"] for e in first] == [at(vn(2026, 12, 1, 16, 30))]


def test_a_breach_timer_fired_again_announces_nothing_twice():
    h = Harness()
    h.send(classified("c1", MONDAY_8))
    [timer] = [t for t in h.timers() if t.id == "sla.breach:c1:first_response"]
    h.to(vn(2026, 11, 30, 16, 31))
    state = h.states[h.partition_of(b"c1")]
    state.timers[timer.id] = timer  # as if the batch that fired it was never stored
    h.to(vn(2026, 11, 30, 16, 32))
    assert len(h.levels(topics.SLA_BREACHED)) == 1


def waiting(case_id: str, moment: datetime) -> CaseWaitingOnCustomer:
    return CaseWaitingOnCustomer(
        event_id=uuid.uuid4(),
        occurred_at=moment,
        producer="staff-tool",
        case_id=case_id,
        agent_id="law-land-01",
    )


def assigned(case_id: str, assignee_id: str) -> CaseAssigned:
    return CaseAssigned(
        event_id=uuid.uuid4(),
        occurred_at=MONDAY_8,
        producer="routing",
        case_id=case_id,
        assignee_id=assignee_id,
        reason="assigned",
        legal_field="land",
    )


def replied(case_id: str, moment: datetime) -> CaseCustomerReplied:
    return CaseCustomerReplied(
        event_id=uuid.uuid4(), occurred_at=moment, producer="staff-tool", case_id=case_id
    )


def broadcast(h: Harness, policy: sla.SlaPolicy) -> None:
    """The policy feed's records: one per partition."""
    event = SlaPolicyRead(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        producer="followup",
        policy=policy,
        fingerprint=sla.fingerprint(policy, h.care.calendar),
    )
    keys = {h.partition_of(k.encode()): k for k in (f"k{i}" for i in range(50))}
    for partition in range(len(h.states)):
        h.send(event.model_copy(update={"event_id": uuid.uuid4()}), key=keys[partition])
