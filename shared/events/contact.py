"""Events about contacts, customers and cases as intake sees them."""

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared import topics

from .base import Event
from .enums import (
    AgeBand,
    Channel,
    ContactKind,
    IncomeTier,
    LegalAidCategory,
    LegalField,
    Segment,
)


class CustomerDetails(BaseModel):
    """What a contact says about the person (personal data: never logged in clear)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str | None = Field(
        default=None, max_length=300, description="Full name.", examples=["Nguyễn Văn An"]
    )
    phone: str | None = Field(
        default=None,
        max_length=50,
        description="Phone number in any common spelling.",
        examples=["0912 345 678"],
    )
    email: str | None = Field(
        default=None,
        max_length=320,
        description="Email address.",
        examples=["an.nguyen@example.vn"],
    )
    address: str | None = Field(
        default=None,
        max_length=1000,
        description="Postal address.",
        examples=["12 Lý Thường Kiệt, Hoàn Kiếm, Hà Nội"],
    )
    birth_date: date | None = Field(
        default=None, description="Birth date, YYYY-MM-DD.", examples=["1961-04-30"]
    )
    income_tier: IncomeTier | None = Field(default=None, description="Income tier, if asked.")
    legal_aid: list[LegalAidCategory] = Field(
        default_factory=list,
        max_length=10,
        description="Legal-aid categories the customer declared.",
        examples=[["elderly"]],
    )


class ContactReceived(Event):
    """A customer reached the firm on some channel (published by channel adapters)."""

    event_type: Literal["contact.received"] = Field(
        default=topics.CONTACT_RECEIVED, description="The event type, equal to its topic."
    )
    channel: Channel = Field(description="Channel the contact came from.", examples=["zalo"])
    sender_id: str | None = Field(
        default=None,
        max_length=200,
        description="The channel's own id of the person (Zalo user id, PSID, ...).",
        examples=["zalo:1234567890"],
    )
    kind: ContactKind = Field(default=ContactKind.INQUIRY, description="What the contact is.")
    customer: CustomerDetails = Field(
        default_factory=CustomerDetails, description="What the contact says about the person."
    )
    message: str = Field(
        default="",
        max_length=50_000,
        description="The message text.",
        examples=["Tôi muốn hỏi về thủ tục ly hôn đơn phương"],
    )
    documents: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Document references (URLs or ids), never bytes.",
        examples=[["https://files.example.vn/so-do.pdf"]],
    )
    legal_field: LegalField | None = Field(
        default=None,
        description="Legal field chosen explicitly on a form; wins if present.",
    )

    def partition_key(self) -> bytes:
        """Key by sender id (no case exists yet), else by the event id."""
        return (self.case_id or self.sender_id or str(self.event_id)).encode()


class ContactPoint(BaseModel):
    """How an adapter reaches a customer (personal data: never logged in clear)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    channel: Channel = Field(description="Preferred channel: the one the customer used.")
    sender_id: str | None = Field(default=None, description="The channel's id of the person.")
    name: str | None = Field(default=None, description="Name to address the customer by.")
    phone: str | None = Field(
        default=None, description="Phone in E.164.", examples=["+84912345678"]
    )
    email: str | None = Field(default=None, description="Lower-cased email.")


class CaseClassified(Event):
    """Intake recorded a contact on a case and classified it (SPEC §2)."""

    event_type: Literal["case.classified"] = Field(
        default=topics.CASE_CLASSIFIED, description="The event type, equal to its topic."
    )
    case_id: str = Field(description="The case the contact is on.", examples=["case-7d1c2a40"])
    customer_id: str = Field(description="The resolved customer.", examples=["cus-0b9e6f1d"])
    contact_id: str = Field(description="Id of the contact (its contact.received event id).")
    new_case: bool = Field(description="True when this contact opened the case.")
    channel: Channel = Field(description="Channel of the contact.")
    kind: ContactKind = Field(description="Kind of the contact.")
    legal_field: LegalField = Field(description="Legal field of the case.")
    confidence: float = Field(ge=0, le=1, description="Classifier confidence in [0, 1].")
    needs_triage: bool = Field(
        default=False, description="Below the confidence threshold: a person must triage."
    )
    is_dispute: bool = Field(description="Describes a dispute with another party.")
    is_complaint: bool = Field(description="A complaint (kind, or about the firm's service).")
    legal_aid: bool = Field(description="Eligible for free advice via the Legal Aid Center.")
    legal_aid_categories: list[LegalAidCategory] = Field(
        default_factory=list, description="Why the customer is eligible for legal aid."
    )
    segment: Segment = Field(description="Customer segment at classification time.")
    age_band: AgeBand | None = Field(default=None, description="From the birth date, if known.")
    birthday: str | None = Field(
        default=None,
        pattern=r"^\d{2}-\d{2}$",
        description="Birthday as MM-DD, for greetings.",
        examples=["04-30"],
    )
    income_tier: IncomeTier | None = Field(default=None, description="Income tier, if known.")
    missing_items: list[str] = Field(
        default_factory=list,
        description="Information the care team should ask for.",
        examples=[["phone", "documents"]],
    )
    contact: ContactPoint = Field(description="How to reach the customer.")
    correction: bool = Field(
        default=False,
        description=(
            "True when staff corrected the case's field (case.reclassified): the same case "
            "classified again, no new contact."
        ),
    )
    corrected_from: LegalField | None = Field(
        default=None,
        description="On a correction: the field the case had before staff corrected it.",
        examples=["enterprise"],
    )
    explanation: str | None = Field(
        default=None,
        max_length=1_000,
        description="Why this field, for staff: the lexicon phrases found, or who corrected it.",
        examples=["matched: ly hôn, nuôi con"],
    )


class CustomerMerged(Event):
    """A contact proved two known customers to be one person; the others fold into one."""

    event_type: Literal["customer.merged"] = Field(
        default=topics.CUSTOMER_MERGED, description="The event type, equal to its topic."
    )
    customer_id: str = Field(description="The surviving customer id.")
    merged_customer_ids: list[str] = Field(description="Ids folded into customer_id.")
    moved_case_ids: list[str] = Field(
        default_factory=list, description="Cases now owned by customer_id."
    )

    def partition_key(self) -> bytes:
        """Key by the surviving customer."""
        return self.customer_id.encode()


class CustomerSegmentChanged(Event):
    """A customer moved to another segment (e.g. became loyal after a third contract)."""

    event_type: Literal["customer.segment_changed"] = Field(
        default=topics.CUSTOMER_SEGMENT_CHANGED, description="The event type, equal to its topic."
    )
    customer_id: str = Field(description="The customer.")
    previous_segment: Segment = Field(description="Segment before the change.")
    segment: Segment = Field(description="Segment after the change.")
    contracts: int = Field(ge=0, description="Contracts signed so far.")
    contact: ContactPoint | None = Field(default=None, description="How to reach the customer.")
