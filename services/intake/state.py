"""What intake's partitions own, as typed values, and how a contact or a merge changes them.

Keys (one writer each, docs/services/intake.md "One writer per key"):
`identifier/<phone:…|email:…|sender:…>` → `Owner` (the customer it was claimed for),
`customer/<id>` → `CustomerRecord` (profile, cases, contracts, segment) or `Merged` (folded
into another customer: whatever reaches it is passed on), `case/<id>` → `CaseLink` (whose
case it is, for `case.resolved` and `contract.signed`). Pure: no I/O.
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.intake.domain import CaseDecision, Contact, OpenCase, Profile
from shared.events import Channel, ContactKind, ContactPoint, LegalField, Segment

RECENT_CONTACTS = 8
"""Contacts a customer remembers by id. An adapter that sends a contact again does so
before its customer writes eight more times."""


class Owner(BaseModel):
    """An identifier's customer, with that customer's rank (when it was first created)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["identifier"] = "identifier"
    customer_id: str
    since: AwareDatetime

    def outranks(self, other: "Owner") -> bool:
        """True when a merge keeps this customer over `other` (earlier, ties by id)."""
        return (self.since, self.customer_id) < (other.since, other.customer_id)


class CaseRecord(BaseModel):
    """One of the customer's open cases, as the attach rule and the decision need it."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    legal_field: LegalField
    opened_at: AwareDatetime
    confidence: float
    needs_triage: bool
    is_dispute: bool = False
    is_complaint: bool = False
    documents: tuple[str, ...] = ()
    channel: Channel | None = None
    """The channel of the contact that opened the case (for a corrected case.classified)."""
    kind: ContactKind | None = None
    contact_id: str | None = None
    text: str = ""
    """The opening message without the customer's identity: a correction's labelled text."""

    def open_case(self) -> OpenCase:
        """The case as the attach rule sees it."""
        return OpenCase(
            self.case_id, self.legal_field, self.opened_at, self.confidence, self.needs_triage
        )


class CustomerRecord(BaseModel):
    """A customer: profile gathered from its contacts, its cases, contracts and segment."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["customer"] = "customer"
    customer_id: str
    since: AwareDatetime
    """The rank merges compare: the time of the contact that created the id (never moves)."""
    first_seen_at: AwareDatetime
    last_activity_at: AwareDatetime | None = None
    segment: Segment | None = None
    profile: Profile = Field(default_factory=Profile)
    open_cases: tuple[CaseRecord, ...] = ()
    case_ids: tuple[str, ...] = ()
    """Every case the customer has had, open or resolved."""
    contracts: tuple[str, ...] = ()
    """Contract ids signed (each counted once)."""
    contacts: tuple[str, ...] = ()
    """The ids of the customer's latest `RECENT_CONTACTS` contacts, newest last: a contact
    sent again after the runtime's ledger forgot its id is recognised here."""

    def case(self, case_id: str) -> CaseRecord | None:
        """The open case with this id, or None."""
        return next((c for c in self.open_cases if c.case_id == case_id), None)


class Correction(BaseModel):
    """A field staff gave a case (case.reclassified): a labelled example for training."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["correction"] = "correction"
    case_id: str
    text: str
    """The case's opening message, without the customer's identity."""
    legal_field: LegalField
    previous_field: LegalField
    agent_id: str
    reason: str = ""
    corrected_at: AwareDatetime


class Merged(BaseModel):
    """A customer folded into another: contacts and case events reaching it go on to `into`."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["merged"] = "merged"
    into: str
    since: AwareDatetime


