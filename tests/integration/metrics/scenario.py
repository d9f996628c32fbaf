"""Events for metrics tests, as producers put them on the wire (dicts, with personal data)."""

import uuid
from typing import Any

PERSONAL = {
    "name": "Nguyễn Thị Bích Ngọc",
    "phone": "+84912345678",
    "email": "ngoc.nguyen@example.vn",
    "message": "Tôi muốn ly hôn đơn phương",
    "summary": "Khách hàng Nguyễn Thị Bích Ngọc đã được tư vấn",
    "comment": "Luật sư rất tận tình, gọi lại 0912 345 678",
}
"""Personal values placed in the events: none may appear on metrics.kpi."""

CONTACT_POINT = {
    "channel": "zalo",
    "sender_id": "zalo:998877",
    "name": PERSONAL["name"],
    "phone": PERSONAL["phone"],
    "email": PERSONAL["email"],
}


def event(event_type: str, at: str, **payload: Any) -> dict[str, Any]:
    """An event envelope plus payload; `at` is the business time (occurred_at)."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": at,
        "producer": "test",
        **payload,
    }


def classified(
    case_id: str,
    customer_id: str,
    at: str,
    *,
    channel: str,
    legal_field: str,
    new_case: bool = True,
    complaint: bool = False,
    legal_aid: bool = False,
    segment: str = "new",
) -> dict[str, Any]:
    """A case.classified for one contact."""
    return event(
        "case.classified",
        at,
        case_id=case_id,
        customer_id=customer_id,
        contact_id=str(uuid.uuid4()),
        new_case=new_case,
        channel=channel,
        kind="complaint" if complaint else "inquiry",
        legal_field=legal_field,
        confidence=0.9,
        is_dispute=False,
        is_complaint=complaint,
        legal_aid=legal_aid,
        segment=segment,
        contact={**CONTACT_POINT, "channel": channel},
    )


def assigned(case_id: str, at: str, lawyer: str | None, legal_field: str) -> dict[str, Any]:
    """A case.assigned."""
    return event(
        "case.assigned",
        at,
        case_id=case_id,
        assignee_id=lawyer,
        reason="assigned" if lawyer else "no_capacity",
        legal_field=legal_field,
    )


def quoted(case_id: str, at: str, legal_field: str, *, legal_aid: bool = False) -> dict[str, Any]:
    """A fee.quoted."""
    price = 0 if legal_aid else 500_000
    return event(
        "fee.quoted",
        at,
        case_id=case_id,
        legal_field=legal_field,
        prices_vnd={"phone": price, "letter": price, "office": price, "onsite": price},
        recommended_method="phone",
        basis="biểu phí",
        legal_aid=legal_aid,
    )


def contract(case_id: str, at: str, amount: int) -> dict[str, Any]:
    """A contract.signed."""
    return event(
        "contract.signed",
        at,
        case_id=case_id,
        contract_id=f"HD-{uuid.uuid4().hex[:6]}",
        amount_vnd=amount,
        delivery_method="office",
    )


def resolved(case_id: str, at: str, lawyer: str) -> dict[str, Any]:
    """A case.resolved (with a summary that holds personal data)."""
    return event(
        "case.resolved",
        at,
        case_id=case_id,
        lawyer_id=lawyer,
        outcome="advised",
        summary=PERSONAL["summary"],
    )


def care_completed(case_id: str, at: str, outcome: str = "reached") -> dict[str, Any]:
    """A care.contact.completed."""
    return event(
        "care.contact.completed",
        at,
        case_id=case_id,
        agent_id="agent-07",
        outcome=outcome,
        note=f"đã gọi {PERSONAL['phone']}",
    )


def survey_requested(survey_id: str, case_id: str, at: str, channel: str) -> dict[str, Any]:
    """A survey.requested."""
    return event(
        "survey.requested",
        at,
        survey_id=survey_id,
        case_id=case_id,
        customer_id="cus-x",
        channel=channel,
        contact={**CONTACT_POINT, "channel": channel},
        expires_at="2030-01-01T00:00:00+07:00",
    )


def survey_reminded(survey_id: str, case_id: str, at: str, channel: str) -> dict[str, Any]:
    """A survey.reminded."""
    return event(
        "survey.reminded",
        at,
        survey_id=survey_id,
        case_id=case_id,
        channel=channel,
        contact={**CONTACT_POINT, "channel": channel},
        expires_at="2030-01-01T00:00:00+07:00",
    )


def survey_expired(survey_id: str, case_id: str, at: str, channel: str) -> dict[str, Any]:
    """A survey.expired."""
    return event("survey.expired", at, survey_id=survey_id, case_id=case_id, channel=channel)


def survey_scored(
    survey_id: str,
    case_id: str,
    at: str,
    *,
    channel: str,
    legal_field: str,
    lawyer: str,
    nps: int,
    csat: int,
    ces: int,
) -> dict[str, Any]:
    """A survey.scored (with a comment that holds personal data)."""
    return event(
        "survey.scored",
        at,
        survey_id=survey_id,
        case_id=case_id,
        customer_id="cus-x",
        channel=channel,
        legal_field=legal_field,
        lawyer_id=lawyer,
        nps=nps,
        csat=csat,
        ces=ces,
        comment=PERSONAL["comment"],
    )


def merged(survivor: str, others: list[str], at: str) -> dict[str, Any]:
    """A customer.merged."""
    return event("customer.merged", at, customer_id=survivor, merged_customer_ids=others)


def sla(
    outcome: str, case_id: str, at: str, target: str, *, channel: str, legal_field: str, lawyer: str
) -> dict[str, Any]:
    """An sla.met or sla.breached of one clock (`target`), as followup publishes it."""
    return event(
        f"sla.{outcome}",
        at,
        case_id=case_id,
        target=target,
        priority="normal",
        legal_field=legal_field,
        channel=channel,
        assignee_id=lawyer,
        opened_at="2026-11-23T09:00:00+07:00",
        target_business_s=14_400.0,
        elapsed_business_s=3_600.0,
        due_at=at,
    )


def corrected(
    case_id: str, customer_id: str, at: str, *, channel: str, legal_field: str, was: str
) -> dict[str, Any]:
    """The case.classified intake republishes when staff correct a case's field."""
    return {
        **classified(case_id, customer_id, at, channel=channel, legal_field=legal_field),
        "new_case": False,
        "correction": True,
        "corrected_from": was,
    }
