"""Events the desk reads, built as their producers publish them; staff accounts for tests."""

import uuid
from datetime import UTC, datetime, timedelta

from services.desk.staff import StaffAccount, hash_password
from shared.events import CareContactRequested, ContactPoint, RosterPerson, RosterUpdated
from tests.unit.survey.factories import assigned, classified

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 09:00 in Hồ Chí Minh City
PASSWORDS = {"agent-01": "mk-agent", "law-land-01": "mk-lawyer", "mgr-01": "mk-manager"}
_HASHES = {login: hash_password(pw) for login, pw in PASSWORDS.items()}


def staff() -> dict[str, StaffAccount]:
    """One account per role (passwords in PASSWORDS)."""
    roles = {"agent-01": "agent", "law-land-01": "lawyer", "mgr-01": "manager"}
    return {
        login: StaffAccount(
            id=login, name=f"Người {login}", role=role, password_hash=_HASHES[login]
        )
        for login, role in roles.items()
    }


def requested(
    case_id: str = "case-1",
    *,
    request_id: str = "req-1",
    due_at: datetime = T0,
    kind: str = "first_contact",
    priority: str = "normal",
) -> CareContactRequested:
    """Followup's care.contact.requested."""
    return CareContactRequested(
        event_id=uuid.uuid4(),
        occurred_at=due_at - timedelta(hours=1),
        producer="followup",
        correlation_id=f"corr-{case_id}",
        case_id=case_id,
        request_id=request_id,
        customer_id="cus-1",
        kind=kind,
        channel="phone",
        contact=ContactPoint(channel="phone", name="Nguyễn Văn An", phone="+84912345678"),
        priority=priority,
        due_at=due_at,
    )


def roster_update(person_id: str = "law-new-01", *, active: bool = True) -> RosterUpdated:
    """A roster.updated for a family lawyer."""
    return RosterUpdated(
        event_id=uuid.uuid4(),
        occurred_at=T0,
        producer="ops",
        person=RosterPerson(
            id=person_id,
            name="Đỗ Thị Lan",
            role="lawyer",
            legal_fields=["family"],
            years_experience=5,
            capacity=6,
            active=active,
        ),
    )


__all__ = ["T0", "assigned", "classified", "requested", "roster_update", "staff"]
