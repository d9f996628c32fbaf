"""Followup's care rules (SPEC §4), pure: no broker, no database."""

from datetime import date, timedelta

import pytest
from pydantic import TypeAdapter

from services.followup import domain
from services.followup.domain import (
    CarePolicy,
    CaseState,
    CustomerState,
    DueTimer,
    RequestRecord,
)
from shared.calendar import CareCalendar
from shared.events import CareKind, CareOutcome, ContactPoint, Priority
from tests.unit.followup.builders import became_loyal, classified, completed, resolved, vn

calendar = CareCalendar(country=None, extra_days_off=[date(2026, 12, 2)])
policy = CarePolicy()
MON_0800 = vn(2026, 11, 23, 8, 0)
rules = {"calendar": calendar, "policy": policy}


def plan(event, case=None, now=None):
    remembered = domain.remember_classified(case, event)
    return domain.plan_classified(remembered, event, now=now or event.occurred_at, **rules)


def by_kind(timers):
    return {t.kind: t for t in timers}


def known_case(**overrides) -> CaseState:
    fields = {
        "case_id": "c1",
        "customer_id": "cus-c1",
        "channel": "zalo",
        "contact": ContactPoint(channel="zalo", sender_id="zalo:1"),
        "legal_field": "land",
        "cadence": True,
        **overrides,
    }
    return CaseState(**fields)


def due(kind, at, *, case_id="c1", timer_id=None, **payload) -> DueTimer:
    return DueTimer(
        id=timer_id or f"{kind}:{case_id}", kind=kind, due_at=at, case_id=case_id, payload=payload
    )


# --- a new case ---------------------------------------------------------------------------


def test_first_contact_of_a_new_case_is_in_the_next_window():
    timers, case = plan(classified("c1", MON_0800))
    first = by_kind(timers)[CareKind.FIRST_CONTACT]
    assert first.due_at == vn(2026, 11, 23, 9, 0)
    assert first.id == "first_contact:c1"
    assert case.cadence


def test_first_contact_is_at_once_inside_a_window():
    timers, _ = plan(classified("c1", vn(2026, 11, 23, 10, 12)))
    assert by_kind(timers)[CareKind.FIRST_CONTACT].due_at == vn(2026, 11, 23, 10, 12)


def test_first_contact_never_lands_in_the_past_when_processing_lags():
    timers, _ = plan(classified("c1", MON_0800), now=vn(2026, 11, 23, 12, 0))
    assert by_kind(timers)[CareKind.FIRST_CONTACT].due_at == vn(2026, 11, 23, 14, 30)


def test_open_cases_are_cared_for_every_two_days():
    timers, _ = plan(classified("c1", MON_0800))
    assert by_kind(timers)[CareKind.CARE].due_at == vn(2026, 11, 25, 9, 0)


@pytest.mark.parametrize("flag", ["is_dispute", "is_complaint"])
def test_disputes_and_complaints_are_cared_for_every_day(flag):
    timers, _ = plan(classified("c1", MON_0800, **{flag: True}))
    assert by_kind(timers)[CareKind.CARE].due_at == vn(2026, 11, 24, 9, 0)


def test_a_complaint_gets_an_apology_at_once_whatever_the_window():
    sunday_night = vn(2026, 11, 29, 22, 0)
    event = classified("c1", sunday_night, kind="complaint", is_complaint=True)
    timers, _ = plan(event)
    kinds = by_kind(timers)
    assert kinds[CareKind.APOLOGY].due_at == sunday_night
    assert kinds[CareKind.APOLOGY].id == f"apology:{event.contact_id}"
    assert CareKind.FIRST_CONTACT not in kinds  # the apology is the first contact
    assert kinds[CareKind.CARE].due_at == vn(2026, 11, 30, 9, 0)


