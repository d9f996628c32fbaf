"""Durable partition state in MongoDB: insert-only versions per batch, a marker last.

One collection `<name>_changes` holds, per batch and owned partition that changed:
- one document per changed key or timer: `{_id: <p>/<ns>/<key>/<seq>, partition, seq, ns,
  key, value}` (`value` None: deleted);
- then the batch's marker `{_id: <p>/batch/<seq>, ...}` with the partition's checkpoint
  offsets, the ids of the events it handled (the idempotency ledger) and the records it
  publishes (the outbox).
All of a poll's documents go in one ordered `insert_many`, markers last: a batch counts
only when its marker is stored, so a batch cut short leaves versions restore ignores.
Restore reads the partition by equality on `partition` (the one filter FerretDB pushes
down) and keeps the latest version per key. Superseded versions are deleted later, by
`_id`, off the hot path.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.runtime.context import Outgoing

VALUE, TIMER, BATCH = "v", "t", "batch"
DUPLICATE_KEY = 11000


class Fenced(Exception):
    """Another instance stored this batch's sequence number: the partition is not ours."""


@dataclass
class Changes:
    """What one batch changed in one partition, encoded for storage."""

    partition: int
    seq: int
    values: dict[str, Any]
    timers: dict[str, Any]
    handled: list[str]
    outbox: list[Outgoing]
    checkpoint: dict[str, int]

    def version_id(self, ns: str, key: str) -> str:
        """The stored id of this batch's version of `key` in namespace `ns`."""
        return f"{self.partition}/{ns}/{key}/{self.seq}"

    @property
    def marker_id(self) -> str:
        """The stored id of this batch's marker."""
        return f"{self.partition}/{BATCH}/{self.seq}"


@dataclass
class Restored:
    """A partition as stored: latest values and timers (encoded), ledger, checkpoint."""

    values: dict[str, tuple[Any, str]] = field(default_factory=dict)
    """Key → (encoded value, id of that version)."""
    timers: dict[str, tuple[Any, str]] = field(default_factory=dict)
    handled: list[str] = field(default_factory=list)
    markers: list[tuple[str, int]] = field(default_factory=list)
    """(marker id, events handled) oldest first: what compaction may forget."""
    checkpoint: dict[str, int] = field(default_factory=dict)
    next_seq: int = 0
    outbox: list[Outgoing] = field(default_factory=list)
    """The last batch's records: maybe unpublished when its owner stopped."""
    garbage: list[str] = field(default_factory=list)
    """Superseded versions, and versions of batches cut short."""
    tombstones: list[str] = field(default_factory=list)
    """Versions recording a deletion: forgotten after the garbage they hide."""


def _outgoing_doc(out: Outgoing) -> dict[str, Any]:
    return {
        "topic": out.topic,
        "key": out.key,
        "value": out.value,
        "headers": [{"k": k, "v": v} for k, v in out.headers],
    }


def _outgoing(doc: dict[str, Any]) -> Outgoing:
    headers = tuple((h["k"], h["v"]) for h in doc.get("headers", []))
    return Outgoing(doc["topic"], doc.get("key"), doc["value"], headers)


def batch_docs(changes: Changes, *, owner: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The versions and the marker one batch of one partition stores."""
    common = {"partition": changes.partition, "seq": changes.seq, "owner": owner}
    versions = [
        {"_id": changes.version_id(ns, key), **common, "ns": ns, "key": key, "value": value}
        for ns, items in ((VALUE, changes.values), (TIMER, changes.timers))
        for key, value in items.items()
    ]
    marker = {
        "_id": changes.marker_id,
        **common,
        "ns": BATCH,
        "checkpoint": [{"topic": t, "offset": o} for t, o in changes.checkpoint.items()],
        "handled": changes.handled,
        "outbox": [_outgoing_doc(out) for out in changes.outbox],
    }
    return versions, marker


def restored(docs: Sequence[dict[str, Any]]) -> Restored:
    """The latest state among a partition's stored documents."""
    result = Restored()
    markers = sorted((d for d in docs if d["ns"] == BATCH), key=lambda d: d["seq"])
    complete = {m["seq"] for m in markers}
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in docs:
        result.next_seq = max(result.next_seq, doc["seq"] + 1)
        if doc["ns"] == BATCH:
            continue
        if doc["seq"] not in complete:
            result.garbage.append(doc["_id"])
            continue
        slot = (doc["ns"], doc["key"])
        kept = latest.get(slot)
        if kept is None or kept["seq"] < doc["seq"]:
            if kept is not None:
                result.garbage.append(kept["_id"])
            latest[slot] = doc
        else:
            result.garbage.append(doc["_id"])
    for (ns, key), doc in latest.items():
        if doc["value"] is None:
            result.tombstones.append(doc["_id"])
            continue
        target = result.values if ns == VALUE else result.timers
        target[key] = (doc["value"], doc["_id"])
    for marker in markers:
        result.handled.extend(marker["handled"])
        result.markers.append((marker["_id"], len(marker["handled"])))
    if markers:
        last = markers[-1]
        result.checkpoint = {c["topic"]: c["offset"] for c in last["checkpoint"]}
        result.outbox = [_outgoing(doc) for doc in last["outbox"]]
    return result


class ChangeStore:
    """The `<name>_changes` collection of one runtime; counts its database round trips."""

    def __init__(self, db: AsyncDatabase, name: str) -> None:
        self.collection = db[f"{name}_changes"]
        self.round_trips = 0

    async def prepare(self) -> None:
        """The index restore reads a partition by."""
        await self.collection.create_index("partition")

    async def persist(self, batch: Sequence[Changes], *, owner: str) -> None:
        """Store a poll's changes: one ordered insert, every partition's marker last.

        A retry after a partial write skips what is already stored, unless another owner
        stored it (`Fenced`).
        """
        parts = [batch_docs(changes, owner=owner) for changes in batch]
        docs = [doc for versions, _ in parts for doc in versions] + [m for _, m in parts]
        while docs:
            self.round_trips += 1
            try:
                await self.collection.insert_many(docs, ordered=True)
                return
            except BulkWriteError as e:
                errors = e.details.get("writeErrors", [])
                if not errors or errors[0].get("code") != DUPLICATE_KEY:
                    raise
                index = errors[0]["index"]
                await self._check_owner(docs[index]["_id"], owner)
                docs = docs[index + 1 :]

    async def _check_owner(self, doc_id: str, owner: str) -> None:
        self.round_trips += 1
        stored = await self.collection.find_one({"_id": doc_id}, {"owner": 1})
        if stored is not None and stored.get("owner") != owner:
            raise Fenced(doc_id)

    async def restore(self, partition: int) -> Restored:
        """The partition's latest stored state."""
        self.round_trips += 1
        return restored(await self.collection.find({"partition": partition}).to_list(None))

    async def load(self, version_id: str) -> Any:
        """One stored version's encoded value (an evicted key coming back), or None."""
        self.round_trips += 1
        doc = await self.collection.find_one({"_id": version_id}, {"value": 1})
        return None if doc is None else doc["value"]

    async def forget(self, version_ids: Sequence[str], *, chunk: int = 1_000) -> None:
        """Delete superseded versions and old markers, in order, `chunk` ids per request.

        On FerretDB an `$in` scans the collection, but one scan per thousand ids beats a
        thousand `delete_one`s at 2-10 ms each; on MongoDB it is an index lookup. A
        deletion's own version comes after the versions it hides, in a later chunk.
        """
        for start in range(0, len(version_ids), chunk):
            self.round_trips += 1
            ids = list(version_ids[start : start + chunk])
            await self.collection.delete_many({"_id": {"$in": ids}})
