"""Intake's rules in memory (no broker, no database): what they publish and keep, with the
identifiers', customers' and cases' partitions apart as Kafka would put them."""

import uuid
from datetime import datetime
from typing import Any

import pytest

from services.intake.app import IntakeSettings, runtime_of
from services.intake.state import (
    RECENT_CONTACTS,
    CaseLink,
    Correction,
    CustomerRecord,
    Merged,
    Owner,
)
from shared import topics
from shared.clock import FakeClock
from shared.events import (
    CaseReclassified,
    CaseResolved,
    ContactPoint,
    ContactReceived,
    ContractSigned,
    Event,
)
from tests.runtime_harness import NO_DATABASE, RuleHarness

T0 = "2026-11-23T09:15:00+07:00"


def contact(**overrides: Any) -> ContactReceived:
    body = {
        "event_id": str(uuid.uuid4()),
        "event_type": "contact.received",
        "occurred_at": T0,
        "producer": "zalo-adapter",
        "channel": "zalo",
        "sender_id": "zalo:1",
        "customer": {"name": "An", "phone": "0912 345 678"},
        "message": "Hàng xóm lấn chiếm đất nhà tôi, tôi muốn khởi kiện",
        **overrides,
    }
    return ContactReceived.model_validate(body)


def signed(case_id: str, contract_id: str) -> ContractSigned:
    return ContractSigned.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "contract.signed",
            "occurred_at": "2026-11-24T10:00:00+07:00",
            "producer": "staff-tool",
            "case_id": case_id,
            "contract_id": contract_id,
            "amount_vnd": 3_000_000,
            "delivery_method": "phone",
        }
    )


class Harness(RuleHarness):
    """Intake's runtime rules over three in-memory partitions."""

    def __init__(self, **overrides: Any) -> None:
        settings = IntakeSettings(**overrides)
        clock = FakeClock(datetime.fromisoformat(T0))
        super().__init__(runtime_of(settings, NO_DATABASE, clock=clock), clock)

    def send_all(self, *events: Event) -> None:
        for event in events:
            self.send(event)

    @property
    def classified(self) -> list[dict]:
        return self.out[topics.CASE_CLASSIFIED]

    def customer(self, customer_id: str) -> CustomerRecord | Merged | None:
        return self.value(f"customer/{customer_id}")

    def owner(self, identifier: str) -> str:
        owner = self.value(f"identifier/{identifier}")
        assert isinstance(owner, Owner)
        return owner.customer_id


@pytest.fixture
def intake() -> Harness:
    return Harness()


def test_a_contact_becomes_a_classified_dispute_case_with_its_correlation_id(intake):
    sent = contact()
    intake.send(sent)
    [out] = intake.classified
    assert out["correlation_id"] == str(sent.event_id)
    assert (out["legal_field"], out["is_dispute"], out["new_case"]) == ("land", True, True)
    assert out["contact"]["phone"] == "+84912345678"
    record = intake.customer(out["customer_id"])
    assert isinstance(record, CustomerRecord)
    assert [c.case_id for c in record.open_cases] == [out["case_id"]]
    assert intake.owner("phone:+84912345678") == out["customer_id"]
    assert intake.owner("sender:zalo:zalo:1") == out["customer_id"]
    assert intake.value(f"case/{out['case_id']}") == CaseLink(
        customer_id=out["customer_id"], contact=ContactPoint.model_validate(out["contact"])
    )


def test_a_duplicate_contact_publishes_nothing_new(intake):
    sent = contact()
    intake.send_all(sent, sent)
    assert len(intake.classified) == 1


def test_a_contact_sent_again_after_the_ledger_forgot_it_changes_nothing(intake):
    """The runtime's ledger holds each partition's latest ids only: a contact an adapter
    sends again later (one that opened a case, one filed on it) is recognised by its
    customer, and nothing is published or changed."""
    opening = contact()
    intake.send(opening)
    [first] = intake.classified
    follow_up = contact(
        message="Tôi gửi thêm sổ đỏ", occurred_at="2026-11-23T11:00:00+07:00",
        case_id=first["case_id"],
    )  # fmt: skip
    intake.send(follow_up)
    [_, second] = intake.classified
    assert second["case_id"] == first["case_id"] and not second["new_case"]
    kept = intake.customer(first["customer_id"])
    published = {topic: list(records) for topic, records in intake.out.items()}
    intake.handled.clear()  # the ledger forgot them
    intake.send_all(opening, follow_up)
    assert intake.out == published
    assert intake.customer(first["customer_id"]) == kept


def test_a_customer_remembers_its_latest_contacts_only(intake):
    sent = [
        contact(message=f"Tôi hỏi thêm lần {n}", occurred_at=f"2026-11-23T1{n}:00:00+07:00")
        for n in range(RECENT_CONTACTS + 2)
    ]
    intake.send_all(*sent)
    record = intake.customer(intake.classified[0]["customer_id"])
    assert isinstance(record, CustomerRecord)
    assert record.contacts == tuple(str(c.event_id) for c in sent[-RECENT_CONTACTS:])


