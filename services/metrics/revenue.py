"""New vs returning revenue: each customer group's first signed contract.

A contract's revenue is *new* when it is its customer's first contract (earliest
occurred_at, then event id) and *returning* otherwise, so a group needs only its first
contract: contracts are never withdrawn and merges only join groups, so the first is a
minimum, the same whatever the order of contracts and merges. When an earlier contract or
a merge displaces a first, the engine recounts that contract as returning from the new
revenue fact it keeps for the displaced case, without its sheet (which may be set aside).

A case's customer is the one of the contact it runs from (domain.signed_contracts). Intake
keeps one customer per case, changed only by a merge; were a case to move to an unrelated
customer, its contracts would stay counted for the first one too.
"""

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.metrics.domain import CaseEntry, Fact

NEW, RETURNING = "new", "returning"


@dataclass(frozen=True, slots=True)
class FirstContract:
    """A customer group's first contract."""

    at: datetime
    entry_id: str
    case_id: str

    def order(self) -> tuple[datetime, str]:
        """Earlier contracts first; the event id breaks ties."""
        return (self.at, self.entry_id)


def as_returning(fact: Fact) -> Fact:
    """The same revenue counted as returning."""
    return dataclasses.replace(fact, parts=((RETURNING, fact.numerator),))


def new_revenue(facts: Iterable[Fact]) -> Fact | None:
    """The revenue fact among `facts` that counts a contract as new, if any."""
    return next(
        (f for f in facts if f.kpi == "revenue_vnd" and f.parts and f.parts[0][0] == NEW), None
    )


class FirstContracts:
    """The first contract of every customer group that signed one."""

    def __init__(self) -> None:
        self.by_group: dict[str, FirstContract] = {}

    def is_returning(self, group: str, contract: CaseEntry) -> bool:
        """True when the group's first contract is another one."""
        first = self.by_group.get(group)
        return first is not None and first.entry_id != contract.id

    def holds_first(self, group: str, case_id: str) -> bool:
        """True when the case holds the group's first contract."""
        first = self.by_group.get(group)
        return first is not None and first.case_id == case_id

    def offer(self, group: str, contract: CaseEntry) -> str | None:
        """Take `contract` as the group's first if it is earlier; return the other case
        whose first it displaced (the caller recounts that contract as returning)."""
        first = self.by_group.get(group)
        candidate = FirstContract(contract.at, contract.id, contract.case_id)
        if first is not None and first.order() <= candidate.order():
            return None
        self.by_group[group] = candidate
        if first is None or first.case_id == contract.case_id:
            return None  # the case's own facts are recomputed by the caller
        return first.case_id

    def fold(self, keep: str, gone: str) -> str | None:
        """Join group `gone` into `keep`; return the case whose first lost, if any."""
        lost = self.by_group.pop(gone, None)
        if lost is None:
            return None
        first = self.by_group.get(keep)
        if first is not None and first.entry_id == lost.entry_id:
            return None  # one contract seen under two ids of the customer
        if first is not None and first.order() < lost.order():
            return lost.case_id
        self.by_group[keep] = lost
        return first.case_id if first is not None else None
