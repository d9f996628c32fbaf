"""Metrics' state on the runtime, and the workspace its totals are computed in.

Keys (docs/services/metrics.md, "Storage"): `sheet/<case_id>` lives in its case's
partition; the totals — `cell/<kpi|window|period|dimension|value>`, `parent/<customer>`,
`days/<customer group>`, `first/<customer group>`, `new_revenue/<case_id>`, `activity`
and `dirty` — live in the one partition of the internal `metrics.step` topic (key
`totals`). Values are immutable models, as the runtime requires.

The totals' arithmetic (services.metrics.engine) works on mutable maps. A `Workspace`
gives it, for one rule run, working copies of the values it touches and writes back the
ones that changed, so the live service and the in-memory reference run the same code.
"""

from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping, MutableSet
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import Field

from services.metrics.activity import ActivityTotals
from services.metrics.domain import CaseEntry, Fact
from services.metrics.engine import Totals
from services.metrics.kpis import Cell, CellKey
from services.metrics.revenue import FirstContract
from services.metrics.windows import Window
from shared.runtime import View

TOTALS_KEY = "totals"
"""The constant key of `metrics.step`: every total is kept in its one partition."""
ACTIVITY_KEY = "activity"
DIRTY_KEY = "dirty"


_value = dataclass(frozen=True, slots=True, kw_only=True)
"""Values are frozen slotted dataclasses, not pydantic models: the rules build and compare
many a step (as models, construction and equality took a third of metrics' CPU under
load: docs/services/metrics.md, "Cost of a step"), and a sheet's facts take a fraction of
a model's memory. The runtime's codec (a pydantic TypeAdapter) stores them the same."""


@_value
class StoredFact:
    """A KPI fact as stored: maps rather than pairs (the MongoDB stand-in stores no array
    inside an array)."""

    kpi: str
    at: datetime | None
    dims: dict[str, str]
    numerator: int = 0
    denominator: int = 0
    parts: dict[str, int] = field(default_factory=dict)
    sample_ms: int | None = None
    ref: str | None = None
    times: int = 1
    """How many times the case counts it."""

    @classmethod
    def of(cls, fact: Fact, times: int = 1) -> "StoredFact":
        """`fact` as stored."""
        return cls(
            kpi=fact.kpi,
            at=fact.at,
            dims=dict(fact.dims),
            numerator=fact.numerator,
            denominator=fact.denominator,
            parts=dict(fact.parts),
            sample_ms=fact.sample_ms,
            ref=fact.ref,
            times=times,
        )

    def fact(self) -> Fact:
        """The fact it stores."""
        return Fact(
            self.kpi,
            self.at,
            tuple(sorted(self.dims.items())),
            self.numerator,
            self.denominator,
            tuple(self.parts.items()),
            self.sample_ms,
            self.ref,
        )


@_value
class SheetValue:
    """A case's sheet: one entry per event that counts for a KPI, and the facts the case
    was last counted with (retracted as they were added, whatever changed since)."""

    kind: Literal["sheet"] = "sheet"
    entries: tuple[CaseEntry, ...] = ()
    facts: tuple[StoredFact, ...] = ()

    def counted(self) -> Counter[Fact]:
        """The facts the case is counted with now."""
        return Counter({f.fact(): f.times for f in self.facts})


@_value
class ParentValue:
    """The customer a merged customer was folded into."""

    kind: Literal["parent"] = "parent"
    parent: str


@_value
class DaysValue:
    """A customer group's contacts per local day."""

    kind: Literal["days"] = "days"
    days: dict[date, int] = field(default_factory=dict)


@_value
class FirstValue:
    """A customer group's first contract."""

    kind: Literal["first"] = "first"
    at: datetime
    entry_id: str
    case_id: str


@_value
class NewRevenueValue:
    """The revenue fact of the case holding its customer's first contract."""

    kind: Literal["new_revenue"] = "new_revenue"
    fact: StoredFact


@_value
class ActivityValue:
    """Every customer group's activity steps, summed (CRR's difference maps)."""

    kind: Literal["activity"] = "activity"
    up: dict[date, int] = field(default_factory=dict)
    down: dict[date, int] = field(default_factory=dict)
    gaps: dict[str, int] = field(default_factory=dict)
    """"<down day>|<up day>" → customer groups (no pairs in arrays: see NewRevenueValue)."""
    contact_days: dict[date, int] = field(default_factory=dict)
    changed: bool = False
    until: date | None = None


@_value
class DirtyValue:
    """Ids of cells changed since they were last published. At `dirty`: the number of
    chunks at `dirty/0` … `dirty/<chunks - 1>`, each the ids one rule run changed (and ids
    a version before the chunks kept here); see `DirtyCells`."""

    kind: Literal["dirty"] = "dirty"
    cells: frozenset[str] = frozenset()
    chunks: int = 0


