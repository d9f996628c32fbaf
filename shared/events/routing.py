"""Events about who handles a case and what it costs."""

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared import topics

from .base import Event
from .enums import (
    AssignmentReason,
    DeliveryMethod,
    EscalationReason,
    LegalField,
    Role,
    SlaTarget,
)


class CaseAssigned(Event):
    """Routing chose a lawyer or consultant for a case, or found nobody (assignee null)."""

    event_type: Literal["case.assigned"] = Field(
        default=topics.CASE_ASSIGNED, description="The event type, equal to its topic."
    )
    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    assignee_id: str | None = Field(
        description="The person assigned; null when nobody fits.", examples=["law-land-01"]
    )
    assignee_role: Role | None = Field(default=None, description="Role of the assignee.")
    reason: AssignmentReason = Field(description="assigned, reassigned, no_expert, no_capacity.")
    legal_field: LegalField = Field(description="Legal field of the case.")
    previous_assignee_id: str | None = Field(default=None, description="Set on reassignment.")


class FeeQuoted(Event):
    """Routing quoted the case's fee for every delivery method."""

    event_type: Literal["fee.quoted"] = Field(
        default=topics.FEE_QUOTED, description="The event type, equal to its topic."
    )
    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    legal_field: LegalField = Field(description="Legal field the fee schedule row is for.")
    prices_vnd: dict[DeliveryMethod, int] = Field(
        description="Price per delivery method, integer VND.",
        examples=[{"phone": 500000, "letter": 1500000, "office": 1000000, "onsite": 3000000}],
    )
    recommended_method: DeliveryMethod = Field(description="The method the firm recommends.")
    basis: str = Field(description="How the fee was calculated, for the customer.")
    dispute_surcharge_vnd: int = Field(default=0, ge=0, description="Included surcharge.")
    legal_aid: bool = Field(default=False, description="Free advice via the Legal Aid Center.")
    referral: str | None = Field(default=None, description="Referral text for legal-aid cases.")


class RosterPerson(BaseModel):
    """A lawyer or consultant on the roster."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(
        min_length=1, max_length=100, description="Stable id.", examples=["law-land-01"]
    )
    name: str = Field(min_length=1, max_length=300, description="Display name.")
    role: Role = Field(description="lawyer or consultant.")
    legal_fields: list[LegalField] = Field(min_length=1, description="Fields the person knows.")
    years_experience: int = Field(ge=0, le=80, description="Years of practice.")
    capacity: int = Field(ge=0, le=10_000, description="Open cases at most.")
    active: bool = Field(default=True, description="Inactive people get no new cases.")


class RosterUpdated(Event):
    """Ops added, edited or deactivated a roster person at run time."""

    event_type: Literal["roster.updated"] = Field(
        default=topics.ROSTER_UPDATED, description="The event type, equal to its topic."
    )
    person: RosterPerson = Field(description="The person's full new record.")
    recorded_by: str | None = Field(
        default=None,
        max_length=200,
        description="The signed-in manager who made the change (care desk).",
        examples=["mgr-01"],
    )

    def partition_key(self) -> bytes:
        """Key by person so one person's updates stay in order."""
        return self.person.id.encode()


class CaseEscalated(Event):
    """A case breached a service level and no other lawyer could take it: managers act."""

    event_type: Literal["case.escalated"] = Field(
        default=topics.CASE_ESCALATED, description="The event type, equal to its topic."
    )
    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    target: SlaTarget = Field(description="The breached clock: first_response or resolution.")
    reason: EscalationReason = Field(
        description="no_expert (no active lawyer knows the field) or no_capacity (none free)."
    )
    legal_field: LegalField = Field(description="Legal field of the case.")
    assignee_id: str | None = Field(
        default=None,
        description="Who holds the case now (null while it waits).",
        examples=["law-land-01"],
    )
    breached_at: AwareDatetime = Field(description="The breach moment (sla.breached occurred_at).")
