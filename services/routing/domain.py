"""Routing's rules: who may take a case, in which order, what the advice costs. Pure, no I/O."""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events import (
    AssignmentReason,
    Channel,
    DeliveryMethod,
    EscalationReason,
    IncomeTier,
    LegalField,
    Role,
    RosterPerson,
)

LEGAL_AID_REFERRAL = (
    "Anh/chị vui lòng liên hệ đến Trung tâm trợ giúp pháp lý để có thể nhận được "
    "dịch vụ tư vấn miễn phí"
)
"""SPEC §2: what a legal-aid customer is told."""


@dataclass(frozen=True)
class RoutedCase:
    """What routing needs to know about a case to assign it."""

    case_id: str
    legal_field: LegalField
    is_dispute: bool
    is_complaint: bool
    opened_at: datetime


Loads = Mapping[str, frozenset[int]]
"""Slot numbers each person holds now, by person id (absent: none)."""


def needs_lawyer(case: RoutedCase) -> bool:
    """Disputes and complaints go to lawyers only, never to a consultant alone."""
    return case.is_dispute or case.is_complaint


def is_expert(person: RosterPerson, case: RoutedCase) -> bool:
    """Active, knows the case's field, and has the role the case requires."""
    return (
        person.active
        and case.legal_field in person.legal_fields
        and (person.role == Role.LAWYER or not needs_lawyer(case))
    )


def free_slots(person: RosterPerson, loads: Loads) -> list[int]:
    """The person's slot numbers below capacity that nobody holds."""
    held = loads.get(person.id, frozenset())
    # After a capacity cut a person may hold slots >= capacity: they count toward the load.
    if len(held) >= person.capacity:
        return []
    return [slot for slot in range(person.capacity) if slot not in held]


def rank_candidates(
    case: RoutedCase, people: Iterable[RosterPerson], *, loads: Loads
) -> list[RosterPerson]:
    """Experts with spare capacity: least loaded first, then most experienced, then by id."""
    eligible = [p for p in people if is_expert(p, case) and free_slots(p, loads)]
    return sorted(
        eligible, key=lambda p: (len(loads.get(p.id, frozenset())), -p.years_experience, p.id)
    )


def escalation_candidates(
    case: RoutedCase, people: Iterable[RosterPerson], *, loads: Loads, holder: str | None
) -> list[RosterPerson]:
    """Who may take a breached case: active lawyers of its field with a free slot, other
    than its holder; the most experienced first, then the least loaded, then by id."""
    eligible = [
        p
        for p in people
        if p.active
        and p.role == Role.LAWYER
        and case.legal_field in p.legal_fields
        and p.id != holder
        and free_slots(p, loads)
    ]
    return sorted(
        eligible, key=lambda p: (-p.years_experience, len(loads.get(p.id, frozenset())), p.id)
    )


def why_no_escalation(case: RoutedCase, people: Iterable[RosterPerson]) -> EscalationReason:
    """no_expert when no active lawyer knows the field, else no_capacity."""
    lawyers = [p for p in people if p.active and p.role == Role.LAWYER]
    if any(case.legal_field in p.legal_fields for p in lawyers):
        return EscalationReason.NO_CAPACITY
    return EscalationReason.NO_EXPERT


def why_nobody(case: RoutedCase, people: Iterable[RosterPerson]) -> AssignmentReason:
    """no_expert when nobody (able to take it) knows the field, else no_capacity."""
    if any(is_expert(p, case) for p in people):
        return AssignmentReason.NO_CAPACITY
    return AssignmentReason.NO_EXPERT


def queue_order(cases: Iterable[RoutedCase]) -> list[RoutedCase]:
    """The order waiting cases get freed capacity: complaints first, then the oldest."""
    return sorted(cases, key=lambda c: (not c.is_complaint, c.opened_at, c.case_id))


def fields_with_room(people: Iterable[RosterPerson], loads: Loads) -> set[str]:
    """The legal fields (as written in queue entries) that an active person with a free
    slot knows: the only fields in which a waiting case can be given capacity now."""
    return {
        known.value for p in people if p.active and free_slots(p, loads) for known in p.legal_fields
    }


def assignment_reason(previous_assignee_id: str | None) -> AssignmentReason:
    """reassigned when the case had someone before, else assigned."""
    return AssignmentReason.REASSIGNED if previous_assignee_id else AssignmentReason.ASSIGNED


# --- roster file -------------------------------------------------------------------------


