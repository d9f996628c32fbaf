"""The in-memory KPI engine: case sheets in, exact cells out (pure, no I/O).

Memory: the sheets (the KPI-relevant fields of a case's events, no personal data) of at
most `max_cases` recently active cases, the ids of the cases whose sheets were set aside,
contact days per customer, each customer's first contract, and the cells, which are
bounded by KPIs x windows x periods x dimension values rather than by the number of
events. CRR is published for every period up to today, so the engine reads a clock. A
case set aside is stored already (entries are durable before they are evicted); an entry
for it waits until its sheet is brought back (`needs_sheet` / `reload`), so its
retractions stay exact.
"""

from collections import Counter, OrderedDict
from datetime import date
from zoneinfo import ZoneInfo

from services.metrics.activity import CustomerActivity
from services.metrics.domain import (
    BusinessSeconds,
    CaseEntry,
    CustomerMerge,
    EntryKind,
    Fact,
    case_facts,
    signed_contracts,
)
from services.metrics.kpis import Cell, CellKey
from services.metrics.revenue import FirstContracts, as_returning, new_revenue
from services.metrics.windows import Window, local_day, periods_of
from shared.clock import Clock


class MetricsEngine:
    """Applies case entries and customer merges; keeps every KPI cell exact."""

    def __init__(
        self,
        tz: ZoneInfo,
        business_seconds: BusinessSeconds | None = None,
        *,
        clock: Clock,
        max_cases: int | None = None,
    ) -> None:
        self.tz = tz
        self.business_seconds = business_seconds
        self.clock = clock
        self.max_cases = max_cases
        self.sheets: OrderedDict[str, dict[str, CaseEntry]] = OrderedDict()
        """Sheets of the cases in memory, least recently active first."""
        self.evicted: set[str] = set()
        self.cells: dict[CellKey, Cell] = {}
        self.customers = CustomerActivity()
        self.first_contracts = FirstContracts()
        self.new_revenue: dict[str, Fact] = {}
        """Per case holding its customer's first contract: that contract's revenue fact."""
        self.crr_until: date | None = None
        """The day CRR cells were last computed up to."""
        self.crr_keys: set[CellKey] = set()
        """The CRR cells among `cells` (retracted when a refresh no longer has them)."""
        self.merges: dict[str, CustomerMerge] = {}
        self.new_entries: list[CaseEntry] = []
        self.new_merges: list[CustomerMerge] = []
        self.dirty_cells: set[CellKey] = set()

    def ingest(self, item: CaseEntry | CustomerMerge | None) -> bool:
        """Apply one event's entry; False when it was seen before (or counts for nothing)."""
        if isinstance(item, CaseEntry):
            return self.record(item)
        if isinstance(item, CustomerMerge):
            return self.merge(item)
        return False

    def needs_sheet(self, item: CaseEntry | CustomerMerge | None) -> str | None:
        """The case whose stored sheet must be reloaded before `item` can be ingested."""
        if isinstance(item, CaseEntry) and item.case_id in self.evicted:
            return item.case_id
        return None

    def reload(self, case_id: str, entries: list[CaseEntry]) -> None:
        """Bring back a set-aside case's stored sheet (its facts are in the cells already)."""
        if case_id in self.evicted:  # else another handler brought it back meanwhile
            self.evicted.discard(case_id)
            self.sheets[case_id] = {e.id: e for e in entries}

    def evict(self) -> int:
        """Set aside the least recently active sheets beyond `max_cases`; return how many.

        Only sheets whose entries are all stored (none waiting in `new_entries`) go.
        """
        if self.max_cases is None or len(self.sheets) <= self.max_cases:
            return 0
        waiting = {e.case_id for e in self.new_entries}
        excess, gone = len(self.sheets) - self.max_cases, []
        for case_id in self.sheets:  # least recently active first
            if len(gone) == excess:
                break
            if case_id not in waiting:
                gone.append(case_id)
        for case_id in gone:
            del self.sheets[case_id]
            self.evicted.add(case_id)
        return len(gone)

    def record(self, entry: CaseEntry) -> bool:
        """Put the entry on its case's sheet and move the case's KPI contributions."""
        if entry.case_id in self.evicted:
            raise LookupError(f"case {entry.case_id} is set aside: reload its sheet first")
        sheet = self.sheets.get(entry.case_id)
        if sheet is None:
            sheet = self.sheets[entry.case_id] = {}
        else:
            self.sheets.move_to_end(entry.case_id)
        if entry.id in sheet:
            return False
        # The case's facts before the entry are computed again rather than kept: they would
        # be most of the engine's memory (≈ 20 facts per case, docs/benchmarks.md).
        before = self._facts(sheet)
        sheet[entry.id] = entry
        group = self._offer_contracts(sheet)
        after = self._facts(sheet)
        self._move(before, after)
        self._keep_new_revenue(entry.case_id, group, after)
        if entry.kind is EntryKind.CONTACT and entry.customer_id:
            self.customers.add_contact(entry.customer_id, local_day(entry.at, self.tz))
        self.new_entries.append(entry)
        return True

    def merge(self, merge: CustomerMerge) -> bool:
        """Fold merged customers together (CRR counts them once)."""
        if merge.id in self.merges:
            return False
        self.merges[merge.id] = merge
        for keep, gone in self.customers.merge(merge.survivor, merge.merged):
            self._recount_as_returning(self.first_contracts.fold(keep, gone))
        self.new_merges.append(merge)
        return True

    def _offer_contracts(self, sheet: dict[str, CaseEntry]) -> str | None:
        """Let the case's contracts become its customer's first; the customer's group."""
        if not any(e.kind is EntryKind.CONTRACT for e in sheet.values()):
            return None
        customer, contracts = signed_contracts(sheet.values())
        if customer is None:
            return None
        group = self.customers.root(customer)
        for contract in contracts:
            self._recount_as_returning(self.first_contracts.offer(group, contract))
        return group

    def _keep_new_revenue(self, case_id: str, group: str | None, facts: Counter[Fact]) -> None:
        """Remember the revenue fact of the case's contract that is its customer's first."""
        holds = group is not None and self.first_contracts.holds_first(group, case_id)
        fact = new_revenue(facts) if holds else None
        if fact is None:
            self.new_revenue.pop(case_id, None)
        else:
            self.new_revenue[case_id] = fact

    def _recount_as_returning(self, case_id: str | None) -> None:
        """Count the case's contract that is no longer its customer's first as returning."""
        fact = self.new_revenue.pop(case_id, None) if case_id else None
        if fact is not None:
            self._apply(fact, -1)
            self._apply(as_returning(fact), 1)

    def _returning(self, customer_id: str | None, contract: CaseEntry) -> bool:
        if customer_id is None:
            return False
        return self.first_contracts.is_returning(self.customers.root(customer_id), contract)

    def _facts(self, sheet: dict[str, CaseEntry]) -> Counter[Fact]:
        if not sheet:
            return Counter()
        return case_facts(sheet.values(), self.business_seconds, self._returning)

    def _move(self, old: Counter[Fact], new: Counter[Fact]) -> None:
        """Retract the facts the case no longer has, add the ones it gained."""
        for fact, n in (old - new).items():
            self._apply(fact, -n)
        for fact, n in (new - old).items():
            self._apply(fact, n)

    def _apply(self, fact: Fact, times: int) -> None:
        sign = 1 if times > 0 else -1
        periods = periods_of(fact.at, self.tz) if fact.at else ((Window.ALL, None),)
        for window, start in periods:
            for dimension, value in (("all", "all"), *fact.dims):
                key = (fact.kpi, window, start, dimension, value)
                cell = self.cells.setdefault(key, Cell())
                for _ in range(abs(times)):
                    cell.add(
                        sign=sign,
                        numerator=fact.numerator,
                        denominator=fact.denominator,
                        parts=fact.parts,
                        sample_ms=fact.sample_ms,
                    )
                if cell.is_empty():
                    del self.cells[key]
                self.dirty_cells.add(key)

    def refresh_crr(self) -> None:
        """Recompute CRR cells when customer activity or the day changed since the last call."""
        today = local_day(self.clock.now(), self.tz)
        if not self.customers.changed and today == self.crr_until:
            return
        self.customers.changed, self.crr_until = False, today
        fresh = self.customers.crr_cells(today)
        for key in self.crr_keys - fresh.keys():
            del self.cells[key]
            self.dirty_cells.add(key)
        self.crr_keys = set(fresh)
        for key, cell in fresh.items():
            if self.cells.get(key) != cell:
                self.cells[key] = cell
                self.dirty_cells.add(key)

    def take_new(self) -> tuple[list[CaseEntry], list[CustomerMerge]]:
        """Entries and merges recorded since the last call (and forget them)."""
        new = (self.new_entries, self.new_merges)
        self.new_entries, self.new_merges = [], []
        return new

    def take_dirty_cells(self) -> set[CellKey]:
        """Cells changed since the last call (and forget them)."""
        self.refresh_crr()
        dirty, self.dirty_cells = self.dirty_cells, set()
        return dirty
