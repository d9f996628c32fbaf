"""Followup's internal re-keying event: a customer fact, passed on keyed by customer id."""

from typing import Annotated, Literal

from pydantic import Field

from services.followup.sla import SlaPolicy
from shared import topics
from shared.events import CareContactCompleted, CaseClassified, CustomerSegmentChanged, Event

Fact = Annotated[
    CaseClassified | CustomerSegmentChanged | CareContactCompleted,
    Field(discriminator="event_type"),
]


class CustomerFact(Event):
    """Internal: an input a case's partition received that the customer's owner must see.

    Case events are keyed by case id; the customer's birthday, loyalty offer and their
    requests are owned by the partition of the customer id, one writer per customer.
    """

    event_type: Literal["followup.customer"] = Field(
        default=topics.FOLLOWUP_CUSTOMER, description="The event type, equal to its topic."
    )
    customer_id: str = Field(description="The customer, the record's key.")
    fact: Fact = Field(description="The input event, as received.")


class SlaPolicyRead(Event):
    """Internal, one record per partition (no key): the service-level policy and calendar as
    an instance read them; each partition re-plans its running clocks when they changed."""

    event_type: Literal["followup.sla_policy"] = Field(
        default=topics.FOLLOWUP_SLA_POLICY, description="The event type, equal to its topic."
    )
    policy: SlaPolicy = Field(description="The policy read from the file.")
    fingerprint: str = Field(description="Digest of the policy and the care calendar.")
