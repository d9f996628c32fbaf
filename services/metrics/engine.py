"""KPI arithmetic: case changes in, exact cells out (pure, no I/O).

`Totals` holds what crosses cases: the cells, each customer group's contact days (CRR)
and first contract (revenue new vs returning), and the cells changed since they were
last published. Its maps are given: plain dicts in `MetricsEngine`, or the values of the
runtime partition that owns the totals (services.metrics.handlers, through
`services.metrics.state.Workspace`), so the live service and a replay run the same code.

`MetricsEngine` is the whole computation in one process: the sheets of every case, then
the totals. `python -m services.metrics rebuild` replays the log through it, and the tests
compare the live service with it.
"""

from collections import Counter
from collections.abc import Iterable, MutableMapping
from datetime import date
from zoneinfo import ZoneInfo

from services.metrics.activity import ActivityTotals, CustomerActivity
from services.metrics.domain import (
    BusinessSeconds,
    CaseChange,
    CaseEntry,
    CustomerMerge,
    Fact,
    case_change,
)
from services.metrics.kpis import Cell, CellDelta, CellKey, sketch_bucket
from services.metrics.revenue import (
    FirstContract,
    FirstContracts,
    as_returning,
    first_contract,
    is_new_revenue,
)
from services.metrics.windows import Window, local_day, periods_of
from shared.clock import Clock

_EMPTY = Cell()


class Totals:
    """Applies case changes and customer merges to the cells; keeps them exact."""

    def __init__(
        self,
        tz: ZoneInfo,
        *,
        cells: MutableMapping[CellKey, Cell] | None = None,
        parent: MutableMapping[str, str] | None = None,
        days: MutableMapping[str, Counter[date]] | None = None,
        activity: ActivityTotals | None = None,
        first: MutableMapping[str, FirstContract] | None = None,
        new_revenue: MutableMapping[str, Fact] | None = None,
        dirty: set[CellKey] | None = None,
    ) -> None:
        self.tz = tz
        self.cells = {} if cells is None else cells
        self.customers = CustomerActivity(parent, days, activity)
        self.first_contracts = FirstContracts(first)
        self.new_revenue = {} if new_revenue is None else new_revenue
        """Per case holding its customer's first contract: that contract's revenue fact."""
        self.dirty = set() if dirty is None else dirty
        """Cells changed since they were last published."""
        self._pending: dict[CellKey, CellDelta] = {}
        """What the change or merge being applied adds to each cell (see `_count`)."""

    def apply(self, change: CaseChange) -> None:
        """Move the case's contributions: retract, offer its contracts, add."""
        self.add_all((change,))

    def merge(self, merge: CustomerMerge) -> None:
        """Fold merged customers together (safe to repeat, any order)."""
        self.add_all((merge,))

    def add_all(self, items: Iterable[CaseChange | CustomerMerge]) -> None:
        """Apply case changes and merges in order, then each cell they move once (what
        they add to a cell is summed first: the same as one at a time, in fewer reads)."""
        try:
            for item in items:
                if isinstance(item, CustomerMerge):
                    self._merge(item)
                else:
                    self._apply(item)
        finally:
            self._flush()

    def _apply(self, change: CaseChange) -> None:
        for fact, n in change.retract:
            self._count(self._split(fact, change.customer_before), -n)
            held = self.new_revenue.get(change.case_id)
            if held is not None and held.ref == fact.ref and fact.ref is not None:
                del self.new_revenue[change.case_id]
        group = None
        if change.customer_after is not None and change.contracts:
            group = self.customers.root(change.customer_after)
            for contract in change.contracts:
                self._recount_as_returning(
                    self.first_contracts.offer(group, first_contract(contract))
                )
        for fact, n in change.add:
            split = self._split(fact, change.customer_after)
            self._count(split, n)
            if group is not None and is_new_revenue(split) and fact.ref is not None:
                self.new_revenue[change.case_id] = split
        if change.contact is not None:
            self.customers.add_contact(*change.contact)

    def _merge(self, merge: CustomerMerge) -> None:
        for keep, gone in self.customers.merge(merge.survivor, merge.merged):
            self._recount_as_returning(self.first_contracts.fold(keep, gone))

    def refresh_crr(self, today: date) -> None:
        """Recompute CRR cells when customer activity or the day changed since the last call."""
        activity = self.customers.totals
        if not activity.changed and today == activity.until:
            return
        activity.changed, activity.until = False, today
        # Contact days are only ever added, so the periods computed last time are all
        # computed again: no CRR cell disappears.
        for key, cell in activity.crr_cells(today).items():
            if self.cells.get(key) != cell:
                self.cells[key] = cell
                self.dirty.add(key)

    def take_dirty(self) -> set[CellKey]:
        """Cells changed since the last call (and forget them)."""
        dirty = set(self.dirty)
        self.dirty.clear()
        return dirty

    def _split(self, fact: Fact, customer: str | None) -> Fact:
        """A revenue fact as returning when its customer's first contract is another one."""
        if fact.ref is None or customer is None:
            return fact
        group = self.customers.root(customer)
        return as_returning(fact) if self.first_contracts.is_returning(group, fact.ref) else fact

    def _recount_as_returning(self, case_id: str | None) -> None:
        """Count the case's contract that is no longer its customer's first as returning."""
        fact = self.new_revenue.pop(case_id, None) if case_id else None
        if fact is not None:
            self._count(fact, -1)
            self._count(as_returning(fact), 1)

    def _count(self, fact: Fact, times: int) -> None:
        """Add the fact `times` times to each of its cells' pending deltas: a case's change
        retracts its facts and adds them again with its new dimensions, so most of its
        cells (every period's "all" and unchanged dimension values) net to nothing."""
        periods = periods_of(fact.at, self.tz) if fact.at else ((Window.ALL, None),)
        bucket = None if fact.sample_ms is None else sketch_bucket(fact.sample_ms)
        pending = self._pending
        for window, start in periods:
            for dimension, value in (("all", "all"), *fact.dims):
                key = (fact.kpi, window, start, dimension, value)
                delta = pending.get(key)
                if delta is None:
                    delta = pending[key] = CellDelta()
                delta.add(times, fact.numerator, fact.denominator, fact.parts, bucket)

    def _flush(self) -> None:
        """Apply the pending deltas that do not cancel out; mark those cells changed."""
        pending, self._pending = self._pending, {}
        for key, delta in pending.items():
            if delta.is_zero():
                continue
            cell = (self.cells.get(key) or _EMPTY).plus(delta)
            if cell.is_empty():
                self.cells.pop(key, None)
            else:
                self.cells[key] = cell
            self.dirty.add(key)


