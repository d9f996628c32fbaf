"""Events of the channel gateway's outbound deliveries."""

from typing import Literal

from pydantic import Field

from shared import topics

from .base import Event
from .enums import Channel, DeliveryOutcome


class DeliveryAttempted(Event):
    """The gateway tried to deliver a request (care contact, survey) on its channel."""

    event_type: Literal["delivery.attempted"] = Field(
        default=topics.DELIVERY_ATTEMPTED, description="The event type, equal to its topic."
    )
    request_event_id: str = Field(
        description="The event_id of the request delivered (care.contact.requested, ...).",
        examples=["0f8fad5b-d9cb-469f-a165-70867728950e"],
    )
    request_type: str = Field(
        description="The request's event type.", examples=["survey.requested"]
    )
    request_id: str | None = Field(
        default=None,
        description="The request's own id: request_id of a care contact, survey_id of a survey.",
        examples=["srv-91c0"],
    )
    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    channel: Channel = Field(description="Channel the delivery used.", examples=["zalo"])
    attempt: int = Field(ge=1, description="1 for the first try, then each retry.", examples=[1])
    outcome: DeliveryOutcome = Field(
        description=(
            "sent: the platform accepted it; queued: left for the dialer (phone, walk-in); "
            "failed: this try failed and will be retried; dead_lettered: the last try "
            "failed, the request went to its .dlq."
        ),
        examples=["sent"],
    )
    reason: str | None = Field(
        default=None,
        max_length=2000,
        description="Why a try failed (HTTP status, platform error code, SMTP reply).",
        examples=["HTTP 503 from the Zalo OA API"],
    )
