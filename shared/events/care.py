"""Events about outbound care contacts."""

from typing import Literal

from pydantic import AwareDatetime, Field

from shared import topics

from .base import Event
from .contact import ContactPoint
from .enums import CareKind, CareOutcome, Channel, Priority


class CareContactRequested(Event):
    """Followup asks the care team or an adapter to contact a customer at due_at."""

    event_type: Literal["care.contact.requested"] = Field(
        default=topics.CARE_CONTACT_REQUESTED, description="The event type, equal to its topic."
    )
    request_id: str = Field(
        description="Id of this request; stable across redeliveries.", examples=["req-3f2a9c"]
    )
    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    customer_id: str = Field(description="The customer.")
    kind: CareKind = Field(description="Why the customer is contacted.")
    channel: Channel = Field(description="Channel to use.")
    contact: ContactPoint = Field(description="How to reach the customer.")
    priority: Priority = Field(default=Priority.NORMAL, description="high for complaints.")
    due_at: AwareDatetime = Field(description="When to make the contact.")
    attempt: int = Field(default=1, ge=1, description="1 for the first try, then retries.")
    related_services: list[str] = Field(
        default_factory=list,
        description="Services to offer (check-in after resolution); empty otherwise.",
        examples=[["will_drafting", "property_transfer"]],
    )


class CareContactCompleted(Event):
    """An adapter or agent reports the result of a care contact."""

    event_type: Literal["care.contact.completed"] = Field(
        default=topics.CARE_CONTACT_COMPLETED, description="The event type, equal to its topic."
    )
    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    request_id: str | None = Field(
        default=None, max_length=200, description="The care.contact.requested it answers."
    )
    agent_id: str = Field(
        min_length=1, max_length=200, description="Who made the contact.", examples=["agent-07"]
    )
    outcome: CareOutcome = Field(description="reached, no_answer, wrong_number, declined.")
    note: str | None = Field(default=None, max_length=20_000, description="Free-text note.")