def test_a_complaint_on_an_existing_case_gets_an_apology_and_makes_care_daily():
    event = classified("c1", MON_0800, new_case=False, is_complaint=True, kind="complaint")
    timers, case = plan(event, case=known_case(cadence=True))
    assert [t.kind for t in timers] == [CareKind.APOLOGY]
    assert case.is_complaint
    assert domain.care_interval(case, policy) == timedelta(days=1)


def test_a_later_contact_does_not_start_a_second_cadence_or_first_contact():
    timers, _ = plan(classified("c1", MON_0800, new_case=False), case=known_case(cadence=True))
    assert timers == []


def test_a_case_followup_never_saw_open_starts_its_cadence():
    timers, case = plan(classified("c1", MON_0800, new_case=False))
    assert [t.kind for t in timers] == [CareKind.CARE]
    assert case.cadence


def test_dispute_flag_stays_set_when_a_later_contact_lacks_it():
    case = domain.remember_classified(known_case(is_dispute=True), classified("c1", MON_0800))
    assert case.is_dispute


def test_replaying_a_contact_plans_the_same_timer_ids():
    event = classified("c1", MON_0800)
    first, _ = plan(event)
    again, _ = plan(event, now=MON_0800 + timedelta(minutes=5))
    assert [t.id for t in first] == [t.id for t in again]


def test_a_contact_replayed_after_its_case_was_saved_plans_its_cadence_again():
    event = classified("c1", MON_0800)
    first, saved = plan(event)
    again, _ = plan(event, case=saved)
    assert [t.id for t in again if t.kind == CareKind.CARE] == [
        t.id for t in first if t.kind == CareKind.CARE
    ]


def test_no_care_planned_for_a_resolved_case():
    event = classified("c1", MON_0800, new_case=False)
    timers, _ = plan(event, case=known_case(cadence=False, resolved_at=MON_0800))
    assert timers == []


# --- resolution and check-in -----------------------------------------------------------------


def test_resolution_plans_a_check_in_seven_days_later_in_a_window():
    check_in, case = domain.plan_resolved(
        known_case(), resolved("c1", vn(2026, 11, 26, 17, 0)), now=MON_0800, **rules
    )
    assert case.resolved and not case.cadence
    # Thursday 3 Dec 17:00 is after the windows → Friday 09:00.
    assert check_in.due_at == vn(2026, 12, 4, 9, 0)
    assert check_in.kind == CareKind.CHECK_IN


def test_check_in_skips_a_holiday():
    check_in, _ = domain.plan_resolved(
        known_case(), resolved("c1", vn(2026, 11, 25, 10, 0)), now=MON_0800, **rules
    )
    assert check_in.due_at == vn(2026, 12, 3, 9, 0)  # 2 Dec is a holiday here


def test_resolving_twice_keeps_the_first_resolution_time():
    first = vn(2026, 11, 26, 10, 0)
    _, case = domain.plan_resolved(known_case(), resolved("c1", first), now=first, **rules)
    check_in, again = domain.plan_resolved(
        case, resolved("c1", first + timedelta(days=1)), now=first, **rules
    )
    assert again.resolved_at == first
    assert check_in.due_at == vn(2026, 12, 3, 10, 0)


def test_no_check_in_when_the_customer_declined_care():
    check_in, _ = domain.plan_resolved(
        known_case(opted_out=True), resolved("c1", MON_0800), now=MON_0800, **rules
    )
    assert check_in is None


def test_check_in_offers_services_related_to_the_case():
    case = known_case(resolved_at=MON_0800, legal_field="family")
    firing = domain.decide_firing(
        due(CareKind.CHECK_IN, vn(2026, 11, 30, 9, 0)), case, None, now=MON_0800, **rules
    )
    assert firing.request.kind == CareKind.CHECK_IN
    assert "will_drafting" in firing.request.related_services


# --- firing ------------------------------------------------------------------------------------