class CaseLink(BaseModel):
    """Whose case this is, and the contact point it was opened with."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["case"] = "case"
    customer_id: str
    contact: ContactPoint | None = None


Value = Annotated[
    Owner | CustomerRecord | Merged | CaseLink | Correction, Field(discriminator="kind")
]


def idle(value: Owner | CustomerRecord | Merged | CaseLink | Correction) -> bool:
    """Whether a value may leave memory (reloaded by key): all but customers with open cases."""
    return not (isinstance(value, CustomerRecord) and value.open_cases)


def _union(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for group in groups for v in group))


def absorb(
    survivor: CustomerRecord | None,
    others: list[CustomerRecord],
    *,
    customer_id: str,
    since: datetime,
) -> CustomerRecord | None:
    """The survivor with the merged customers' identifiers, cases, contracts and activity."""
    if not others:
        return survivor
    base = survivor or CustomerRecord(
        customer_id=customer_id, since=since, first_seen_at=min(o.first_seen_at for o in others)
    )
    records = [base, *others]
    profile = base.profile
    lasts = [r.last_activity_at for r in records if r.last_activity_at]
    return base.model_copy(
        update={
            "first_seen_at": min(r.first_seen_at for r in records),
            "last_activity_at": max(lasts) if lasts else None,
            "profile": Profile(
                name=profile.name,
                phones=_union(*(r.profile.phones for r in records)),
                emails=_union(*(r.profile.emails for r in records)),
                address=profile.address,
                birth_date=profile.birth_date,
                income_tier=profile.income_tier,
                legal_aid=tuple(dict.fromkeys(c for r in records for c in r.profile.legal_aid)),
            ),
            "open_cases": tuple({c.case_id: c for r in records for c in r.open_cases}.values()),
            "case_ids": _union(*(r.case_ids for r in records)),
            "contracts": _union(*(r.contracts for r in records)),
            "contacts": _union(*(r.contacts for r in records)),
        }
    )


def with_contact(
    record: CustomerRecord | None,
    contact: Contact,
    *,
    at: datetime,
    customer_id: str,
    since: datetime,
) -> CustomerRecord:
    """The customer created on first sight, the contact's details folded in (repeatable)."""
    record = record or CustomerRecord(customer_id=customer_id, since=since, first_seen_at=at)
    p = record.profile
    profile = Profile(
        name=contact.name or p.name,
        phones=_union(p.phones, (contact.phone,) if contact.phone else ()),
        emails=_union(p.emails, (contact.email,) if contact.email else ()),
        address=contact.address or p.address,
        birth_date=contact.birth_date or p.birth_date,
        income_tier=contact.income_tier or p.income_tier,
        legal_aid=tuple(dict.fromkeys([*p.legal_aid, *contact.legal_aid])),
    )
    last = max(record.last_activity_at or at, at)
    return record.model_copy(update={"profile": profile, "last_activity_at": last})


def filed(
    record: CustomerRecord,
    decision: CaseDecision,
    contact: Contact,
    *,
    at: datetime,
    text: str = "",
) -> CustomerRecord:
    """The customer once the contact is on its case (opened if new, with its opening `text`
    without identity), with its segment."""
    case = record.case(decision.case_id)
    if case is None:
        case = CaseRecord(
            case_id=decision.case_id,
            legal_field=decision.legal_field,
            opened_at=at,
            confidence=decision.confidence,
            needs_triage=decision.needs_triage,
            channel=contact.channel,
            kind=contact.kind,
            contact_id=contact.contact_id,
            text=text,
        )
    case = case.model_copy(
        update={
            "is_dispute": case.is_dispute or decision.is_dispute,
            "is_complaint": case.is_complaint or decision.is_complaint,
            "documents": _union(case.documents, contact.documents),
        }
    )
    others = tuple(c for c in record.open_cases if c.case_id != case.case_id)
    return record.model_copy(
        update={
            "open_cases": (*others, case),
            "case_ids": _union(record.case_ids, (case.case_id,)),
            "segment": decision.segment,
            "contacts": (*record.contacts, contact.contact_id)[-RECENT_CONTACTS:],
        }
    )


def reclassified(record: CustomerRecord, case_id: str, legal_field: LegalField) -> CustomerRecord:
    """The customer with staff's field on the open case (sure, no triage left)."""
    cases = tuple(
        c.model_copy(update={"legal_field": legal_field, "confidence": 1.0, "needs_triage": False})
        if c.case_id == case_id
        else c
        for c in record.open_cases
    )
    return record.model_copy(update={"open_cases": cases})


def resolved(record: CustomerRecord, case_id: str) -> CustomerRecord:
    """The customer once the case is closed: later contacts open a new one."""
    return record.model_copy(
        update={"open_cases": tuple(c for c in record.open_cases if c.case_id != case_id)}
    )


def signed(record: CustomerRecord, contract_id: str, at: datetime) -> CustomerRecord:
    """The customer with one more contract (a contract id counts once)."""
    last = max(record.last_activity_at or at, at)
    return record.model_copy(
        update={"contracts": _union(record.contracts, (contract_id,)), "last_activity_at": last}
    )
