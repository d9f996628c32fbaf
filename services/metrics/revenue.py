"""New vs returning revenue: each customer group's first signed contract.

A contract's revenue is *new* when it is its customer's first contract (earliest
occurred_at, then event id) and *returning* otherwise, so a group needs only its first
contract: contracts are never withdrawn and merges only join groups, so the first is a
minimum, the same whatever the order of contracts and merges. The first's revenue fact as
the cells hold it is kept too: when an earlier contract or a merge displaces it, the engine
moves that fact from new to returning without the displaced case's sheet (which may be set
aside).
"""

import dataclasses
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from services.metrics.domain import CaseEntry, Fact

NEW, RETURNING = "new", "returning"


@dataclass(slots=True)
class FirstContract:
    """A customer group's first contract and the revenue fact that counts it as new."""

    at: datetime
    entry_id: str
    case_id: str
    fact: Fact | None = None

    def order(self) -> tuple[datetime, str]:
        """Earlier contracts first; the event id breaks ties."""
        return (self.at, self.entry_id)


def as_returning(fact: Fact) -> Fact:
    """The same revenue counted as returning."""
    return dataclasses.replace(fact, parts=((RETURNING, fact.numerator),))


class FirstContracts:
    """The first contract of every customer group that signed one."""

    def __init__(self) -> None:
        self.by_group: dict[str, FirstContract] = {}

    def is_returning(self, group: str, contract: CaseEntry) -> bool:
        """True when the group's first contract is another one."""
        first = self.by_group.get(group)
        return first is not None and first.entry_id != contract.id

    def offer(self, group: str, contract: CaseEntry) -> Fact | None:
        """Take `contract` as the group's first if it is earlier; return a displaced new
        fact of another case (the caller recounts it as returning)."""
        first = self.by_group.get(group)
        candidate = FirstContract(contract.at, contract.id, contract.case_id)
        if first is not None and first.order() <= candidate.order():
            return None
        self.by_group[group] = candidate
        if first is None or first.case_id == contract.case_id:
            return None  # the case's own facts are recomputed by the caller
        return first.fact

    def fold(self, keep: str, gone: str) -> Fact | None:
        """Join group `gone` into `keep`; return the new fact of the first that lost."""
        lost = self.by_group.pop(gone, None)
        if lost is None:
            return None
        first = self.by_group.get(keep)
        if first is not None and first.order() < lost.order():
            return lost.fact
        self.by_group[keep] = lost
        return first.fact if first is not None else None

    def note(self, group: str, case_id: str, facts: Counter[Fact]) -> None:
        """Remember the case's new revenue fact if it holds the group's first contract."""
        first = self.by_group.get(group)
        if first is None or first.case_id != case_id:
            return
        first.fact = next(
            f for f in facts if f.kpi == "revenue_vnd" and f.parts and f.parts[0][0] == NEW
        )