def test_a_due_care_contact_requests_and_plans_the_next_one():
    at = vn(2026, 11, 25, 9, 0)
    firing = domain.decide_firing(due(CareKind.CARE, at), known_case(), None, now=at, **rules)
    request = firing.request
    assert request.kind == CareKind.CARE
    assert request.due_at == at
    assert request.case_id == "c1" and request.customer_id == "cus-c1"
    assert request.channel == "zalo" and request.contact.sender_id == "zalo:1"
    assert request.priority == Priority.NORMAL
    assert request.request_id == domain.request_id_for("care:c1")
    [following] = firing.then
    assert following.kind == CareKind.CARE
    assert following.due_at == vn(2026, 11, 27, 9, 0)


def test_care_on_a_complaint_case_is_high_priority():
    at = vn(2026, 11, 25, 9, 0)
    firing = domain.decide_firing(
        due(CareKind.CARE, at), known_case(is_complaint=True), None, now=at, **rules
    )
    assert firing.request.priority == Priority.HIGH
    assert firing.then[0].due_at == vn(2026, 11, 26, 9, 0)


def test_care_after_a_long_outage_is_not_replayed_day_by_day():
    at, now = vn(2026, 11, 25, 9, 0), vn(2026, 12, 10, 10, 0)
    firing = domain.decide_firing(due(CareKind.CARE, at), known_case(), None, now=now, **rules)
    assert firing.then[0].due_at >= now


@pytest.mark.parametrize(
    "state", [{"resolved_at": MON_0800}, {"opted_out": True}, {"unreachable": True}]
)
def test_care_stops_on_a_closed_or_unreachable_case(state):
    at = vn(2026, 11, 25, 9, 0)
    firing = domain.decide_firing(
        due(CareKind.CARE, at), known_case(**state), None, now=at, **rules
    )
    assert firing.request is None and firing.then == []
    assert firing.case is not None and not firing.case.cadence


def test_a_timer_for_an_unknown_case_sends_nothing():
    at = vn(2026, 11, 25, 9, 0)
    firing = domain.decide_firing(due(CareKind.FIRST_CONTACT, at), None, None, now=at, **rules)
    assert firing.request is None and firing.skipped == "case_unknown"


def test_a_retry_does_not_start_another_chain():
    at = vn(2026, 11, 25, 14, 30)
    timer = due(CareKind.CARE, at, timer_id="care:c1:x:retry2", attempt=2, retry_of="care:c1:x")
    firing = domain.decide_firing(timer, known_case(), None, now=at, **rules)
    assert firing.request.attempt == 2
    assert firing.then == []


# --- outcomes ----------------------------------------------------------------------------------


def record(kind=CareKind.CARE, attempt=1, **payload) -> RequestRecord:
    return RequestRecord(
        request_id="req-1",
        timer_id="care:c1:x" if attempt == 1 else f"care:c1:x:retry{attempt}",
        root_timer_id="care:c1:x",
        kind=kind,
        attempt=attempt,
        case_id="c1",
        timer_case_id="c1",
        payload={"correlation_id": "corr", **payload},
    )


WED_0910 = vn(2026, 11, 25, 9, 10)


def outcome(name, request, case=None, at=WED_0910):
    return domain.plan_outcome(
        completed("c1", "req-1", name, at), request, case or known_case(), now=at, **rules
    )


def test_no_answer_is_retried_when_the_next_window_opens():
    after = outcome("no_answer", record())
    assert after.retry.due_at == vn(2026, 11, 25, 14, 30)
    assert after.retry.id == "care:c1:x:retry2"
    assert after.retry.payload["attempt"] == 2
    assert after.retry.kind == CareKind.CARE


def test_no_answer_late_in_the_afternoon_retries_next_morning():
    after = outcome("no_answer", record(), at=vn(2026, 11, 28, 16, 0))  # Saturday
    assert after.retry.due_at == vn(2026, 11, 30, 9, 0)


def test_no_answer_is_retried_at_most_three_times():
    assert outcome("no_answer", record(attempt=3)).retry.payload["attempt"] == 4
    after = outcome("no_answer", record(attempt=4))
    assert after.retry is None and after.decision == "retries_exhausted"


