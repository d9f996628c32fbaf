"""Routing's rules without a broker or a database."""

from datetime import timedelta

import pytest
import yaml
from pydantic import ValidationError

from services.routing import domain
from services.routing.app import RoutingSettings
from shared.events import AssignmentReason, Channel, DeliveryMethod, IncomeTier, LegalField
from tests.unit.routing.factories import T0, person


def case(field: str = "land", **overrides) -> domain.RoutedCase:
    values = {
        "case_id": "case-1",
        "legal_field": LegalField(field),
        "is_dispute": False,
        "is_complaint": False,
        "opened_at": T0,
        **overrides,
    }
    return domain.RoutedCase(**values)


def loads(**held: int) -> dict[str, frozenset[int]]:
    """Each person holding slots 0..n-1."""
    return {pid: frozenset(range(n)) for pid, n in held.items()}


# --- eligibility -------------------------------------------------------------------------


def test_only_active_people_who_know_the_field_and_have_room_are_candidates():
    people = [
        person("law-ok"),
        person("law-away", active=False),
        person("law-family", legal_fields=["family"]),
        person("law-full", capacity=1),
        person("law-none", capacity=0),
    ]
    ranked = domain.rank_candidates(case(), people, loads=loads(**{"law-full": 1}))
    assert [p.id for p in ranked] == ["law-ok"]


@pytest.mark.parametrize("flag", ["is_dispute", "is_complaint"])
def test_a_dispute_or_complaint_goes_to_a_lawyer_not_a_consultant(flag):
    people = [person("con-1", role="consultant", years_experience=30), person("law-1")]
    ranked = domain.rank_candidates(case(**{flag: True}), people, loads={})
    assert [p.id for p in ranked] == ["law-1"]


def test_a_plain_inquiry_may_go_to_a_consultant():
    people = [person("con-1", role="consultant", years_experience=30), person("law-1")]
    assert [p.id for p in domain.rank_candidates(case(), people, loads={})] == ["con-1", "law-1"]


# --- ordering and tie-breaks -------------------------------------------------------------


def test_the_least_loaded_comes_first_whatever_the_experience():
    people = [person("law-senior", years_experience=25), person("law-junior", years_experience=1)]
    ranked = domain.rank_candidates(case(), people, loads=loads(**{"law-senior": 1}))
    assert [p.id for p in ranked] == ["law-junior", "law-senior"]


def test_equal_load_goes_to_the_most_experienced():
    people = [person("law-a", years_experience=3), person("law-b", years_experience=12)]
    ranked = domain.rank_candidates(case(), people, loads=loads(**{"law-a": 1, "law-b": 1}))
    assert [p.id for p in ranked] == ["law-b", "law-a"]


def test_equal_load_and_experience_goes_by_id():
    people = [person("law-b"), person("law-c"), person("law-a")]
    assert [p.id for p in domain.rank_candidates(case(), people, loads={})] == [
        "law-a",
        "law-b",
        "law-c",
    ]


def test_load_counts_slots_held_even_above_a_lowered_capacity():
    cut = person("law-cut", capacity=2)
    held = {"law-cut": frozenset({3, 4})}  # held before the capacity went from 5 to 2
    assert domain.free_slots(cut, held) == []
    assert domain.free_slots(cut, {"law-cut": frozenset({1})}) == [0]


# --- nobody fits -------------------------------------------------------------------------


def test_nobody_knowing_the_field_is_no_expert():
    people = [person("law-family", legal_fields=["family"]), person("law-away", active=False)]
    assert domain.why_nobody(case(), people) == AssignmentReason.NO_EXPERT


def test_a_dispute_with_only_consultants_in_the_field_is_no_expert():
    people = [person("con-land", role="consultant")]
    assert domain.why_nobody(case(is_dispute=True), people) == AssignmentReason.NO_EXPERT


def test_experts_all_busy_is_no_capacity():
    people = [person("law-1", capacity=1)]
    assert domain.rank_candidates(case(), people, loads=loads(**{"law-1": 1})) == []
    assert domain.why_nobody(case(), people) == AssignmentReason.NO_CAPACITY


def test_a_case_with_a_previous_assignee_is_reassigned():
    assert domain.assignment_reason(None) == AssignmentReason.ASSIGNED
    assert domain.assignment_reason("law-1") == AssignmentReason.REASSIGNED


# --- the queue ---------------------------------------------------------------------------


def test_waiting_complaints_come_first_then_the_oldest():
    old = case(case_id="old", opened_at=T0)
    new = case(case_id="new", opened_at=T0 + timedelta(hours=1))
    newest_complaint = case(case_id="angry", is_complaint=True, opened_at=T0 + timedelta(days=1))
    same_time = case(case_id="also-old", opened_at=T0)
    ordered = domain.queue_order([new, old, newest_complaint, same_time])
    assert [c.case_id for c in ordered] == ["angry", "also-old", "old", "new"]