MetricsValue = Annotated[
    SheetValue
    | Cell
    | ParentValue
    | DaysValue
    | FirstValue
    | NewRevenueValue
    | ActivityValue
    | DirtyValue,
    Field(discriminator="kind"),
]


def is_idle(value: object) -> bool:
    """Everything but the activity sums and the dirty list may leave memory when idle."""
    return not isinstance(value, ActivityValue | DirtyValue)


def sheet_key(case_id: str) -> str:
    """The key of a case's sheet (in the case's partition)."""
    return f"sheet/{case_id}"


@lru_cache(maxsize=1 << 14)
def cell_id(key: CellKey) -> str:
    """The cell's id: the metrics.kpi compaction key kpi|window|period|dimension|value
    (remembered: a change touches each of its cells' ids three times)."""
    kpi, window, start, dimension, value = key
    return "|".join((kpi, str(window), start.isoformat() if start else "all", dimension, value))


def cell_key(ident: str) -> CellKey:
    """The cell a `cell_id` names."""
    kpi, window, start, dimension, value = ident.split("|", 4)
    return (
        kpi,
        Window(window),
        None if start == "all" else date.fromisoformat(start),
        dimension,
        value,
    )


# Converting between the runtime's immutable values and the totals' working objects.


def _same(value: Any) -> Any:
    return value


K = TypeVar("K")
T = TypeVar("T")


class Family(Generic[K, T]):
    """A kind of key: its prefix, and how its values become working objects and back."""

    def __init__(
        self,
        prefix: str,
        load: Callable[[Any], T],
        dump: Callable[[T], Any],
        name: Callable[[K], str] = str,
    ) -> None:
        self.prefix = prefix
        self.load = load
        self.dump = dump
        self.name = name

    def key(self, item: K) -> str:
        """The runtime key of `item`."""
        return self.prefix + self.name(item)


def _activity_load(value: ActivityValue) -> ActivityTotals:
    return ActivityTotals(
        up=Counter(value.up),
        down=Counter(value.down),
        gaps=Counter({_gap(ident): n for ident, n in value.gaps.items()}),
        contact_days=Counter(value.contact_days),
        changed=value.changed,
        until=value.until,
    )


def _gap(ident: str) -> tuple[date, date]:
    down, up = ident.split("|")
    return date.fromisoformat(down), date.fromisoformat(up)


def _activity_dump(totals: ActivityTotals) -> ActivityValue:
    return ActivityValue(
        up=dict(totals.up),
        down=dict(totals.down),
        gaps={f"{d.isoformat()}|{u.isoformat()}": n for (d, u), n in totals.gaps.items()},
        contact_days=dict(totals.contact_days),
        changed=totals.changed,
        until=totals.until,
    )


CELLS: Family[CellKey, Cell] = Family("cell/", _same, _same, cell_id)
"""Cells are immutable: the stored value is the working one."""
PARENTS: Family[str, str] = Family("parent/", lambda v: v.parent, lambda p: ParentValue(parent=p))
DAYS: Family[str, Counter[date]] = Family(
    "days/", lambda v: Counter(v.days), lambda d: DaysValue(days=dict(d))
)
FIRSTS: Family[str, FirstContract] = Family(
    "first/",
    lambda v: FirstContract(v.at, v.entry_id, v.case_id),
    lambda f: FirstValue(at=f.at, entry_id=f.entry_id, case_id=f.case_id),
)
NEW_REVENUE: Family[str, Fact] = Family(
    "new_revenue/",
    lambda v: v.fact.fact(),
    lambda f: NewRevenueValue(fact=StoredFact.of(f)),
)
ACTIVITY: Family[str, ActivityTotals] = Family("", _activity_load, _activity_dump)


@dataclass
class DirtyIndex:
    """The working copy of the value at `dirty`."""

    cells: set[str] = field(default_factory=set)
    chunks: int = 0


DIRTY: Family[str, DirtyIndex] = Family(
    "",
    lambda v: DirtyIndex(set(v.cells), v.chunks),
    lambda d: DirtyValue(cells=frozenset(d.cells), chunks=d.chunks),
)
DIRTY_CHUNKS: Family[str, set[str]] = Family(
    DIRTY_KEY + "/", lambda v: set(v.cells), lambda ids: DirtyValue(cells=frozenset(ids))
)