def test_no_answer_of_a_birthday_greeting_keeps_the_customer():
    after = outcome("no_answer", record(kind=CareKind.BIRTHDAY, customer_id="cus-c1"))
    assert after.retry.kind == CareKind.BIRTHDAY
    assert after.retry.payload["customer_id"] == "cus-c1"


def test_no_answer_on_a_resolved_case_is_not_retried():
    after = outcome("no_answer", record(), case=known_case(resolved_at=MON_0800))
    assert after.retry is None


def test_no_answer_without_a_known_request_is_only_recorded():
    after = outcome("no_answer", None)
    assert after.retry is None and after.cancel_kinds == []


def test_reached_changes_nothing():
    after = outcome("reached", record())
    assert after.retry is None and after.cancel_kinds == [] and after.case is None


def test_wrong_number_pauses_care_until_a_new_contact():
    after = outcome("wrong_number", record())
    assert after.retry is None
    assert after.cancel_kinds == domain.CADENCE_KINDS
    assert after.case.unreachable and not after.case.cadence
    timers, case = plan(classified("c1", MON_0800, new_case=False), case=after.case)
    assert not case.unreachable
    assert [t.kind for t in timers] == [CareKind.CARE]


def test_a_corrected_field_is_no_contact_and_leaves_a_wrong_number_paused():
    after = outcome("wrong_number", record())
    fixed = classified("c1", MON_0800, new_case=False, correction=True, legal_field="labor")
    timers, case = plan(fixed, case=after.case)
    assert case.unreachable and timers == []
    assert case.legal_field == "labor"


def test_declined_ends_care_on_the_case():
    after = outcome("declined", record())
    assert after.case.opted_out
    assert set(after.cancel_kinds) >= {CareKind.CARE, CareKind.CHECK_IN}


# --- birthday and loyalty ------------------------------------------------------------------------


def customer(**overrides) -> CustomerState:
    fields = {
        "customer_id": "cus-c1",
        "contact": ContactPoint(channel="phone", phone="+84912345678"),
        "last_case_id": "c1",
        **overrides,
    }
    return CustomerState(**fields)


def test_birthday_greeting_in_the_morning_window():
    timer = domain.plan_birthday(customer(birthday="11-26"), now=MON_0800, calendar=calendar)
    assert timer.due_at == vn(2026, 11, 26, 9, 0)
    assert timer.id == "birthday:cus-c1:2026-11-26"


def test_birthday_on_a_sunday_is_greeted_the_next_working_morning():
    timer = domain.plan_birthday(customer(birthday="11-29"), now=MON_0800, calendar=calendar)
    assert timer.due_at == vn(2026, 11, 30, 9, 0)


def test_a_birthday_already_past_this_year_is_greeted_next_year():
    timer = domain.plan_birthday(customer(birthday="01-15"), now=MON_0800, calendar=calendar)
    assert timer.due_at == vn(2027, 1, 15, 9, 0)


def test_leap_day_birthday_in_a_common_year():
    assert domain.next_birthday("02-29", date(2027, 1, 1)) == date(2027, 2, 28)
    assert domain.next_birthday("02-29", date(2028, 1, 1)) == date(2028, 2, 29)


@pytest.mark.parametrize("impossible", ["13-01", "02-30", "00-10", "04-31"])
def test_an_impossible_birthday_is_ignored(impossible):
    assert domain.next_birthday(impossible, date(2026, 1, 1)) is None
    assert (
        domain.plan_birthday(customer(birthday=impossible), now=MON_0800, calendar=calendar) is None
    )


def test_birthday_today_is_greeted_today():
    assert domain.next_birthday("11-23", date(2026, 11, 23)) == date(2026, 11, 23)
    assert domain.next_birthday("02-29", date(2028, 3, 1)) == date(2029, 2, 28)


def test_no_birthday_no_greeting():
    assert domain.plan_birthday(customer(), now=MON_0800, calendar=calendar) is None