def test_the_queue_serves_only_fields_an_active_person_with_a_free_slot_knows():
    people = [
        person("law-1", capacity=1, legal_fields=["land", "family"]),
        person("law-2", capacity=1, legal_fields=["labor"]),
        person("law-away", active=False, legal_fields=["criminal"]),
    ]
    assert domain.fields_with_room(people, {}) == {"land", "family", "labor"}
    assert domain.fields_with_room(people, loads(**{"law-1": 1})) == {"labor"}
    assert domain.fields_with_room(people, loads(**{"law-1": 1, "law-2": 1})) == set()


# --- the roster file ---------------------------------------------------------------------


def test_only_new_or_edited_file_entries_are_applied_again():
    same, edited, new = person("law-1"), person("law-2", capacity=9), person("law-3")
    loaded = {
        "law-1": domain.person_fingerprint(same),
        "law-2": domain.person_fingerprint(person("law-2")),
    }
    assert [p.id for p in domain.file_changes([same, edited, new], loaded)] == ["law-2", "law-3"]


def test_a_roster_with_a_duplicate_id_is_refused():
    entry = person("law-1").model_dump(mode="json")
    with pytest.raises(ValidationError, match="duplicate roster ids: law-1"):
        domain.parse_roster({"people": [entry, entry]})


def test_the_shipped_roster_covers_every_field_with_a_lawyer():
    people = domain.parse_roster(yaml.safe_load(RoutingSettings().roster_file.read_text()))
    assert len(people) >= 12
    for field in LegalField:
        lawyers = [p for p in people if p.role == "lawyer" and field in p.legal_fields]
        assert lawyers, f"no lawyer for {field}"
    assert {p.role for p in people} == {"lawyer", "consultant"}


# --- fees --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fees() -> domain.FeeSchedule:
    return domain.parse_fee_schedule(yaml.safe_load(RoutingSettings().fees_file.read_text()))


def request(**overrides) -> domain.QuoteRequest:
    values = {
        "legal_field": LegalField.LAND,
        "is_dispute": False,
        "is_complaint": False,
        "legal_aid": False,
        "channel": Channel.ZALO,
        "income_tier": None,
        **overrides,
    }
    return domain.QuoteRequest(**values)


def test_the_shipped_fee_schedule_is_marked_as_example_prices(fees):
    assert fees.example_prices is True
    assert set(fees.fields) == set(LegalField)


def test_a_quote_prices_every_delivery_method_in_whole_vnd(fees):
    quote = domain.quote(request(), fees)
    assert set(quote.prices_vnd) == set(DeliveryMethod)
    assert quote.prices_vnd == fees.fields[LegalField.LAND].prices_vnd
    assert all(type(p) is int and p > 0 for p in quote.prices_vnd.values())
    assert "đất đai" in quote.basis
    assert quote.referral is None


def test_a_dispute_adds_the_surcharge_to_every_method_and_says_so(fees):
    plain = domain.quote(request(), fees)
    dispute = domain.quote(request(is_dispute=True), fees)
    assert fees.dispute_surcharge_vnd > 0
    for method in DeliveryMethod:
        assert dispute.prices_vnd[method] == plain.prices_vnd[method] + fees.dispute_surcharge_vnd
    assert dispute.dispute_surcharge_vnd == fees.dispute_surcharge_vnd
    assert domain.vnd(fees.dispute_surcharge_vnd) in dispute.basis


def test_legal_aid_is_free_and_referred_to_the_legal_aid_center(fees):
    quote = domain.quote(request(legal_aid=True, is_dispute=True), fees)
    assert quote.prices_vnd == dict.fromkeys(DeliveryMethod, 0)
    assert quote.dispute_surcharge_vnd == 0
    assert quote.legal_aid is True
    assert quote.referral == (
        "Anh/chị vui lòng liên hệ đến Trung tâm trợ giúp pháp lý để có thể nhận được "
        "dịch vụ tư vấn miễn phí"
    )


@pytest.mark.parametrize(
    ("facts", "method"),
    [
        ({"legal_aid": True, "is_dispute": True}, DeliveryMethod.PHONE),
        ({"is_complaint": True, "is_dispute": True}, DeliveryMethod.PHONE),
        ({"is_dispute": True, "income_tier": IncomeTier.BUDGET}, DeliveryMethod.OFFICE),
        ({"channel": Channel.WALK_IN, "income_tier": IncomeTier.PREMIUM}, DeliveryMethod.OFFICE),
        ({"income_tier": IncomeTier.PREMIUM}, DeliveryMethod.ONSITE),
        ({"income_tier": IncomeTier.BUDGET}, DeliveryMethod.PHONE),
        ({"legal_field": LegalField.ENTERPRISE}, DeliveryMethod.LETTER),
        ({"legal_field": LegalField.TRAFFIC}, DeliveryMethod.PHONE),
    ],
)
def test_the_recommended_method_follows_the_first_rule_that_applies(fees, facts, method):
    assert domain.recommended_method(request(**facts), fees) == method


def test_a_fee_schedule_missing_a_price_is_refused(fees):
    data = fees.model_dump(mode="json")
    del data["fields"]["land"]["prices_vnd"]["onsite"]
    with pytest.raises(ValidationError, match="no price for: onsite"):
        domain.parse_fee_schedule(data)


def test_vnd_amounts_are_written_with_dots():
    assert domain.vnd(2_000_000) == "2.000.000"