class Workspace:
    """Working copies of the values one rule run touches; `save` writes back the changed.

    A value read here is decoded into a fresh object the totals may change in place; the
    view's own values are never touched until `save` compares and sets them.
    """

    def __init__(self, view: View[Any]) -> None:
        self.view = view
        self._copies: dict[str, tuple[Family[Any, Any], Any]] = {}
        self._stored: dict[str, Any] = {}
        """Each touched key's value in the view when first touched (what `save` compares)."""

    def read(self, family: Family[Any, T], key: str) -> T | None:
        """The working copy of `key` (None when absent)."""
        if key not in self._copies:
            stored = self.view.get(key)
            self._stored[key] = stored
            self._copies[key] = (family, None if stored is None else family.load(stored))
        return self._copies[key][1]

    def write(self, family: Family[Any, T], key: str, item: T | None) -> None:
        """Give `key` a new working value (None: delete it)."""
        if key not in self._stored:
            self._stored[key] = self.view.get(key)
        self._copies[key] = (family, item)

    def one(self, family: Family[str, T], key: str, empty: Callable[[], T]) -> T:
        """The working copy of a single value, created empty when absent."""
        item = self.read(family, key)
        if item is None:
            item = empty()
            self.write(family, key, item)
        return item

    def map(self, family: Family[K, T]) -> "FamilyMap[K, T]":
        """The family's values as a mutable map over this workspace."""
        return FamilyMap(self, family)

    def save(self) -> None:
        """Write back to the view every value that differs from what it holds."""
        for key, (family, item) in self._copies.items():
            stored = self._stored[key]
            if item is None:
                if stored is not None:
                    self.view.delete(key)
                continue
            value = family.dump(item)
            if value is not stored and value != stored:
                self.view.set(key, value)


class FamilyMap(MutableMapping[K, T]):
    """One family's values in a workspace, by item (a partition's keys are not listed)."""

    def __init__(self, workspace: Workspace, family: Family[K, T]) -> None:
        self.workspace = workspace
        self.family = family

    def __getitem__(self, item: K) -> T:
        value = self.workspace.read(self.family, self.family.key(item))
        if value is None:
            raise KeyError(item)
        return value

    def get(self, item: K, default: Any = None) -> Any:
        """The item's value, or `default` (without raising KeyError for each absent one)."""
        value = self.workspace.read(self.family, self.family.key(item))
        return default if value is None else value

    def __setitem__(self, item: K, value: T) -> None:
        self.workspace.write(self.family, self.family.key(item), value)

    def __delitem__(self, item: K) -> None:
        if self.workspace.read(self.family, self.family.key(item)) is None:
            raise KeyError(item)
        self.workspace.write(self.family, self.family.key(item), None)

    def __iter__(self) -> Iterator[K]:
        raise TypeError("a runtime partition's keys are read one by one, never listed")

    def __len__(self) -> int:
        raise TypeError("a runtime partition's keys are read one by one, never counted")


class DirtyCells(MutableSet[CellKey]):
    """The cells changed since they were last published, stored in chunks: each rule run
    that changes cells writes their ids as a new chunk and bumps the count at `dirty`, so
    a cycle stores the ids it changed, not the whole set again (as one value it was
    rewritten by every cycle, up to 110 KB each with 2,400 cells changed within a
    second). Publishing reads the chunks and deletes them."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.index = workspace.one(DIRTY, DIRTY_KEY, DirtyIndex)
        self.chunk: set[str] | None = None
        """The ids this rule run changed (its chunk, written on the first)."""

    def _ids(self) -> set[str]:
        ids = set(self.index.cells)
        for n in range(self.index.chunks):
            ids |= self.workspace.read(DIRTY_CHUNKS, DIRTY_CHUNKS.key(str(n))) or ()
        return ids

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and cell_id(key) in self._ids()  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[CellKey]:
        return (cell_key(ident) for ident in sorted(self._ids()))

    def __len__(self) -> int:
        return len(self._ids())

    def add(self, value: CellKey) -> None:
        """Mark a cell."""
        if self.chunk is None:
            self.chunk = set()
            key = DIRTY_CHUNKS.key(str(self.index.chunks))
            self.workspace.write(DIRTY_CHUNKS, key, self.chunk)
            self.index.chunks += 1
        self.chunk.add(cell_id(value))

    def discard(self, value: CellKey) -> None:
        """Cells are unmarked all at once (`clear`)."""
        raise TypeError("dirty cells are cleared all together, once published")

    def clear(self) -> None:
        """Unmark every cell."""
        for n in range(self.index.chunks):
            self.workspace.write(DIRTY_CHUNKS, DIRTY_CHUNKS.key(str(n)), None)
        self.index.cells.clear()
        self.index.chunks = 0
        self.chunk = None


def totals_in(workspace: Workspace, tz: ZoneInfo) -> Totals:
    """The totals over the values of the partition that owns them."""
    return Totals(
        tz,
        cells=workspace.map(CELLS),
        parent=workspace.map(PARENTS),
        days=workspace.map(DAYS),
        activity=workspace.one(ACTIVITY, ACTIVITY_KEY, ActivityTotals),
        first=workspace.map(FIRSTS),
        new_revenue=workspace.map(NEW_REVENUE),
        dirty=DirtyCells(workspace),
    )
