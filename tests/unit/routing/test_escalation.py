"""Escalation on a service-level breach (routing's roster partition, in memory): the most
experienced lawyer of the field with a free slot takes the case, else managers are told;
never twice for one breach."""

from datetime import datetime

from shared import topics
from tests.unit.routing.factories import breached, classified, person, resolved
from tests.unit.routing.test_handlers import Harness


def roster() -> Harness:
    return Harness(
        person("law-junior", years_experience=2),
        person("law-mid", years_experience=8),
        person("law-senior", years_experience=20, capacity=1),
        person("con-land", role="consultant", years_experience=30),
    )


def test_a_breached_case_goes_to_the_most_experienced_lawyer_with_a_free_slot():
    h = roster()
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1", is_dispute=True))
    assert h.holder("c-1") == "law-senior"  # least loaded, then most experienced
    h.deliver(topics.CASE_CLASSIFIED, classified("c-2", is_dispute=True))
    holder = h.holder("c-2")
    h.deliver(topics.SLA_BREACHED, breached("c-2"))
    # law-senior is full (capacity 1); the consultant is no lawyer: law-mid, unless it held it.
    expected = "law-mid" if holder != "law-mid" else "law-junior"
    assert h.holder("c-2") == expected
    last = h.assigned[-1]
    assert (last["case_id"], last["assignee_id"], last["reason"]) == ("c-2", expected, "reassigned")
    assert last["previous_assignee_id"] == holder
    assert h.out[topics.CASE_ESCALATED] == []


def test_a_breach_escalated_once_is_not_escalated_again():
    h = roster()
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1"))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-2"))
    h.deliver(topics.SLA_BREACHED, breached("c-2"))
    holder, assignments = h.holder("c-2"), len(h.assigned)
    h.deliver(topics.SLA_BREACHED, breached("c-2"))  # another event id, same breach
    assert (h.holder("c-2"), len(h.assigned)) == (holder, assignments)
    h.deliver(topics.SLA_BREACHED, breached("c-2", target="first_response"))  # another one
    assert len(h.assigned) == assignments + 1


def test_nobody_free_flags_the_case_to_managers_with_the_reason():
    h = Harness(person("law-only", years_experience=5, capacity=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1"))
    sent = breached("c-1")
    h.deliver(topics.SLA_BREACHED, sent)
    [escalated] = h.out[topics.CASE_ESCALATED]
    assert escalated["case_id"] == "c-1"
    assert (escalated["reason"], escalated["assignee_id"]) == ("no_capacity", "law-only")
    assert escalated["target"] == "resolution"
    assert datetime.fromisoformat(escalated["breached_at"]) == datetime.fromisoformat(
        sent["occurred_at"]
    )
    assert h.holder("c-1") == "law-only"
    h.deliver(topics.SLA_BREACHED, breached("c-1"))
    assert len(h.out[topics.CASE_ESCALATED]) == 1


def test_a_waiting_case_of_a_field_no_lawyer_knows_is_escalated_as_no_expert():
    h = Harness(person("law-land", years_experience=5))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1", legal_field="criminal"))
    h.deliver(topics.SLA_BREACHED, breached("c-1", legal_field="criminal"))
    [escalated] = h.out[topics.CASE_ESCALATED]
    assert (escalated["reason"], escalated["assignee_id"]) == ("no_expert", None)


def test_a_waiting_case_breaching_takes_a_slot_freed_meanwhile_by_the_senior():
    h = Harness(person("law-a", years_experience=3, capacity=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1"))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-2"))  # waits: no capacity
    h.deliver(topics.SLA_BREACHED, breached("c-2"))
    assert h.out[topics.CASE_ESCALATED][0]["reason"] == "no_capacity"
    h.deliver(topics.CASE_RESOLVED, resolved("c-1"))
    assert h.holder("c-2") == "law-a"


def test_a_resolved_case_is_not_escalated():
    h = roster()
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1"))
    h.deliver(topics.CASE_RESOLVED, resolved("c-1"))
    assignments = len(h.assigned)
    h.deliver(topics.SLA_BREACHED, breached("c-1"))
    assert len(h.assigned) == assignments
    assert h.out[topics.CASE_ESCALATED] == []
