"""The MongoDB collections metrics owns: case sheets, customer merges and KPI values.

Case sheets and merges are the durable truth (the engine is rebuilt from them at start);
`kpis` holds every cell's current value for readers and for the replay comparison. All
writes of one checkpoint go out as one unordered bulk write per collection.
"""

from dataclasses import asdict, fields
from datetime import UTC, date, datetime
from typing import Any

from pymongo import DeleteOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from services.metrics.domain import CaseEntry, CustomerMerge, EntryKind
from services.metrics.kpis import Cell, CellKey, cell_row

_ENTRY_FIELDS = {f.name for f in fields(CaseEntry)}


def entry_doc(entry: CaseEntry) -> dict[str, Any]:
    """A sheet entry as stored (instants as ISO strings: BSON dates drop microseconds)."""
    doc = {k: v for k, v in asdict(entry).items() if v is not None}
    doc["at"] = entry.at.isoformat()
    doc["kind"] = str(entry.kind)
    return doc


def entry_from(doc: dict[str, Any]) -> CaseEntry:
    """A sheet entry from its stored form."""
    data = {k: v for k, v in doc.items() if k in _ENTRY_FIELDS}
    data["at"] = datetime.fromisoformat(doc["at"])
    data["kind"] = EntryKind(doc["kind"])
    return CaseEntry(**data)


def cell_id(key: CellKey) -> str:
    """The cell's id: the metrics.kpi compaction key kpi|window|period|dimension|value."""
    kpi, window, start, dimension, value = key
    return "|".join((kpi, str(window), start.isoformat() if start else "all", dimension, value))


def cell_doc(key: CellKey, cell: Cell, *, now: datetime) -> dict[str, Any]:
    """A cell as stored for readers."""
    return {"_id": cell_id(key), **cell_row(key, cell), "updated_at": now}


COMPARED = ("value", "numerator", "denominator", "count", "extra")
"""Fields two KPI collections must agree on (updated_at is when, not what)."""


class MetricsStore:
    """Sheets, merges and KPI values; `prefix` gives replay its fresh collections."""

    def __init__(self, db: AsyncDatabase, *, prefix: str = "") -> None:
        self.db = db
        self.prefix = prefix
        self.sheets = db[f"{prefix}case_sheets"]
        self.merges = db[f"{prefix}customer_merges"]
        self.kpis = db[f"{prefix}kpis"]

    async def prepare(self) -> None:
        """Create the indexes the read API relies on."""
        await self.kpis.create_index([("kpi", 1), ("window", 1), ("period_start", 1)])

    async def drop(self) -> None:
        """Delete this store's collections (replay starts from nothing)."""
        for collection in (self.sheets, self.merges, self.kpis):
            await collection.drop()

    async def save(
        self,
        *,
        sheets: dict[str, list[CaseEntry]],
        merges: list[CustomerMerge],
        cells: dict[CellKey, Cell | None],
    ) -> None:
        """Write changed sheets, new merges and changed cells (each write safe to repeat)."""
        now = datetime.now(UTC)
        if sheets:
            await self.sheets.bulk_write(
                [
                    ReplaceOne(
                        {"_id": case_id},
                        {"_id": case_id, "entries": [entry_doc(e) for e in entries]},
                        upsert=True,
                    )
                    for case_id, entries in sheets.items()
                ],
                ordered=False,
            )
        if merges:
            await self.merges.bulk_write(
                [
                    ReplaceOne(
                        {"_id": m.id},
                        {"_id": m.id, "survivor": m.survivor, "merged": list(m.merged)},
                        upsert=True,
                    )
                    for m in merges
                ],
                ordered=False,
            )
        if cells:
            await self.kpis.bulk_write(
                [
                    ReplaceOne({"_id": cell_id(key)}, cell_doc(key, cell, now=now), upsert=True)
                    if cell is not None
                    else DeleteOne({"_id": cell_id(key)})
                    for key, cell in cells.items()
                ],
                ordered=False,
            )

    async def load_sheets(self) -> list[list[CaseEntry]]:
        """Every stored case sheet."""
        return [[entry_from(e) for e in doc["entries"]] async for doc in self.sheets.find({})]

    async def load_merges(self) -> list[CustomerMerge]:
        """Every stored customer merge."""
        return [
            CustomerMerge(id=doc["_id"], survivor=doc["survivor"], merged=tuple(doc["merged"]))
            async for doc in self.merges.find({})
        ]

    async def kpi_docs(self) -> dict[str, dict[str, Any]]:
        """Every stored KPI value by id."""
        return {doc["_id"]: doc async for doc in self.kpis.find({})}


def parse_period(value: str | None) -> date | None:
    """A stored period start back to a date."""
    return date.fromisoformat(value) if value else None
