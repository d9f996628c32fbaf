"""Intake's internal events: how a contact reaches the partitions that own its identifiers,
its customer and its case (docs/services/intake.md, "One writer per key").

A contact visits the partition of each of its identifiers in turn (`intake.identify`,
keyed by identifier), which claims the identifier or names its customer; then the
partitions of the customers found (`intake.customer`, keyed by customer id): those a merge
folds first, the survivor last, where the case is decided. `case.resolved` and
`contract.signed` and `case.reclassified` find their customer through the case's partition
(`intake.case`).
"""

from typing import Literal

from pydantic import AwareDatetime, Field

from services.intake.state import CustomerRecord, Owner
from shared.events import (
    CaseReclassified,
    CaseResolved,
    ContactPoint,
    ContactReceived,
    ContractSigned,
    Event,
)

INTAKE_IDENTIFY = "intake.identify"
"""Internal, keyed by identifier: claim it or name its customer; or move it to a survivor."""
INTAKE_CUSTOMER = "intake.customer"
"""Internal, keyed by customer id: fold a merged customer, decide a contact, close a case,
count a contract."""
INTAKE_CASE = "intake.case"
"""Internal, keyed by case id: whose case it is, and the case events asking for it."""


class IdentifyStep(Event):
    """A contact at one of its identifiers (`keys[position]`), or a repoint after a merge."""

    event_type: Literal["intake.identify"] = Field(default=INTAKE_IDENTIFY)
    keys: list[str]
    position: int = 0
    contact: ContactReceived | None = None
    new_customer: str = ""
    """The id a customer created by this contact gets."""
    owners: dict[str, str] = Field(default_factory=dict)
    """Identifier key → the customer it named (or was claimed for) when visited."""
    candidates: dict[str, AwareDatetime] = Field(default_factory=dict)
    """Customer ids found so far → their rank."""
    repoint: Owner | None = None
    """After a merge: the identifier's surviving owner."""

    @property
    def key(self) -> str:
        """The identifier this step is at."""
        return self.keys[self.position]


class CustomerStep(Event):
    """Something a customer's partition does: fold into a survivor, decide a contact, close
    a case, count a contract."""

    event_type: Literal["intake.customer"] = Field(default=INTAKE_CUSTOMER)
    customer_id: str
    contact: ContactReceived | None = None
    owners: dict[str, str] = Field(default_factory=dict)
    candidates: dict[str, AwareDatetime] = Field(default_factory=dict)
    """Customers still to visit, the survivor among them → their rank."""
    visited: list[str] = Field(default_factory=list)
    absorbed: list[CustomerRecord] = Field(default_factory=list)
    """The customers this contact merged, as they were: the survivor folds them in."""
    resolved: CaseResolved | None = None
    contract: ContractSigned | None = None
    reclassified: CaseReclassified | None = None
    reclassified: CaseReclassified | None = None
    case_contact: ContactPoint | None = None
    """The contact point the contract's case was opened with."""


class CaseStep(Event):
    """At the case's partition: who owns the case (a link), or a case event for its owner."""

    event_type: Literal["intake.case"] = Field(default=INTAKE_CASE)
    customer_id: str | None = None
    contact: ContactPoint | None = None
    resolved: CaseResolved | None = None
    contract: ContractSigned | None = None
    reclassified: CaseReclassified | None = None
