"""Service-level events (SPEC §11): a clock's warning, its breach, or its target met."""

from typing import Literal

from pydantic import AwareDatetime, Field

from shared import topics

from .base import Event
from .enums import Channel, LegalField, SlaPriority, SlaTarget


class SlaEvent(Event):
    """What every service-level event says about the clock it comes from."""

    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    target: SlaTarget = Field(description="first_response or resolution.")
    priority: SlaPriority = Field(description="complaint, dispute or normal: the target's row.")
    legal_field: LegalField | None = Field(default=None, description="The case's legal field.")
    channel: Channel | None = Field(default=None, description="The channel the case came by.")
    assignee_id: str | None = Field(
        default=None,
        description="Who held the case then, per the latest case.assigned (null: nobody).",
        examples=["law-land-01"],
    )
    opened_at: AwareDatetime = Field(description="When the case opened: the clock's start.")
    target_business_s: float = Field(
        ge=0, description="The target, in seconds of business time (inside care windows)."
    )
    elapsed_business_s: float = Field(
        ge=0, description="Business seconds counted at occurred_at (waits on the customer not)."
    )
    due_at: AwareDatetime | None = Field(
        description="The breach moment as planned when the event was made (null while paused)."
    )


class SlaWarning(SlaEvent):
    """A clock used its warning share of the target (e.g. 80 %); occurred_at is that moment."""

    event_type: Literal["sla.warning"] = Field(
        default=topics.SLA_WARNING, description="The event type, equal to its topic."
    )


class SlaBreached(SlaEvent):
    """A clock reached its target before it stopped; occurred_at is the breach moment."""

    event_type: Literal["sla.breached"] = Field(
        default=topics.SLA_BREACHED, description="The event type, equal to its topic."
    )


class SlaMet(SlaEvent):
    """A clock stopped before its target; occurred_at is when it stopped."""

    event_type: Literal["sla.met"] = Field(
        default=topics.SLA_MET, description="The event type, equal to its topic."
    )
