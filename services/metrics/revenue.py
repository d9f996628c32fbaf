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
from collections.abc import MutableMapping
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


def is_new_revenue(fact: Fact) -> bool:
    """True for a revenue fact that counts its contract as new."""
    return fact.kpi == "revenue_vnd" and bool(fact.parts) and fact.parts[0][0] == NEW


def first_contract(contract: CaseEntry) -> FirstContract:
    """A contract event as a candidate for its customer's first."""
    return FirstContract(contract.at, contract.id, contract.case_id)


class FirstContracts:
    """The first contract of every customer group that signed one."""

    def __init__(self, by_group: MutableMapping[str, FirstContract] | None = None) -> None:
        self.by_group = {} if by_group is None else by_group

    def is_returning(self, group: str, contract_entry_id: str) -> bool:
        """True when the group's first contract is another one than this contract event."""
        first = self.by_group.get(group)
        return first is not None and first.entry_id != contract_entry_id

    def holds_first(self, group: str, case_id: str) -> bool:
        """True when the case holds the group's first contract."""
        first = self.by_group.get(group)
        return first is not None and first.case_id == case_id

    def offer(self, group: str, candidate: FirstContract) -> str | None:
        """Take the contract as the group's first if it is earlier; return the case whose
        first it displaced, its own included (the caller recounts that one as returning)."""
        first = self.by_group.get(group)
        if first is not None and first.order() <= candidate.order():
            return None
        self.by_group[group] = candidate
        return None if first is None else first.case_id

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
