"""Customer activity for CRR: who was active when, with merges folding customers together.

A customer is active at a day boundary b when they had a contact on one of the 365 days
before b. Each customer (group of merged ids) contributes +1/-1 steps to a day-indexed
difference map, so the number of active customers at any boundary is a prefix sum: memory
grows with days, not with contacts, and a change to one customer retracts and re-adds only
that customer's steps.
"""

from bisect import bisect_left, bisect_right
from collections import Counter
from datetime import date, timedelta
from itertools import accumulate

from services.metrics.kpis import Cell, CellKey
from services.metrics.windows import CALENDAR_WINDOWS, period_end, period_start

ACTIVE_DAYS = 365


def _apply(target: Counter[date], changes: Counter[date], sign: int) -> None:
    for day, n in changes.items():
        value = target.get(day, 0) + sign * n
        if value:
            target[day] = value
        else:
            target.pop(day, None)


class CustomerActivity:
    """Contact days per customer group and the steps they add to the active count."""

    def __init__(self, active_days: int = ACTIVE_DAYS) -> None:
        self.window = timedelta(days=active_days)
        self.parent: dict[str, str] = {}
        self.days: dict[str, Counter[date]] = {}
        self.up: Counter[date] = Counter()
        self.down: Counter[date] = Counter()
        self.first: Counter[date] = Counter()
        self.contact_days: Counter[date] = Counter()
        self.changed = False

    def root(self, customer_id: str) -> str:
        """The id the customer's group is kept under."""
        path = []
        while (parent := self.parent.get(customer_id, customer_id)) != customer_id:
            path.append(customer_id)
            customer_id = parent
        for member in path:
            self.parent[member] = customer_id
        return customer_id

    def add_contact(self, customer_id: str, day: date) -> None:
        """Record one (already deduplicated) contact of the customer on `day`."""
        root = self.root(customer_id)
        self._retract(root)
        self.days.setdefault(root, Counter())[day] += 1
        self.contact_days[day] += 1
        self._contribute(root)

    def merge(self, survivor: str, merged: tuple[str, ...]) -> None:
        """Fold `merged` customers into `survivor` (safe to repeat, any order)."""
        for other in merged:
            keep, gone = self.root(survivor), self.root(other)
            if keep == gone:
                continue
            self._retract(keep)
            self._retract(gone)
            self.parent[gone] = keep
            self.days.setdefault(keep, Counter()).update(self.days.pop(gone, Counter()))
            self._contribute(keep)

    def _steps(self, root: str) -> tuple[Counter[date], Counter[date], Counter[date]]:
        up: Counter[date] = Counter()
        down: Counter[date] = Counter()
        first: Counter[date] = Counter()
        days = sorted(self.days.get(root, ()))
        if not days:
            return up, down, first
        first[days[0]] += 1
        one = timedelta(days=1)
        start, end = days[0] + one, days[0] + one + self.window
        for day in days[1:]:
            if day + one <= end:
                end = day + one + self.window
            else:
                up[start] += 1
                down[end] += 1
                start, end = day + one, day + one + self.window
        up[start] += 1
        down[end] += 1
        return up, down, first

    def _retract(self, root: str) -> None:
        self._shift(root, -1)

    def _contribute(self, root: str) -> None:
        self._shift(root, 1)

    def _shift(self, root: str, sign: int) -> None:
        up, down, first = self._steps(root)
        _apply(self.up, up, sign)
        _apply(self.down, down, sign)
        _apply(self.first, first, sign)
        self.changed = True

    def crr_cells(self) -> dict[CellKey, Cell]:
        """CRR of every day, week and month that had a contact (dimension all)."""
        up_days = sorted(self.up)
        up_sums = list(accumulate(self.up[d] for d in up_days))
        down_days = sorted(self.down)
        down_sums = list(accumulate(self.down[d] for d in down_days))
        first_days = sorted(self.first)
        first_sums = [0, *accumulate(self.first[d] for d in first_days)]

        def active_at(boundary: date) -> int:
            i, j = bisect_right(up_days, boundary), bisect_right(down_days, boundary)
            return (up_sums[i - 1] if i else 0) - (down_sums[j - 1] if j else 0)

        def new_between(start: date, end: date) -> int:
            return (
                first_sums[bisect_left(first_days, end)]
                - first_sums[bisect_left(first_days, start)]
            )

        starts = {(w, period_start(w, d)) for d in self.contact_days for w in CALENDAR_WINDOWS}
        cells: dict[CellKey, Cell] = {}
        for window, start in starts:
            assert start is not None
            end = period_end(window, start)
            s, e, n = active_at(start), active_at(end), new_between(start, end)
            cell = Cell(numerator=e - n, denominator=s, count=e)
            cell.parts.update({"start": s, "end": e, "new": n})
            cells[("crr", window, start, "all", "all")] = cell
        return cells