def test_a_birthday_greeting_plans_next_years():
    at = vn(2026, 11, 26, 9, 0)
    timer = DueTimer(
        "birthday:cus-c1:2026-11-26",
        CareKind.BIRTHDAY,
        at,
        None,
        {"customer_id": "cus-c1", "birthday": "11-26"},
    )
    firing = domain.decide_firing(timer, None, customer(birthday="11-26"), now=at, **rules)
    assert firing.request.kind == CareKind.BIRTHDAY
    assert firing.request.case_id == "c1"
    assert firing.request.channel == "phone"
    assert [t.id for t in firing.then] == ["birthday:cus-c1:2027-11-26"]


def test_a_changed_birthday_skips_the_old_greeting():
    at = vn(2026, 11, 26, 9, 0)
    timer = DueTimer(
        "birthday:cus-c1:2026-11-26",
        CareKind.BIRTHDAY,
        at,
        None,
        {"customer_id": "cus-c1", "birthday": "11-26"},
    )
    firing = domain.decide_firing(timer, None, customer(birthday="12-01"), now=at, **rules)
    assert firing.request is None and firing.skipped == "birthday_changed"


def test_becoming_loyal_plans_an_offer_in_the_next_window():
    event = became_loyal("cus-c1", vn(2026, 11, 28, 18, 0))
    offer = domain.plan_loyalty_offer(event, now=event.occurred_at, calendar=calendar)
    assert offer.kind == CareKind.LOYALTY_OFFER
    assert offer.due_at == vn(2026, 11, 30, 9, 0)


@pytest.mark.parametrize(("previous", "segment"), [("loyal", "loyal"), ("new", "customer")])
def test_no_offer_unless_the_customer_becomes_loyal(previous, segment):
    event = became_loyal("cus-c1", MON_0800, previous_segment=previous, segment=segment)
    assert domain.plan_loyalty_offer(event, now=MON_0800, calendar=calendar) is None


def test_a_loyalty_offer_for_a_customer_without_a_case_sends_nothing():
    timer = DueTimer(
        "loyalty_offer:cus-x:e", CareKind.LOYALTY_OFFER, MON_0800, None, {"customer_id": "cus-x"}
    )
    firing = domain.decide_firing(timer, None, None, now=MON_0800, **rules)
    assert firing.request is None and firing.skipped == "customer_unknown"


def test_a_timer_planned_once_is_never_planned_again():
    case = known_case()
    check_in = domain.PlannedTimer("check_in:c1", MON_0800, CareKind.CHECK_IN, "c1")
    new, case = domain.plan_once(case, [check_in])
    assert new == [check_in]
    again, case = domain.plan_once(case, [check_in])
    assert again == []
    assert domain.planned_of(case, [CareKind.CHECK_IN]) == ["check_in:c1"]
    assert domain.planned_of(case, domain.CADENCE_KINDS) == []


def test_a_request_is_kept_once_and_its_outcomes_in_order():
    record = RequestRecord(
        request_id="req-1",
        timer_id="care:c1:x",
        root_timer_id="care:c1:x",
        kind=CareKind.CARE,
        attempt=1,
        case_id="c1",
    )
    case = domain.with_request(known_case(), record)
    assert domain.with_request(case, record.model_copy(update={"attempt": 9})) == case
    case = domain.with_outcome(case, "req-1", CareOutcome.NO_ANSWER)
    case = domain.with_outcome(case, "req-unknown", CareOutcome.REACHED)
    assert case.requests["req-1"].outcomes == (CareOutcome.NO_ANSWER,)
    assert set(case.requests) == {"req-1"}


def test_state_values_are_told_apart_by_kind():
    adapter = TypeAdapter(domain.Memory)
    for value in (known_case(), CustomerState(customer_id="cus-c1", birthday="11-27")):
        assert adapter.validate_python(adapter.dump_python(value, mode="json")) == value
    assert domain.is_idle(CustomerState(customer_id="cus-c1"))
    assert not domain.is_idle(known_case())
    assert domain.is_idle(known_case(resolved_at=MON_0800))
