"""Events other services and adapters send survey, built as they would publish them."""

import uuid
from datetime import UTC, datetime, timedelta

from shared.events import (
    CaseAssigned,
    CaseClassified,
    CaseResolved,
    ContactPoint,
    SurveyAnswered,
)

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def classified(case_id: str = "case-1", customer_id: str = "cus-1", **overrides) -> CaseClassified:
    """Intake's case.classified for a land case on zalo."""
    fields = {
        "event_id": uuid.uuid4(),
        "occurred_at": T0 - timedelta(days=3),
        "producer": "intake",
        "case_id": case_id,
        "customer_id": customer_id,
        "contact_id": str(uuid.uuid4()),
        "new_case": True,
        "channel": "zalo",
        "kind": "inquiry",
        "legal_field": "land",
        "confidence": 0.9,
        "is_dispute": False,
        "is_complaint": False,
        "legal_aid": False,
        "segment": "potential",
        "contact": ContactPoint(channel="zalo", sender_id="zalo:42", phone="+84912345678"),
        **overrides,
    }
    return CaseClassified(**fields)


def assigned(case_id: str = "case-1", assignee_id: str | None = "law-land-01") -> CaseAssigned:
    """Routing's case.assigned."""
    return CaseAssigned(
        event_id=uuid.uuid4(),
        occurred_at=T0 - timedelta(days=3),
        producer="routing",
        case_id=case_id,
        assignee_id=assignee_id,
        reason="assigned" if assignee_id else "no_capacity",
        legal_field="land",
    )


def resolved(case_id: str = "case-1", lawyer_id: str | None = None) -> CaseResolved:
    """A staff tool's case.resolved."""
    return CaseResolved(
        event_id=uuid.uuid4(),
        occurred_at=T0,
        producer="staff-tool",
        case_id=case_id,
        lawyer_id=lawyer_id,
        outcome="advised",
        summary="Đã tư vấn cho anh An về thủ tục",
    )


def answered(survey_id: str, *, at: datetime | None = None, **scores) -> SurveyAnswered:
    """An adapter's survey.answered (NPS 9 unless scores are given)."""
    return SurveyAnswered(
        event_id=uuid.uuid4(),
        occurred_at=at or T0 + timedelta(hours=2),
        producer="zalo-adapter",
        survey_id=survey_id,
        **(scores or {"nps": 9}),
    )