class MetricsEngine:
    """Every case's sheet and the totals, in memory: the reference computation."""

    def __init__(
        self,
        tz: ZoneInfo,
        business_seconds: BusinessSeconds | None = None,
        *,
        clock: Clock,
    ) -> None:
        self.tz = tz
        self.business_seconds = business_seconds
        self.clock = clock
        self.sheets: dict[str, dict[str, CaseEntry]] = {}
        self.totals = Totals(tz)
        self.merges: set[str] = set()

    @property
    def cells(self) -> MutableMapping[CellKey, Cell]:
        """Every KPI cell."""
        return self.totals.cells

    def ingest(self, item: CaseEntry | CustomerMerge | None) -> bool:
        """Apply one event's entry; False when it was seen before (or counts for nothing)."""
        if isinstance(item, CaseEntry):
            return self.record(item)
        if isinstance(item, CustomerMerge):
            if item.id in self.merges:
                return False
            self.merges.add(item.id)
            self.totals.merge(item)
            return True
        return False

    def record(self, entry: CaseEntry) -> bool:
        """Put the entry on its case's sheet and move the case's KPI contributions."""
        sheet = self.sheets.setdefault(entry.case_id, {})
        changed = case_change(sheet, entry, tz=self.tz, business_seconds=self.business_seconds)
        if changed is None:
            return False
        sheet[entry.id] = entry
        self.totals.apply(changed[0])
        return True

    def refresh_crr(self) -> None:
        """Bring CRR up to today (the engine's clock)."""
        self.totals.refresh_crr(local_day(self.clock.now(), self.tz))

    def take_dirty_cells(self) -> set[CellKey]:
        """Cells changed since the last call, CRR brought up to today first."""
        self.refresh_crr()
        return self.totals.take_dirty()
