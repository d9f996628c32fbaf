"""Events as followup receives them, with sensible defaults (shared by unit and integration)."""

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.events import (
    CareContactCompleted,
    CaseClassified,
    CaseResolved,
    ContactPoint,
    CustomerSegmentChanged,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    """A moment in Vietnam time."""
    return datetime(y, mo, d, h, mi, s, tzinfo=VN)


def classified(case_id: str, at: datetime, **overrides: Any) -> CaseClassified:
    """A case.classified as intake publishes it."""
    event_id = overrides.pop("event_id", uuid.uuid4())
    fields: dict[str, Any] = {
        "event_id": event_id,
        "occurred_at": at,
        "producer": "intake",
        "case_id": case_id,
        "customer_id": f"cus-{case_id}",
        "contact_id": str(event_id),
        "new_case": True,
        "channel": "zalo",
        "kind": "inquiry",
        "legal_field": "land",
        "confidence": 0.9,
        "is_dispute": False,
        "is_complaint": False,
        "legal_aid": False,
        "segment": "new",
        "contact": ContactPoint(channel="zalo", sender_id="zalo:1", phone="+84912345678"),
    }
    fields.update(overrides)
    return CaseClassified(**fields)


def resolved(case_id: str, at: datetime, **overrides: Any) -> CaseResolved:
    """A case.resolved as a staff tool publishes it."""
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "occurred_at": at,
        "producer": "staff-tool",
        "case_id": case_id,
        "lawyer_id": "law-land-01",
        "outcome": "advised",
    }
    fields.update(overrides)
    return CaseResolved(**fields)


def completed(
    case_id: str, request_id: str | None, outcome: str, at: datetime, **overrides: Any
) -> CareContactCompleted:
    """A care.contact.completed as an agent's tool publishes it."""
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "occurred_at": at,
        "producer": "agent-desk",
        "case_id": case_id,
        "request_id": request_id,
        "agent_id": "agent-07",
        "outcome": outcome,
    }
    fields.update(overrides)
    return CareContactCompleted(**fields)


def became_loyal(customer_id: str, at: datetime, **overrides: Any) -> CustomerSegmentChanged:
    """A customer.segment_changed to loyal (third contract)."""
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "occurred_at": at,
        "producer": "intake",
        "customer_id": customer_id,
        "previous_segment": "customer",
        "segment": "loyal",
        "contracts": 3,
    }
    fields.update(overrides)
    return CustomerSegmentChanged(**fields)


def wire(event: Any) -> dict:
    """The event as JSON-ready dict, as it travels on Kafka."""
    return event.model_dump(mode="json")
