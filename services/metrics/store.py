"""The MongoDB collections metrics owns: case-sheet entries, customer merges, KPI values.

Entries and merges are the durable truth (the engine is rebuilt from them at start): one
document per counted event, keyed by its event id, written by one `insert_many` per
checkpoint (inserts are the cheap, idempotent write on FerretDB). `kpis` holds every
cell's current value for readers and for the replay comparison; it is derived, so it is
refreshed at most once per publish interval, off the consumers' path.
"""

from collections.abc import AsyncIterator
from dataclasses import asdict, fields
from datetime import UTC, date, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.metrics.domain import CaseEntry, CustomerMerge, EntryKind
from services.metrics.kpis import CellKey, KpiValue, kpi_row
from services.metrics.windows import Window

_ENTRY_FIELDS = {f.name for f in fields(CaseEntry)}
ENTRY_VERSION = 2
"""2: a quote's entry records its highest price in `amount` (1 recorded none)."""
UNKNOWN_PRICE = 1
"""The amount given to a priced quote stored before its price was (any amount above 0)."""


def entry_doc(entry: CaseEntry) -> dict[str, Any]:
    """A sheet entry as stored (instants as ISO strings: BSON dates drop microseconds)."""
    doc = {k: v for k, v in asdict(entry).items() if v is not None}
    doc["_id"] = doc.pop("id")
    doc["at"] = entry.at.isoformat()
    doc["kind"] = str(entry.kind)
    doc["v"] = ENTRY_VERSION
    return doc


def entry_from(doc: dict[str, Any]) -> CaseEntry:
    """A sheet entry from its stored form."""
    data = {k: v for k, v in doc.items() if k in _ENTRY_FIELDS}
    data["id"] = doc["_id"]
    data["at"] = datetime.fromisoformat(doc["at"])
    data["kind"] = EntryKind(doc["kind"])
    if data["kind"] is EntryKind.QUOTED and doc.get("v", 1) < 2:
        # Stored without its price: only legal-aid quotes were 0 VND (the fee schedule's
        # prices are above 0), so the flag tells whether the quote can convert.
        data["amount"] = 0 if doc.get("legal_aid") else UNKNOWN_PRICE
    return CaseEntry(**data)


def cell_id(key: CellKey) -> str:
    """The cell's id: the metrics.kpi compaction key kpi|window|period|dimension|value."""
    kpi, window, start, dimension, value = key
    return "|".join((kpi, str(window), start.isoformat() if start else "all", dimension, value))


def kpi_doc(key: CellKey, value: KpiValue, *, now: datetime) -> dict[str, Any]:
    """A KPI value as stored for readers."""
    return {"_id": cell_id(key), **kpi_row(key, value), "updated_at": now}


COMPARED = ("value", "numerator", "denominator", "count", "extra")
"""Fields two KPI collections must agree on (updated_at is when, not what)."""


class MetricsStore:
    """Sheets, merges and KPI values; `prefix` gives replay its fresh collections."""

    def __init__(self, db: AsyncDatabase, *, prefix: str = "") -> None:
        self.db = db
        self.prefix = prefix
        self.entries = db[f"{prefix}case_entries"]
        self.merges = db[f"{prefix}customer_merges"]
        self.kpis = db[f"{prefix}kpis"]

    async def prepare(self) -> None:
        """Create the indexes the read API and sheet reloads rely on."""
        await self.kpis.create_index([("kpi", 1), ("window", 1), ("period_start", 1)])
        await self.entries.create_index("case_id")

    async def drop(self) -> None:
        """Delete this store's collections (replay starts from nothing)."""
        for collection in (self.entries, self.merges, self.kpis):
            await collection.drop()

    async def add(self, *, entries: list[CaseEntry], merges: list[CustomerMerge]) -> None:
        """Store new sheet entries and merges: one insert each, a repeat changes nothing."""
        await _insert_new(self.entries, [entry_doc(e) for e in entries])
        await _insert_new(
            self.merges,
            [{"_id": m.id, "survivor": m.survivor, "merged": list(m.merged)} for m in merges],
        )

    async def put_kpis(self, values: dict[CellKey, KpiValue | None]) -> None:
        """Replace the stored KPI values (None: the cell is gone)."""
        if not values:
            return
        now = datetime.now(UTC)
        docs = [kpi_doc(k, v, now=now) for k, v in values.items() if v is not None]
        await self.kpis.delete_many({"_id": {"$in": [cell_id(k) for k in values]}})
        if docs:
            await self.kpis.insert_many(docs, ordered=False)

    async def stream_entries(self) -> AsyncIterator[CaseEntry]:
        """Every stored sheet entry, one case's entries after another."""
        async for doc in self.entries.find({}, sort=[("case_id", 1)]):
            yield entry_from(doc)

    async def case_entries(self, case_id: str) -> list[CaseEntry]:
        """The stored sheet of one case."""
        return [entry_from(doc) async for doc in self.entries.find({"case_id": case_id})]

    async def load_merges(self) -> list[CustomerMerge]:
        """Every stored customer merge."""
        return [
            CustomerMerge(id=doc["_id"], survivor=doc["survivor"], merged=tuple(doc["merged"]))
            async for doc in self.merges.find({})
        ]

    async def stored_cells(self) -> list[CellKey]:
        """The keys of every stored KPI value."""
        fields = {"kpi": 1, "window": 1, "period_start": 1, "dimension": 1, "dimension_value": 1}
        return [
            (
                doc["kpi"],
                Window(doc["window"]),
                parse_period(doc["period_start"]),
                doc["dimension"],
                doc["dimension_value"],
            )
            async for doc in self.kpis.find({}, fields)
        ]

    async def kpi_docs(self) -> dict[str, dict[str, Any]]:
        """Every stored KPI value by id."""
        return {doc["_id"]: doc async for doc in self.kpis.find({})}


def parse_period(value: str | None) -> date | None:
    """A stored period start back to a date."""
    return date.fromisoformat(value) if value else None


DUPLICATE_KEY = 11000


async def _insert_new(collection: Any, docs: list[dict[str, Any]]) -> None:
    """Insert `docs`, skipping those whose _id is already stored."""
    if not docs:
        return
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as e:
        if any(err.get("code") != DUPLICATE_KEY for err in e.details.get("writeErrors", [])):
            raise