def test_an_unreachable_contact_is_dead_lettered_with_the_reason(intake):
    intake.send(contact(sender_id=None, customer={"name": "An"}))
    [dead] = intake.out[topics.dlq(topics.CONTACT_RECEIVED)]
    assert "no way to reach the customer" in intake.reasons[dead["event_id"]]
    assert intake.classified == []


def test_a_contact_bringing_a_known_phone_and_email_merges_two_customers(intake):
    intake.send(contact(sender_id="zalo:1", customer={"phone": "0912345678"}))
    intake.send(
        contact(
            channel="facebook",
            sender_id="psid-9",
            customer={"email": "an@example.vn"},
            message="Công ty nợ lương 3 tháng",
            occurred_at="2026-11-23T10:00:00+07:00",
        )
    )
    intake.send(
        contact(
            channel="email",
            sender_id=None,
            customer={"phone": "+84 912 345 678", "email": "AN@example.vn"},
            occurred_at="2026-11-23T11:00:00+07:00",
        )
    )
    phone_case, email_case, joined = intake.classified
    [merged] = intake.out[topics.CUSTOMER_MERGED]
    assert merged["customer_id"] == phone_case["customer_id"]
    assert merged["merged_customer_ids"] == [email_case["customer_id"]]
    assert merged["moved_case_ids"] == [email_case["case_id"]]
    assert joined["customer_id"] == phone_case["customer_id"]
    assert (joined["case_id"], joined["new_case"]) == (phone_case["case_id"], False)
    survivor = intake.customer(merged["customer_id"])
    assert isinstance(survivor, CustomerRecord)
    assert {c.case_id for c in survivor.open_cases} == {
        phone_case["case_id"],
        email_case["case_id"],
    }
    assert survivor.profile.emails == ("an@example.vn",)
    assert intake.customer(email_case["customer_id"]) == Merged(
        into=merged["customer_id"], since=survivor.since
    )
    # The email's identifiers now name the survivor; a contract on the moved case counts there.
    assert intake.owner("email:an@example.vn") == merged["customer_id"]
    intake.send(signed(email_case["case_id"], "HD-1"))
    [change] = intake.out[topics.CUSTOMER_SEGMENT_CHANGED][-1:]
    assert change["customer_id"] == merged["customer_id"]
    assert intake.customer(merged["customer_id"]).contracts == ("HD-1",)


def test_a_third_contract_makes_the_customer_loyal_once():
    intake = Harness(loyal_contracts=3)
    intake.send(contact())
    case_id = intake.classified[0]["case_id"]
    intake.send_all(*(signed(case_id, f"HD-{n}") for n in (1, 2, 3, 3)))
    intake.send(signed("case-unknown", "HD-9"))
    changes = intake.out[topics.CUSTOMER_SEGMENT_CHANGED]
    assert [(c["previous_segment"], c["segment"]) for c in changes] == [
        ("new", "customer"),
        ("customer", "loyal"),
    ]
    assert changes[-1]["contracts"] == 3
    assert changes[-1]["contact"]["phone"] == "+84912345678"
    [dead] = intake.out[topics.dlq(topics.CONTRACT_SIGNED)]
    assert "unknown case" in intake.reasons[dead["event_id"]]


def test_a_resolved_case_is_not_joined_and_an_unknown_one_is_dead_lettered(intake):
    first = contact()
    intake.send(first)
    case_id = intake.classified[0]["case_id"]
    resolved = {
        "event_id": str(uuid.uuid4()),
        "event_type": "case.resolved",
        "occurred_at": "2026-11-24T10:00:00+07:00",
        "producer": "staff-tool",
        "outcome": "advised",
    }
    intake.send(CaseResolved.model_validate({**resolved, "case_id": case_id}))
    intake.send(
        CaseResolved.model_validate(
            {**resolved, "event_id": str(uuid.uuid4()), "case_id": "case-x"}
        )
    )
    [dead] = intake.out[topics.dlq(topics.CASE_RESOLVED)]
    assert "unknown case case-x" in intake.reasons[dead["event_id"]]
    intake.send(contact(occurred_at="2026-11-25T09:00:00+07:00"))
    again = intake.classified[1]
    assert (again["new_case"], again["segment"]) == (True, "potential")
    assert again["case_id"] != case_id


def test_a_second_case_makes_a_new_customer_potential(intake):
    intake.send(contact())
    intake.send(
        contact(message="Thủ tục đăng ký nhãn hiệu", occurred_at="2026-11-24T09:00:00+07:00")
    )
    first, second = intake.classified
    assert (first["segment"], second["segment"]) == ("new", "potential")
    assert second["new_case"] is True
    [change] = intake.out[topics.CUSTOMER_SEGMENT_CHANGED]
    assert (change["previous_segment"], change["segment"]) == ("new", "potential")
    assert change["correlation_id"] == second["correlation_id"]


