"""Intake's rules: pure functions, no I/O."""

from dataclasses import dataclass

from shared.events import ContactReceived, LegalField


class Unreachable(ValueError):
    """The contact gives no way to reach the customer."""


@dataclass(frozen=True)
class Classification:
    """What intake decided about a contact's case."""

    legal_field: LegalField
    confidence: float
    needs_triage: bool


def ensure_reachable(contact: ContactReceived) -> None:
    """Raise Unreachable when the contact has no phone, email or channel sender id."""
    customer = contact.customer
    if not (customer.phone or customer.email or contact.sender_id):
        raise Unreachable("no way to reach the customer: no phone, email or sender_id")


def classify(contact: ContactReceived) -> Classification:
    """Decide the legal field: an explicit form choice wins, otherwise triage."""
    if contact.legal_field is not None:
        return Classification(contact.legal_field, 1.0, needs_triage=False)
    return Classification(LegalField.OTHER, 0.0, needs_triage=True)
