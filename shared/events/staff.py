"""Events staff tools publish: contracts signed, cases resolved, fields corrected."""

from typing import Literal

from pydantic import Field

from shared import topics

from .base import Event
from .enums import DeliveryMethod, LegalField, ResolutionOutcome


class ContractSigned(Event):
    """The customer signed a service contract on a case."""

    event_type: Literal["contract.signed"] = Field(
        default=topics.CONTRACT_SIGNED, description="The event type, equal to its topic."
    )
    case_id: str = Field(description="The case the contract is for.", examples=["case-7d1c2a40"])
    contract_id: str = Field(
        min_length=1, max_length=200, description="The contract's id.", examples=["HD-2026-0142"]
    )
    amount_vnd: int = Field(
        ge=0, le=10**13, description="Contract value in VND.", examples=[5_000_000]
    )
    delivery_method: DeliveryMethod = Field(description="How the advice is delivered.")
    recorded_by: str | None = Field(
        default=None,
        max_length=200,
        description="The signed-in staff member who recorded it (care desk).",
        examples=["agent-07"],
    )


class CaseResolved(Event):
    """A case reached its end."""

    event_type: Literal["case.resolved"] = Field(
        default=topics.CASE_RESOLVED, description="The event type, equal to its topic."
    )
    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    lawyer_id: str | None = Field(
        default=None, max_length=200, description="Who resolved it.", examples=["law-land-01"]
    )
    outcome: ResolutionOutcome = Field(description="How it ended.")
    summary: str | None = Field(
        default=None, max_length=20_000, description="Free-text summary (personal data possible)."
    )
    recorded_by: str | None = Field(
        default=None,
        max_length=200,
        description="The signed-in staff member who recorded it (care desk).",
        examples=["law-land-01"],
    )


class CaseReclassified(Event):
    """Staff corrected a case's legal field (intake republishes case.classified as a
    correction; the message becomes a labelled example for the classifier)."""

    event_type: Literal["case.reclassified"] = Field(
        default=topics.CASE_RECLASSIFIED, description="The event type, equal to its topic."
    )
    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    legal_field: LegalField = Field(description="The field staff gave the case.")
    agent_id: str = Field(
        min_length=1, max_length=200, description="Who corrected it.", examples=["care-03"]
    )
    reason: str = Field(
        default="",
        max_length=2_000,
        description="Why (free text, no personal data please).",
        examples=["hỏi về nợ lương khi công ty giải thể: lao động, không phải doanh nghiệp"],
    )


class CaseWaitingOnCustomer(Event):
    """Staff wait on the customer (documents, an answer): the case's service-level clocks pause."""

    event_type: Literal["case.waiting_on_customer"] = Field(
        default=topics.CASE_WAITING_ON_CUSTOMER, description="The event type, equal to its topic."
    )
    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    agent_id: str = Field(
        min_length=1, max_length=200, description="Who is waiting.", examples=["law-land-01"]
    )
    reason: str | None = Field(
        default=None, max_length=2_000, description="What the firm waits for (free text)."
    )


class CaseCustomerReplied(Event):
    """The customer answered what the firm waited for: the clocks run again.

    A new contact of the customer on the case (`case.classified`) resumes them as well.
    """

    event_type: Literal["case.customer_replied"] = Field(
        default=topics.CASE_CUSTOMER_REPLIED, description="The event type, equal to its topic."
    )
    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    agent_id: str | None = Field(
        default=None, max_length=200, description="Who recorded the reply.", examples=["agent-07"]
    )