class RosterFile(BaseModel):
    """deploy/config/roster.yaml: the roster loaded at start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    people: list[RosterPerson] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> "RosterFile":
        ids = [p.id for p in self.people]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate roster ids: {', '.join(duplicates)}")
        return self


def person_fingerprint(person: RosterPerson) -> str:
    """A stable digest of a person's record, to tell a changed file entry from an old one."""
    record = person.model_dump(mode="json")
    return hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def file_changes(
    file_people: Iterable[RosterPerson], loaded_fingerprints: Mapping[str, str]
) -> list[RosterPerson]:
    """File entries that are new or edited since the file was last loaded.

    An unchanged entry is not applied again, so a run-time change made with
    `roster.updated` survives restarts until that person's file entry changes.
    """
    return [p for p in file_people if loaded_fingerprints.get(p.id) != person_fingerprint(p)]


# --- fees --------------------------------------------------------------------------------


class FieldFees(BaseModel):
    """One legal field's row of the fee schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="Vietnamese name of the field, for the basis.")
    default_method: DeliveryMethod
    prices_vnd: dict[DeliveryMethod, int]

    @model_validator(mode="after")
    def _every_method_priced(self) -> "FieldFees":
        missing = set(DeliveryMethod) - set(self.prices_vnd)
        if missing:
            raise ValueError(f"no price for: {', '.join(sorted(missing))}")
        if any(price < 0 for price in self.prices_vnd.values()):
            raise ValueError("prices must not be negative")
        return self


class FeeSchedule(BaseModel):
    """deploy/config/fees.yaml: prices per legal field and delivery method."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    example_prices: bool = Field(description="True while the prices are only examples.")
    currency: str = "VND"
    dispute_surcharge_vnd: int = Field(ge=0)
    basis: str
    dispute_basis: str
    legal_aid_basis: str
    legal_aid_referral: str = LEGAL_AID_REFERRAL
    fields: dict[LegalField, FieldFees]

    @model_validator(mode="after")
    def _every_field_priced(self) -> "FeeSchedule":
        missing = set(LegalField) - set(self.fields)
        if missing:
            raise ValueError(f"no fees for: {', '.join(sorted(missing))}")
        return self


@dataclass(frozen=True)
class QuoteRequest:
    """The facts about a case a quote depends on."""

    legal_field: LegalField
    is_dispute: bool
    is_complaint: bool
    legal_aid: bool
    channel: Channel
    income_tier: IncomeTier | None = None


@dataclass(frozen=True)
class Quote:
    """Prices for every delivery method, the recommendation and how it was computed."""

    prices_vnd: dict[DeliveryMethod, int]
    recommended_method: DeliveryMethod
    basis: str
    dispute_surcharge_vnd: int
    legal_aid: bool
    referral: str | None


def vnd(amount: int) -> str:
    """An amount written the Vietnamese way: 2.000.000."""
    return f"{amount:,}".replace(",", ".")


def recommended_method(request: QuoteRequest, schedule: FeeSchedule) -> DeliveryMethod:
    """The delivery method the firm recommends, first rule that applies wins.

    legal aid or complaint → phone (a call back at once); dispute → office (papers and
    evidence reviewed in person); walk-in → office; premium income → onsite; budget
    income → phone; otherwise the field's default method from the fee schedule.
    """
    if request.legal_aid or request.is_complaint:
        return DeliveryMethod.PHONE
    if request.is_dispute or request.channel == Channel.WALK_IN:
        return DeliveryMethod.OFFICE
    if request.income_tier == IncomeTier.PREMIUM:
        return DeliveryMethod.ONSITE
    if request.income_tier == IncomeTier.BUDGET:
        return DeliveryMethod.PHONE
    return schedule.fields[request.legal_field].default_method


def quote(request: QuoteRequest, schedule: FeeSchedule) -> Quote:
    """The case's price per delivery method: the field's row, plus the dispute surcharge.

    Legal-aid customers pay 0 VND and are referred to the Legal Aid Center (SPEC §2).
    """
    row = schedule.fields[request.legal_field]
    method = recommended_method(request, schedule)
    if request.legal_aid:
        return Quote(
            prices_vnd=dict.fromkeys(DeliveryMethod, 0),
            recommended_method=method,
            basis=schedule.legal_aid_basis.format(field_name=row.name),
            dispute_surcharge_vnd=0,
            legal_aid=True,
            referral=schedule.legal_aid_referral,
        )
    surcharge = schedule.dispute_surcharge_vnd if request.is_dispute else 0
    basis = schedule.basis.format(field_name=row.name)
    if surcharge:
        basis += schedule.dispute_basis.format(surcharge_vnd=vnd(surcharge))
    return Quote(
        prices_vnd={m: row.prices_vnd[m] + surcharge for m in DeliveryMethod},
        recommended_method=method,
        basis=basis,
        dispute_surcharge_vnd=surcharge,
        legal_aid=False,
        referral=None,
    )


def parse_fee_schedule(data: Any) -> FeeSchedule:
    """Validate the fee schedule read from fees.yaml."""
    return FeeSchedule.model_validate(data)


def parse_roster(data: Any) -> list[RosterPerson]:
    """Validate the roster read from roster.yaml."""
    return RosterFile.model_validate(data).people