def test_two_simultaneous_contacts_of_one_phone_open_one_case(intake):
    racing = [
        contact(channel="zalo", sender_id="zalo-a", customer={"phone": "0903 111 222"}),
        contact(channel="facebook", sender_id="psid-c", customer={"phone": "0903111222"}),
    ]
    assert len({intake.partition_of(e.partition_key()) for e in racing}) == 2
    intake.interleave(*racing)
    first, second = intake.classified
    assert first["customer_id"] == second["customer_id"]
    assert first["case_id"] == second["case_id"]
    assert [first["new_case"], second["new_case"]] == [True, False]
    assert intake.out[topics.CUSTOMER_MERGED] == []


def test_contacts_claiming_each_others_identifiers_at_once_end_as_one_customer(intake):
    both = contact(
        channel="zalo",
        sender_id="zalo-a",
        customer={"phone": "0903 111 222", "email": "binh@example.vn"},
        message="Tranh chấp đất với hàng xóm",
    )
    email_only = contact(
        channel="facebook",
        sender_id="psid-b",
        customer={"email": "binh@example.vn"},
        message="Hàng xóm lấn đất",
        occurred_at="2026-11-23T09:16:00+07:00",
    )
    intake.interleave(both, email_only)
    classified = {c["correlation_id"]: c for c in intake.classified}
    customers = {c["customer_id"] for c in classified.values()}
    merges = intake.out[topics.CUSTOMER_MERGED]
    survivor = classified[str(both.event_id)]["customer_id"]
    [merge] = merges  # the email was claimed by the other contact's new customer: folded
    assert merge["customer_id"] == survivor
    assert customers == {survivor, *merge["merged_customer_ids"]}
    assert merge["moved_case_ids"] == [classified[str(email_only.event_id)]["case_id"]]
    for identifier in ("phone:+84903111222", "email:binh@example.vn", "sender:facebook:psid-b"):
        reach = {"channel": "website", "sender_id": None, "customer": {}, **_reach(identifier)}
        intake.send(contact(**reach))
        assert intake.classified[-1]["customer_id"] == survivor
    record = intake.customer(survivor)
    assert isinstance(record, CustomerRecord)
    assert len(record.open_cases) == 1


def _reach(identifier: str) -> dict[str, Any]:
    kind, _, value = identifier.partition(":")
    if kind == "sender":
        channel, _, sender = value.partition(":")
        return {"channel": channel, "sender_id": sender}
    return {"customer": {kind: value}}


def reclassified(case_id: str, legal_field: str) -> CaseReclassified:
    return CaseReclassified.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "case.reclassified",
            "occurred_at": "2026-11-23T11:00:00+07:00",
            "producer": "staff-tool",
            "case_id": case_id,
            "legal_field": legal_field,
            "agent_id": "care-03",
            "reason": "nợ lương khi công ty giải thể",
        }
    )


def test_a_correction_republishes_the_case_and_keeps_its_text_without_identity(intake):
    intake.send(
        contact(
            customer={"name": "Trần Thị Bình", "phone": "0912 345 678"},
            message="Tôi là Bình, 0912345678. Công ty sắp giải thể mà chưa trả tiền cho tôi",
        )
    )
    [first] = intake.classified
    intake.send(reclassified(first["case_id"], "labor"))
    _, again = intake.classified
    assert again["correction"] is True and again["new_case"] is False
    assert again["corrected_from"] == first["legal_field"]
    assert (again["case_id"], again["customer_id"]) == (first["case_id"], first["customer_id"])
    assert (again["legal_field"], again["confidence"], again["needs_triage"]) == (
        "labor", 1.0, False,
    )  # fmt: skip
    assert again["contact"] == first["contact"]
    assert again["explanation"].startswith("corrected by care-03")
    correction = intake.value(f"correction/{first['case_id']}")
    assert isinstance(correction, Correction)
    assert (correction.legal_field, correction.agent_id) == ("labor", "care-03")
    assert correction.previous_field == first["legal_field"]
    assert "0912345678" not in correction.text and "Bình" not in correction.text
    assert "giải thể" in correction.text
    record = intake.customer(first["customer_id"])
    assert isinstance(record, CustomerRecord)
    assert record.open_cases[0].legal_field == "labor"


def test_a_correction_of_an_unknown_case_is_dead_lettered(intake):
    intake.send(reclassified("case-nobody", "labor"))
    [dead] = intake.out[topics.dlq(topics.CASE_RECLASSIFIED)]
    assert "unknown case case-nobody" in intake.reasons[dead["event_id"]]
    assert intake.classified == []
