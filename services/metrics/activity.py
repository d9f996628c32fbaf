"""Customer activity for CRR: who was active when, with merges folding customers together.

A customer is active at a day boundary b when they had a contact on one of the 365 days
before b, so each customer (group of merged ids) is active over intervals of at least 366
boundaries. A customer's intervals become steps of day-indexed difference maps: `up` where
an interval starts, `down` where it ends, and `gaps` (down d, up u) shorter than the
longest period. The number of customers active at a boundary is a prefix sum, and the
number active at both ends s < e of a period follows without looking at any customer:
those active at s and not at e are the downs in (s, e] minus the gaps that close again
before e (an interval is longer than any period, so nobody lapses twice in one). Memory
grows with days, not with contacts, and a change to one customer retracts and re-adds only
that customer's steps.
"""

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate, pairwise

from services.metrics.kpis import Cell, CellKey
from services.metrics.windows import CALENDAR_WINDOWS, Window, period_end, period_start

ACTIVE_DAYS = 365
LONGEST_PERIOD = timedelta(days=31)
"""A month: only lapses shorter than this can open and close inside one period."""

Gap = tuple[date, date]
"""(boundary where an activity interval ends, boundary where the next one starts)."""


def _apply(target: Counter, changes: Counter, sign: int) -> None:
    for key, n in changes.items():
        value = target.get(key, 0) + sign * n
        if value:
            target[key] = value
        else:
            target.pop(key, None)


class _Prefix:
    """Counts of a day-indexed difference map up to a boundary, by binary search."""

    def __init__(self, steps: Counter[date]) -> None:
        self.days = sorted(steps)
        self.sums = [0, *accumulate(steps[d] for d in self.days)]

    def through(self, boundary: date) -> int:
        """Sum of the steps on days <= boundary."""
        return self.sums[bisect_right(self.days, boundary)]


def periods_between(window: Window, first: date, last: date) -> Iterator[date]:
    """Start of every `window` period from the one holding `first` to the one holding `last`."""
    start = period_start(window, first)
    assert start is not None
    while start <= last:
        yield start
        start = period_end(window, start)


@dataclass
class ActivityTotals:
    """The difference maps summed over every customer group, and what CRR was computed for."""

    up: Counter[date] = field(default_factory=Counter)
    down: Counter[date] = field(default_factory=Counter)
    gaps: Counter[Gap] = field(default_factory=Counter)
    contact_days: Counter[date] = field(default_factory=Counter)
    changed: bool = False
    """Activity changed since CRR was last computed."""
    until: date | None = None
    """The day CRR was last computed up to."""

    def crr_cells(self, today: date) -> dict[CellKey, Cell]:
        """CRR of every day, week and month from the first contact's to today's (dimension all).

        numerator = customers active at both the period's start and its end, denominator =
        those active at its start; parts: start, end, new (active at the end only) and
        lost (active at the start only).
        """
        if not self.contact_days:
            return {}
        up, down, one = _Prefix(self.up), _Prefix(self.down), timedelta(days=1)
        gaps = sorted(self.gaps.items())

        def active_at(boundary: date) -> int:
            return up.through(boundary) - down.through(boundary)

        def closed_gaps(start: date, end: date) -> int:
            closed = 0
            for (down_at, up_at), n in gaps[bisect_left(gaps, ((start + one,),)) :]:
                if down_at >= end:
                    break
                closed += n if up_at <= end else 0
            return closed

        first, last = min(self.contact_days), max(max(self.contact_days), today)
        cells: dict[CellKey, Cell] = {}
        for window in CALENDAR_WINDOWS:
            for start in periods_between(window, first, last):
                end = period_end(window, start)
                s, e = active_at(start), active_at(end)
                lost = down.through(end) - down.through(start) - closed_gaps(start, end)
                kept = s - lost
                cell = Cell(numerator=kept, denominator=s, count=s + e - kept)
                cell.parts.update({"start": s, "end": e, "new": e - kept, "lost": lost})
                cells[("crr", window, start, "all", "all")] = cell
        return cells


class CustomerActivity:
    """Contact days per customer group and the steps they add to the active counts.

    Its maps are given (plain dicts in memory, or a runtime partition's values through
    `services.metrics.state.Workspace`): the same code runs over either.
    """

    def __init__(
        self,
        parent: MutableMapping[str, str] | None = None,
        days: MutableMapping[str, Counter[date]] | None = None,
        totals: ActivityTotals | None = None,
        active_days: int = ACTIVE_DAYS,
    ) -> None:
        self.window = timedelta(days=active_days)
        self.parent = {} if parent is None else parent
        """Customer id → the id it was merged into (absent: its own root)."""
        self.days = {} if days is None else days
        """Root → contact days of the group."""
        self.totals = ActivityTotals() if totals is None else totals

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
        self._shift(root, -1)
        self.days.setdefault(root, Counter())[day] += 1
        self.totals.contact_days[day] += 1
        self._shift(root, 1)

    def merge(self, survivor: str, merged: tuple[str, ...]) -> list[tuple[str, str]]:
        """Fold `merged` customers into `survivor` (safe to repeat, any order).

        Returns the groups folded, as (kept root, folded root) pairs.
        """
        folded = []
        for other in merged:
            keep, gone = self.root(survivor), self.root(other)
            if keep == gone:
                continue
            self._shift(keep, -1)
            self._shift(gone, -1)
            self.parent[gone] = keep
            self.days.setdefault(keep, Counter()).update(self.days.pop(gone, Counter()))
            self._shift(keep, 1)
            folded.append((keep, gone))
        return folded

    def _intervals(self, root: str) -> list[tuple[date, date]]:
        """The boundaries [start, end) at which the customer group is active."""
        one = timedelta(days=1)
        intervals: list[tuple[date, date]] = []
        for day in sorted(self.days.get(root, ())):
            start, end = day + one, day + one + self.window
            if intervals and start <= intervals[-1][1]:
                intervals[-1] = (intervals[-1][0], end)
            else:
                intervals.append((start, end))
        return intervals

    def _shift(self, root: str, sign: int) -> None:
        intervals = self._intervals(root)
        _apply(self.totals.up, Counter(start for start, _ in intervals), sign)
        _apply(self.totals.down, Counter(end for _, end in intervals), sign)
        gaps = Counter(
            (end, start)
            for (_, end), (start, _) in pairwise(intervals)
            if start - end < LONGEST_PERIOD
        )
        _apply(self.totals.gaps, gaps, sign)
        self.totals.changed = True
