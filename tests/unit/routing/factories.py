"""Events and roster entries for routing's tests, as their producers would publish them."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.events import RosterPerson

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def person(person_id: str, **overrides: Any) -> RosterPerson:
    """A roster person: an active land lawyer with capacity 2 unless told otherwise."""
    fields = {
        "id": person_id,
        "name": f"Luật sư {person_id}",
        "role": "lawyer",
        "legal_fields": ["land"],
        "years_experience": 10,
        "capacity": 2,
        "active": True,
        **overrides,
    }
    return RosterPerson.model_validate(fields)


def roster_yaml(*people: RosterPerson) -> str:
    """A roster.yaml holding `people` (JSON is valid YAML)."""
    return orjson.dumps({"people": [p.model_dump(mode="json") for p in people]}).decode()


def envelope(event_type: str, *, minute: int = 0, **payload: Any) -> dict[str, Any]:
    """An event dict with a fresh id, at T0 + `minute`."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": (T0 + timedelta(minutes=minute)).isoformat(),
        "producer": "test",
        **payload,
    }


def classified(case_id: str, legal_field: str = "land", **overrides: Any) -> dict[str, Any]:
    """case.classified for a new case, as intake publishes it."""
    payload = {
        "case_id": case_id,
        "customer_id": f"cus-{case_id}",
        "contact_id": str(uuid.uuid4()),
        "new_case": True,
        "channel": "zalo",
        "kind": "inquiry",
        "legal_field": legal_field,
        "confidence": 0.9,
        "is_dispute": False,
        "is_complaint": False,
        "legal_aid": False,
        "segment": "new",
        "contact": {"channel": "zalo", "sender_id": f"zalo:{case_id}"},
    }
    minute = overrides.pop("minute", 0)
    payload.update(overrides)
    return envelope("case.classified", minute=minute, **payload)


def resolved(case_id: str, **overrides: Any) -> dict[str, Any]:
    """case.resolved as a staff tool publishes it."""
    return envelope("case.resolved", case_id=case_id, outcome="advised", **overrides)


def contract(case_id: str, **overrides: Any) -> dict[str, Any]:
    """contract.signed as a staff tool publishes it."""
    payload = {
        "case_id": case_id,
        "contract_id": f"HD-{case_id}",
        "amount_vnd": 5_000_000,
        "delivery_method": "office",
        **overrides,
    }
    return envelope("contract.signed", **payload)


def roster_updated(who: RosterPerson) -> dict[str, Any]:
    """roster.updated as ops publish it."""
    return envelope("roster.updated", person=who.model_dump(mode="json"))


def breached(case_id: str, target: str = "resolution", **overrides: Any) -> dict[str, Any]:
    """sla.breached as followup publishes it."""
    payload = {
        "case_id": case_id,
        "target": target,
        "priority": "normal",
        "legal_field": "land",
        "channel": "zalo",
        "opened_at": T0.isoformat(),
        "target_business_s": 86400.0,
        "elapsed_business_s": 86400.0,
        "due_at": (T0 + timedelta(days=6)).isoformat(),
        **overrides,
    }
    return envelope("sla.breached", minute=6 * 24 * 60, **payload)
