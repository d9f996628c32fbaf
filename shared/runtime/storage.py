"""Durable partition state in MongoDB: insert-only batches, compacted by generations.

One collection `<name>_changes` holds, per owned partition:
- per batch that changed something: one document `{_id: <p>/batch/<seq>, partition, gen,
  seq, ns: "batch", checkpoint, batch, sent}`: `batch` is one JSON blob of the changed
  values and timers (None: deleted) and the ids of the events it handled (the idempotency
  ledger), `sent` the records it publishes (the outbox, length-prefixed bytes). A poll
  stores its partitions' documents in one `insert_many`; each batch is whole or absent.
  (Earlier versions stored a document per changed key, `<p>/v/<key>/<seq>`, and the
  ledger and outbox as arrays of the marker; restore and reload still read them.)
  A batch whose values take more than `CHUNK_BYTES` (32 KB) stores them before its
  marker in documents `{_id: <p>/batch/<seq>/<n>, ns: "bv", items}`, spread by
  `bucket_of(key, chunks)`, and the marker says `chunks`: documents stay small (a metrics
  batch took up to 1.2 MB), which a read by `_id` once needed and replies still like.
- per generation `g` ≥ 1, a snapshot: the live values and timers and the ledger of every
  batch before `next_seq` (`{_id: <p>/g<g>/...}`), then its own marker `{_id: <p>/g<g>}`,
  last. A generation counts only when its marker is stored. Values are spread over the
  marker's `buckets` documents by `bucket_of(key)`, so the next snapshot merges each
  document with the changes of its keys alone; the first snapshot takes
  `snapshot_buckets(keys)` (more when their bytes pass `CHUNK_BYTES` a document), later
  ones double it as keys and bytes grow, so each is written streaming through the
  previous one's documents (an old bucket splits into new ones and nothing else).
Every document carries the generation it was written in, and a part of it (the unit one
`delete_many` drops, about `PART_DOCS` documents). Restore reads the partition by
equality on `partition` and takes the latest complete snapshot plus the complete batches
after it. Compaction writes a new snapshot (insert-only) and then drops each older
generation part by part with `delete_many({"partition": p, "gen": g, "part": n, "seq":
{"$lt": next_seq}})`: equalities FerretDB pushes down (an `$in` of ids scans the whole
collection per request), the `seq` bound checked on what they matched.
"""

import asyncio
import struct
import tempfile
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.runtime.context import Outgoing

VALUE, TIMER, BATCH = "v", "t", "batch"
BATCH_VALUES = "bv"
CHUNK_BYTES = 32 * 1024
"""A batch whose values take more than this is stored with them spread by key over
documents of about this size (`batch_docs`), not in one of up to 1.2 MB (metrics'): made
for reading back one key from storage, which the cold store replaced (docs/developing.md);
FerretDB fills a restore's reply by count, so small documents keep replies small."""
SNAP_VALUE, SNAP_TIMER, SNAP_LEDGER, GEN = "sv", "st", "sl", "gen"
DUPLICATE_KEY = 11000
LEDGER_CHUNK = 5_000
"""Handled event ids per ledger document of a snapshot."""
SNAP_CHUNK = 200
"""Values (or timers) per snapshot document, as one JSON blob: FerretDB decodes every field
it reads (100k keys as fields: 4.6 s), a blob is one opaque field."""
RESTORE_BATCH = 8
"""Documents per reply when a partition is read whole: a batch's document can weigh
megabytes (metrics: 1.2 MB seen), and FerretDB fills a reply by count, not size — 101 of
them made an 83 MB reply that the driver refuses (its limit is 48 MB)."""
PART_DOCS = 20_000
"""Documents per part of a generation, about: FerretDB deletes the documents a filter
matches in one SQL statement with a parameter each, and PostgreSQL allows 65,535."""


class Fenced(Exception):
    """Another instance stored this batch's sequence number: the partition is not ours."""

    def __init__(self, doc_id: str, partition: int) -> None:
        super().__init__(doc_id)
        self.partition = partition


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
    gen: int = 0
    part: int = 0
    docs: int = 1
    """Documents it was stored in (set by `ChangeStore.persist`)."""

    @property
    def marker_id(self) -> str:
        """The stored id of this batch's marker."""
        return batch_marker_id(self.partition, self.seq)


@dataclass
class Restored:
    """A partition as stored: latest values and timers (encoded), ledger, checkpoint."""

    values: dict[str, tuple[Any, int | None]] = field(default_factory=dict)
    """Key → (encoded value, the batch that stored it; None: the snapshot holds it)."""
    deleted: dict[str, int] = field(default_factory=dict)
    """Key → the batch after the snapshot that deleted it."""
    base: tuple[int, int] | None = None
    """The snapshot restored from: (generation, buckets its values are spread over)."""
    timers: dict[str, Any] = field(default_factory=dict)
    handled: list[str] = field(default_factory=list)
    checkpoint: dict[str, int] = field(default_factory=dict)
    next_seq: int = 0
    outbox: list[Outgoing] = field(default_factory=list)
    """The last batch's records: maybe unpublished when its owner stopped."""
    gen: int = 0
    """The generation new batches are written in: the highest one stored."""
    gen_docs: int = 0
    """Documents stored in that generation (where its next part begins)."""
    gens: dict[int, int] = field(default_factory=dict)
    """Generation → its highest part, for every generation stored: what a snapshot drops."""
    base_keys: int = 0
    """Keys in the snapshot restored from."""
    since_snapshot: int = 0
    """Versions (of keys, of timers, and batches) stored after that snapshot."""


def _outgoing(doc: dict[str, Any]) -> Outgoing:
    headers = tuple((h["k"], h["v"]) for h in doc.get("headers", []))
    return Outgoing(doc["topic"], doc.get("key"), doc["value"], headers)


def _checkpoint_doc(checkpoint: dict[str, int]) -> list[dict[str, Any]]:
    return [{"topic": t, "offset": o} for t, o in checkpoint.items()]


def batch_marker_id(partition: int, seq: int) -> str:
    """The stored id of the marker of batch `seq` of `partition`."""
    return f"{partition}/{BATCH}/{seq}"


def batch_docs(changes: Changes, *, owner: str) -> list[dict[str, Any]]:
    """The documents a batch of one partition stores, its marker last: its changes and
    ledger as one JSON blob, its outbox as framed bytes (FerretDB stores a document of a
    few opaque fields ~12x faster than a document per changed key: docs/developing.md).
    Values taking more than `CHUNK_BYTES` go before it, spread over `chunks` documents
    (a power of two) by `bucket_of(key)`; the marker says how many."""
    encoded = {key: orjson.dumps(value) for key, value in changes.values.items()}
    size = sum(len(key) + len(value) for key, value in encoded.items())
    chunks = 1
    while size > chunks * CHUNK_BYTES:
        chunks *= 2
    common = {
        "partition": changes.partition,
        "seq": changes.seq,
        "gen": changes.gen,
        "part": changes.part,
        "owner": owner,
    }
    docs: list[dict[str, Any]] = []
    inline: dict[str, Any] = {}
    if chunks == 1:
        inline = {key: orjson.Fragment(value) for key, value in encoded.items()}
    else:
        groups: list[dict[str, Any]] = [{} for _ in range(chunks)]
        for key, value in encoded.items():
            groups[bucket_of(key, chunks)][key] = orjson.Fragment(value)
        docs = [
            {"_id": f"{changes.marker_id}/{n}", **common, "ns": BATCH_VALUES}
            | {"items": orjson.dumps(g)}
            for n, g in enumerate(groups)
            if g
        ]
    body = {"values": inline, "timers": changes.timers, "handled": changes.handled}
    marker = {
        "_id": changes.marker_id,
        **common,
        "ns": BATCH,
        "checkpoint": _checkpoint_doc(changes.checkpoint),
        "batch": orjson.dumps(body),
        "sent": pack_outbox(changes.outbox),
    }
    if chunks > 1:
        marker["chunks"] = chunks
    return [*docs, marker]


_NONE = 0xFFFFFFFF


def pack_outbox(outbox: Sequence[Outgoing]) -> bytes:
    """Records to publish as bytes: topic, key, value and headers, each length-prefixed
    (values are bytes as received: a dead letter's may be anything)."""
    parts: list[bytes] = []
    for out in outbox:
        for item in (out.topic.encode(), out.key, out.value, orjson.dumps(out.headers)):
            if item is None:
                parts.append(_NONE.to_bytes(4, "big"))
            else:
                parts += (len(item).to_bytes(4, "big"), bytes(item))
    return b"".join(parts)


def unpack_outbox(data: bytes) -> list[Outgoing]:
    """The records `pack_outbox` packed."""
    items: list[bytes | None] = []
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
        if size == _NONE:
            items.append(None)
            continue
        items.append(bytes(data[pos : pos + size]))
        pos += size
    records = []
    for n in range(0, len(items), 4):
        topic, key, value, headers = items[n : n + 4]
        pairs = tuple((k, v) for k, v in orjson.loads(headers or b"[]"))
        records.append(Outgoing((topic or b"").decode(), key, value or b"", pairs))
    return records


def _outbox_of(doc: dict[str, Any]) -> list[Outgoing]:
    if "sent" in doc:
        return unpack_outbox(doc["sent"])
    return [_outgoing(out) for out in doc.get("outbox", [])]  # stored before the framing


def snapshot_buckets(keys: int) -> int:
    """How many documents a snapshot spreads `keys` values over (about `SNAP_CHUNK` each;
    `ChangeStore.snapshot` takes more when their bytes pass `CHUNK_BYTES` a document)."""
    return max(1, -(-keys // SNAP_CHUNK))


def bucket_of(key: str, buckets: int) -> int:
    """The snapshot document a key's value is in: the same in every process."""
    return zlib.crc32(key.encode()) % buckets


def _bucketed(
    items: dict[str, Any], *, prefix: str, common: dict[str, Any]
) -> list[dict[str, Any]]:
    buckets = snapshot_buckets(len(items))
    groups: list[dict[str, Any]] = [{} for _ in range(buckets)]
    for key, value in items.items():
        groups[bucket_of(key, buckets)][key] = value
    return [
        {"_id": f"{prefix}/{SNAP_VALUE}/{n}", **common, "ns": SNAP_VALUE, "items": orjson.dumps(g)}
        for n, g in enumerate(groups)
        if g
    ]


def _packed(
    items: dict[str, Any], *, ns: str, prefix: str, common: dict[str, Any]
) -> list[dict[str, Any]]:
    pairs = list(items.items())
    return [
        {
            "_id": f"{prefix}/{ns}/{n}",
            **common,
            "ns": ns,
            "items": orjson.dumps(dict(pairs[start : start + SNAP_CHUNK])),
        }
        for n, start in enumerate(range(0, len(pairs), SNAP_CHUNK))
    ]


def snapshot_docs(
    partition: int, state: Restored, *, gen: int, ledger_size: int, owner: str
) -> list[dict[str, Any]]:
    """A generation holding `state` (every batch before `state.next_seq`), its marker last."""
    common = {"partition": partition, "gen": gen, "seq": state.next_seq - 1, "owner": owner}
    prefix = f"{partition}/g{gen}"
    values = {key: value for key, (value, _) in state.values.items()}
    docs = _bucketed(values, prefix=prefix, common=common)
    docs += _packed(state.timers, ns=SNAP_TIMER, prefix=prefix, common=common)
    ledger = state.handled[-ledger_size:] if ledger_size else []
    for n, start in enumerate(range(0, len(ledger), LEDGER_CHUNK)):
        chunk = ledger[start : start + LEDGER_CHUNK]
        docs.append({"_id": f"{prefix}/{SNAP_LEDGER}/{n}", **common, "ns": SNAP_LEDGER, "n": n})
        docs[-1]["handled"] = orjson.dumps(chunk)
    docs.append(
        {
            "_id": prefix,
            **common,
            "ns": GEN,
            "parts": len(docs) // PART_DOCS + 1,
            "next_seq": state.next_seq,
            "keys": len(state.values),
            "buckets": snapshot_buckets(len(state.values)),
            "checkpoint": _checkpoint_doc(state.checkpoint),
            "sent": pack_outbox(state.outbox),
        }
    )
    for n, doc in enumerate(docs):
        doc["part"] = n // PART_DOCS
    return docs


def restored(docs: Sequence[dict[str, Any]], *, upto: int | None = None) -> Restored:
    """The latest state among a partition's stored documents (of batches before `upto`)."""
    if upto is not None:
        docs = [d for d in docs if d["seq"] < upto]
    result = Restored()
    bases = [d for d in docs if d["ns"] == GEN]
    base = max(bases, key=lambda d: d["gen"], default=None)
    start = 0 if base is None else base["next_seq"]
    if base is not None:
        _restore_snapshot(result, base, [d for d in docs if d.get("gen") == base["gen"]])
    markers = sorted(
        (d for d in docs if d["ns"] == BATCH and d["seq"] >= start), key=lambda d: d["seq"]
    )
    complete = {m["seq"] for m in markers}
    changed = [  # (seq, ns, key, value), from documents per key (stored before the blobs)
        (d["seq"], d["ns"], d["key"], d["value"])
        for d in docs
        if d["ns"] in (VALUE, TIMER) and d["seq"] in complete
    ]
    versions = 0
    for marker in markers:
        if "batch" in marker:
            body = orjson.loads(marker["batch"])
            seq = marker["seq"]
            changed += [(seq, VALUE, key, value) for key, value in body["values"].items()]
            changed += [(seq, TIMER, key, value) for key, value in body["timers"].items()]
            versions += len(body["values"]) + len(body["timers"])
            result.handled.extend(body["handled"])
        else:
            result.handled.extend(marker["handled"])
    for doc in docs:
        if doc["ns"] == BATCH_VALUES and doc["seq"] in complete:
            items = orjson.loads(doc["items"])
            changed += [(doc["seq"], VALUE, key, value) for key, value in items.items()]
            versions += len(items)
    for seq, ns, key, value in sorted(changed, key=lambda change: change[0]):
        if ns == TIMER:
            if value is None:
                result.timers.pop(key, None)
            else:
                result.timers[key] = value
        elif value is None:
            result.values.pop(key, None)
            result.deleted[key] = seq
        else:
            result.values[key] = (value, seq)
            result.deleted.pop(key, None)
    last = markers[-1] if markers else base
    if last is not None:
        result.checkpoint = {c["topic"]: c["offset"] for c in last["checkpoint"]}
        result.outbox = _outbox_of(last)
    _count_generations(result, docs, start)
    result.since_snapshot = versions + sum(
        1 for d in docs if d["ns"] in (VALUE, TIMER, BATCH) and d["seq"] >= start
    )
    return result


def _within(timer: dict[str, Any], horizon: datetime | None) -> bool:
    """True when a stored timer is due by `horizon` (None: no horizon)."""
    return horizon is None or datetime.fromisoformat(timer["due_at"]) <= horizon


def _ignore(key: str, value: Any, seq: int) -> None:
    """What reading only the timers does with a batch's values."""


def _place(doc: dict[str, Any]) -> dict[str, Any]:
    """Where a document is: what `_count_generations` reads of it."""
    return {
        "gen": doc.get("gen", 0),
        "part": doc.get("part", 0),
        "seq": doc["seq"],
        "ns": doc["ns"],
    }


def _count_generations(result: Restored, docs: Sequence[dict[str, Any]], start: int) -> None:
    """Generations stored and their parts, where new batches go, the next batch number."""
    for doc in docs:
        gen = doc.get("gen", 0)
        result.gens[gen] = max(result.gens.get(gen, 0), doc.get("part", 0))
    result.gen = max(result.gens, default=0)
    result.gen_docs = sum(1 for d in docs if d.get("gen", 0) == result.gen)
    result.next_seq = max([start, *(d["seq"] + 1 for d in docs if d["ns"] != GEN)])


def _restore_snapshot(result: Restored, base: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    result.base_keys = base["keys"]
    if "buckets" in base:
        result.base = (base["gen"], base["buckets"])
    ledger: list[tuple[int, list[str]]] = []
    for doc in docs:
        if doc["ns"] == SNAP_VALUE:
            items = orjson.loads(doc["items"])
            result.values.update((key, (value, None)) for key, value in items.items())
        elif doc["ns"] == SNAP_TIMER:
            result.timers.update(orjson.loads(doc["items"]))
        elif doc["ns"] == SNAP_LEDGER:
            ledger.append((doc["n"], orjson.loads(doc["handled"])))
    for _, handled in sorted(ledger, key=lambda chunk: chunk[0]):
        result.handled.extend(handled)


class Sink(Protocol):
    """Takes a partition's values as a streaming restore reads them (newest versions first:
    the batches after the snapshot, then the snapshot's values not changed since)."""

    def offer(self, key: str, encoded: Any, seq: int | None) -> None:
        """`key`'s stored value (None: deleted) as of batch `seq` (None: the snapshot)."""


@dataclass
class _Tail:
    """What a partition's batches after its snapshot hold besides their values."""

    timers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    """Timer id → (the batch that last stored it, its encoded timer or None)."""
    ledger: list[tuple[int, list[str]]] = field(default_factory=list)
    last: dict[str, Any] | None = None
    """The newest batch's number, checkpoint and outbox."""
    versions: int = 0
    places: list[dict[str, Any]] = field(default_factory=list)
    """The place (generation, part, batch) of every batch document read."""

    def handled(self) -> list[str]:
        """The event ids the batches handled, oldest batch first."""
        return [i for _, ids in sorted(self.ledger, key=lambda batch: batch[0]) for i in ids]


@dataclass
class Snapshot:
    """A snapshot written: its keys, the buckets they are spread over, its last part."""

    keys: int
    buckets: int
    parts: int


SPILL_FLUSH = 8 * 1024
"""Bytes an old bucket's changes gather in memory before they go to its file."""
_FRAME = struct.Struct("<IqI")  # key length, batch, value length (_DELETED_LEN: deleted)
_DELETED_LEN = 0xFFFFFFFF


class _Spill:
    """The values a partition's batches changed since its last snapshot, spilled to a local
    file per bucket of that snapshot: a compaction holds one bucket's changes at a time,
    not all of them (≈ 0.8 KB per changed key: a partition of 120,000 keys that reached its
    snapshot trigger held 172 MiB at the peak). A context manager: the files go at exit."""

    def __init__(self, old_buckets: int) -> None:
        self.old_buckets = old_buckets
        self.buffers: dict[int, bytearray] = {}
        self.spilled: set[int] = set()
        self.dir = tempfile.TemporaryDirectory(prefix="lexcare-compact-")

    def __enter__(self) -> "_Spill":
        return self

    def __exit__(self, *exc: object) -> None:
        self.dir.cleanup()

    def offer(self, key: str, value: Any, seq: int) -> None:
        """Queue `key`'s value (None: deleted) as stored by batch `seq`."""
        bucket = bucket_of(key, self.old_buckets)
        encoded = key.encode()
        body = b"" if value is None else orjson.dumps(value)
        buffer = self.buffers.setdefault(bucket, bytearray())
        size = _DELETED_LEN if value is None else len(body)
        buffer += _FRAME.pack(len(encoded), seq, size) + encoded + body
        self.spilled.add(bucket)
        if len(buffer) >= SPILL_FLUSH:
            self._flush(bucket)

    def _flush(self, bucket: int) -> None:
        buffer = self.buffers.pop(bucket, None)
        if buffer:
            with open(f"{self.dir.name}/{bucket}", "ab") as file:
                file.write(buffer)

    def changes(self, bucket: int) -> dict[str, bytes | None]:
        """The newest version of each key of old bucket `bucket` (JSON; None: deleted)."""
        self._flush(bucket)
        newest: dict[str, tuple[int, bytes | None]] = {}
        try:
            file = open(f"{self.dir.name}/{bucket}", "rb")  # noqa: SIM115 (read frame by frame)
        except FileNotFoundError:
            return {}
        with file:  # read a frame at a time: the file may hold many versions of a key
            while header := file.read(_FRAME.size):
                length, seq, size = _FRAME.unpack(header)
                key = file.read(length).decode()
                value = None if size == _DELETED_LEN else file.read(size)
                if key not in newest or newest[key][0] < seq:  # batches come in any order
                    newest[key] = (seq, value)
        return {key: value for key, (_, value) in newest.items()}

    def take(self, bucket: int) -> dict[str, bytes | None]:
        """`changes(bucket)`, once: the bucket is merged."""
        if bucket not in self.spilled:
            return {}
        self.spilled.discard(bucket)
        return self.changes(bucket)

    def left(self) -> list[int]:
        """The buckets with changes not taken yet, in order."""
        return sorted(self.spilled)

    async def live(self) -> tuple[int, int]:
        """Changed keys whose newest version is a value, and their bytes (one bucket in
        memory at a time; the loop runs the service's batches between buckets)."""
        count = size = 0
        for bucket in sorted(self.spilled):
            for key, value in self.changes(bucket).items():
                if value is not None:
                    count += 1
                    size += len(key) + len(value)
            await asyncio.sleep(0)
        return count, size


async def _rewrite(
    out: "_GenerationWriter",
    items: dict[str, Any],
    changes: dict[str, bytes | None],
    buckets: int,
) -> None:
    """Write an old bucket's values, with `changes` applied, into the new buckets it splits
    into (`buckets`, a multiple of the old count)."""
    split: dict[int, dict[str, Any]] = {}
    for key, value in items.items():
        split.setdefault(bucket_of(key, buckets), {})[key] = value
    items.clear()
    for key, encoded in changes.items():
        group = split.setdefault(bucket_of(key, buckets), {})
        if encoded is None:
            group.pop(key, None)
        else:
            group[key] = orjson.Fragment(encoded)
    for n in sorted(split):
        group = split.pop(n)  # each group freed once written
        if group:
            items_bytes = orjson.dumps(group)
            await out.add(SNAP_VALUE, n, items=items_bytes)
            out.keys += len(group)
            out.bytes += len(items_bytes)


class _GenerationWriter:
    """Writes a generation's documents a few at a time, numbering their parts, and its
    marker last."""

    GROUP = 16

    def __init__(self, store: "ChangeStore", *, prefix: str, common: dict[str, Any]) -> None:
        self.store, self.prefix, self.common = store, prefix, common
        self.docs: list[dict[str, Any]] = []
        self.written = 0
        self.keys = 0
        self.bytes = 0
        """Bytes of the values written: the next snapshot's buckets follow them."""

    async def add(self, ns: str, number: int, **fields: Any) -> None:
        """Queue one document (`<prefix>/<ns>/<number>`), writing a full group."""
        part = (self.written + len(self.docs)) // PART_DOCS
        doc = {"_id": f"{self.prefix}/{ns}/{number}", **self.common, "ns": ns, **fields}
        self.docs.append({**doc, "part": part})
        if len(self.docs) >= self.GROUP:
            await self._flush()

    async def _flush(self) -> None:
        if self.docs:
            self.store.round_trips += 1
            await self.store.collection.insert_many(self.docs, ordered=True)
            self.written += len(self.docs)
            self.docs = []

    async def finish(
        self, *, next_seq: int, buckets: int, checkpoint: list[dict[str, Any]], outbox: list[Any]
    ) -> Snapshot:
        """Write what is queued, then the marker that makes the generation count."""
        await self._flush()
        part = self.written // PART_DOCS
        marker = {
            "_id": self.prefix,
            **self.common,
            "ns": GEN,
            "parts": part + 1,
            "next_seq": next_seq,
            "keys": self.keys,
            "bytes": self.bytes,
            "buckets": buckets,
            "checkpoint": checkpoint,
            "sent": pack_outbox(outbox),
            "part": part,
        }
        self.store.round_trips += 1
        await self.store.collection.insert_one(marker)
        return Snapshot(keys=self.keys, buckets=buckets, parts=part)


class ChangeStore:
    """The `<name>_changes` collection of one runtime; counts its database round trips."""

    def __init__(self, db: AsyncDatabase, name: str) -> None:
        self.collection = db[f"{name}_changes"]
        self.round_trips = 0
        self._no_per_key: set[int] = set()
        """Partitions found to hold no per-key documents: no version writes them any more,
        so they are looked for once (each look is a scan of the collection on FerretDB)."""

    async def prepare(self) -> None:
        """The index restore reads a partition by."""
        await self.collection.create_index("partition")

    async def persist(self, batch: Sequence[Changes], *, owner: str) -> None:
        """Store a poll's changes: one ordered insert, every partition's marker last.

        A retry after a partial write skips what is already stored, unless another owner
        stored it (`Fenced`): the batches before that partition's are stored then, those
        from it on are not.
        """
        docs: list[dict[str, Any]] = []
        for changes in batch:
            stored = batch_docs(changes, owner=owner)
            changes.docs = len(stored)
            docs += stored
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
                await self._check_owner(docs[index]["_id"], owner, docs[index]["partition"])
                docs = docs[index + 1 :]

    async def _check_owner(self, doc_id: str, owner: str, partition: int) -> None:
        self.round_trips += 1
        stored = await self.collection.find_one({"_id": doc_id}, {"owner": 1})
        if stored is not None and stored.get("owner") != owner:
            raise Fenced(doc_id, partition)

    async def handled_in(self, partition: int, seq: int) -> set[str] | None:
        """The event ids batch `seq` of `partition` ran; None when no such batch is stored
        (not yet, or folded into a snapshot since)."""
        self.round_trips += 1
        marker = await self.collection.find_one(
            {"_id": batch_marker_id(partition, seq)}, {"batch": 1}
        )
        if marker is None:
            return None
        return set(orjson.loads(marker["batch"])["handled"])

    async def restore(self, partition: int, *, upto: int | None = None) -> Restored:
        """The partition's latest stored state (of the batches before `upto`)."""
        self.round_trips += 1
        cursor = self.collection.find({"partition": partition}, batch_size=RESTORE_BATCH)
        docs = await cursor.to_list(None)
        return restored(docs, upto=upto)

    async def _base(self, partition: int) -> tuple[dict[str, Any] | None, bool]:
        """The latest snapshot's marker, and whether the partition holds documents of the
        earlier layouts: by equalities only (FerretDB reads every document a filter on
        `partition` alone returns, projection or not: 0.65 s for 154 documents of 20 MB,
        13 ms with `ns` too). Per-key documents are looked for once per partition."""
        self.round_trips += 1
        markers = await self.collection.find({"partition": partition, "ns": GEN}).to_list(None)
        base = max(markers, key=lambda d: d["gen"], default=None)
        per_key = False
        if partition not in self._no_per_key:
            self.round_trips += 2
            for ns in (VALUE, TIMER):
                found = await self.collection.find_one(
                    {"partition": partition, "ns": ns}, {"_id": 1}
                )
                per_key = per_key or found is not None
            if not per_key:
                self._no_per_key.add(partition)
        return base, per_key or bool(base and "buckets" not in base)

    async def _batches(
        self,
        partition: int,
        *,
        start: int,
        upto: int | None,
        offer: Callable[[str, Any, int], None],
    ) -> "_Tail":
        """Read the batches from `start` (before `upto`), a few documents at a time: their
        values handed to `offer` as they come, the rest gathered."""
        tail = _Tail()
        chunked: set[int] = set()
        self.round_trips += 1
        batches = self.collection.find(
            {"partition": partition, "ns": BATCH}, batch_size=RESTORE_BATCH
        )
        async for doc in batches:
            seq = doc["seq"]
            tail.places.append(_place(doc))
            if seq < start or (upto is not None and seq >= upto):
                continue
            body = orjson.loads(doc["batch"])
            for key, value in body["values"].items():
                offer(key, value, seq)
            for timer_id, value in body["timers"].items():
                if timer_id not in tail.timers or tail.timers[timer_id][0] < seq:
                    tail.timers[timer_id] = (seq, value)
            tail.ledger.append((seq, body["handled"]))
            tail.versions += len(body["values"]) + len(body["timers"]) + 1
            if tail.last is None or seq > tail.last["seq"]:
                tail.last = {"seq": seq, "checkpoint": doc["checkpoint"], "outbox": _outbox_of(doc)}
            if doc.get("chunks"):
                chunked.add(seq)
        if chunked:  # values of the batches stored in chunks (a chunk without its marker
            # is of a batch never completed: left out, and dropped with its generation)
            self.round_trips += 1
            found = self.collection.find(
                {"partition": partition, "ns": BATCH_VALUES}, batch_size=RESTORE_BATCH
            )
            async for doc in found:
                tail.places.append(_place(doc))
                if doc["seq"] in chunked:
                    items = orjson.loads(doc["items"])
                    for key, value in items.items():
                        offer(key, value, doc["seq"])
                    tail.versions += len(items)
        return tail

    async def _snapshot_of(
        self,
        partition: int,
        gen: int,
        *,
        kinds: Sequence[str] = (SNAP_VALUE, SNAP_TIMER, SNAP_LEDGER),
    ) -> AsyncIterator[dict[str, Any]]:
        """The documents of snapshot `gen` (values, timers, ledger; not its marker), a few
        at a time. By `ns` too: the batches stored in that generation after the snapshot
        are read apart, and a filter on `partition` and `gen` alone would read them again."""
        for ns in kinds:
            self.round_trips += 1
            docs = self.collection.find(  # a value document holds 200 values: ~100 KB
                {"partition": partition, "gen": gen, "ns": ns}, batch_size=RESTORE_BATCH * 4
            )
            async for doc in docs:
                yield doc

    async def restore_into(
        self, partition: int, sink: Sink, *, horizon: datetime | None = None
    ) -> Restored:
        """The partition's latest stored state, its values handed to `sink` as they are
        read (`Restored.values` stays empty): one document at a time, so what the sink
        keeps bounds memory, not the stored history; timers due after `horizon` are left
        out as they are read. Partitions holding documents of the earlier layouts (a
        document per key, an unbucketed snapshot) are read whole."""
        base, older = await self._base(partition)
        if older:
            whole = await self.restore(partition)
            for key, (encoded, seq) in whole.values.items():
                sink.offer(key, encoded, seq)
            for key, seq in whole.deleted.items():
                sink.offer(key, None, seq)
            whole.values, whole.deleted = {}, {}
            return whole
        result = Restored()
        start = 0 if base is None else base["next_seq"]
        tail = await self._batches(partition, start=start, upto=None, offer=sink.offer)
        timers = tail.timers
        last = tail.last
        snapshot_ledger: list[tuple[int, list[str]]] = []
        places = tail.places
        if base is not None:
            marker = base
            places.append(_place(marker))
            result.base, result.base_keys = (marker["gen"], marker["buckets"]), marker["keys"]
            if last is None:
                last = {"checkpoint": marker["checkpoint"], "outbox": _outbox_of(marker)}
            async for doc in self._snapshot_of(partition, marker["gen"]):
                places.append(_place(doc))
                if doc["ns"] == SNAP_VALUE:
                    for key, value in orjson.loads(doc["items"]).items():
                        sink.offer(key, value, None)
                elif doc["ns"] == SNAP_TIMER:
                    for timer_id, value in orjson.loads(doc["items"]).items():
                        if timer_id not in timers and _within(value, horizon):
                            timers[timer_id] = (-1, value)
                elif doc["ns"] == SNAP_LEDGER:
                    snapshot_ledger.append((doc["n"], orjson.loads(doc["handled"])))
        result.timers = {
            t: value for t, (_, value) in timers.items() if value and _within(value, horizon)
        }
        for _, handled in sorted(snapshot_ledger, key=lambda chunk: chunk[0]):
            result.handled.extend(handled)
        result.handled.extend(tail.handled())
        if last is not None:
            result.checkpoint = {c["topic"]: c["offset"] for c in last["checkpoint"]}
            result.outbox = last["outbox"]
        places += await self._unread_generations(partition, places, base)
        _count_generations(result, places, start)
        result.since_snapshot = tail.versions
        return result

    async def _unread_generations(
        self, partition: int, places: list[dict[str, Any]], base: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """The generations holding only documents a restore does not read: one cut short
        above the latest (a snapshot that never wrote its marker), and those below it a
        crash left while dropping them. Probed by equalities, generation then part, so the
        next snapshot drops them (their documents are not counted: a part of the current
        generation may then hold up to twice `PART_DOCS`, within PostgreSQL's limit)."""
        known = {place["gen"] for place in places}
        found: list[dict[str, Any]] = []

        async def probe(gen: int) -> bool:
            self.round_trips += 1
            doc = await self.collection.find_one({"partition": partition, "gen": gen}, {"part": 1})
            if doc is None:
                return False
            part = doc.get("part", 0)  # the parts left are contiguous: dropped from 0 up
            while True:
                self.round_trips += 1
                at = {"partition": partition, "gen": gen, "part": part + 1}
                if await self.collection.find_one(at, {"_id": 1}) is None:
                    break
                part += 1
            found.append({"gen": gen, "part": part, "seq": -1, "ns": SNAP_VALUE})
            return True

        gen = max(known, default=0) + 1
        while await probe(gen):
            gen += 1
        gen = (base["gen"] if base else 0) - 1
        while gen > 0 and gen not in known and await probe(gen):
            gen -= 1
        return found

    async def timers_between(
        self, partition: int, after: datetime, until: datetime
    ) -> dict[str, Any]:
        """The partition's stored timers (encoded) due after `after` and by `until`: the
        snapshot's, then the batches' after it in order (a later batch moves or cancels)."""
        base, _ = await self._base(partition)
        timers: dict[str, Any] = {}
        if base is not None:
            async for doc in self._snapshot_of(partition, base["gen"], kinds=(SNAP_TIMER,)):
                timers.update(orjson.loads(doc["items"]))
        start = 0 if base is None else base["next_seq"]
        tail = await self._batches(partition, start=start, upto=None, offer=_ignore)
        for timer_id, (_, value) in tail.timers.items():
            timers[timer_id] = value
        return {
            timer_id: value
            for timer_id, value in timers.items()
            if value is not None and after < datetime.fromisoformat(value["due_at"]) <= until
        }

    async def snapshot(
        self, partition: int, *, gen: int, upto: int, ledger_size: int, owner: str
    ) -> "Snapshot":
        """Write generation `gen`: the partition's state after the batches before `upto`.

        Streamed: the values changed since the last snapshot are spilled to local files
        (as JSON bytes, a file per bucket of the last snapshot, `_Spill`); then the last
        snapshot's value documents are read a few at a time, each merged with its bucket's
        changes and written out again. Memory holds one bucket's changes and a few
        documents, neither the partition nor all its changes. The bucket
        count only ever doubles, so an old bucket's keys land in the new buckets it splits
        into and nothing else."""
        base, older = await self._base(partition)
        if older:
            return await self._snapshot_whole(
                partition, gen=gen, upto=upto, ledger_size=ledger_size, owner=owner
            )
        start = 0 if base is None else base["next_seq"]
        marker = base
        old_buckets = marker["buckets"] if marker else 1
        with _Spill(old_buckets) as changed:
            tail = await self._batches(partition, start=start, upto=upto, offer=changed.offer)
            keys, size = await changed.live()
            if marker is not None:
                keys, size = keys + marker["keys"], size + marker.get("bytes", 0)
            needed = max(snapshot_buckets(keys), -(-size // CHUNK_BYTES))
            buckets = old_buckets
            while buckets < needed:
                buckets *= 2
            next_seq = max(upto, start)
            common = {"partition": partition, "gen": gen, "seq": next_seq - 1, "owner": owner}
            out = _GenerationWriter(self, prefix=f"{partition}/g{gen}", common=common)
            timers: dict[str, Any] = {}
            ledger: list[tuple[int, list[str]]] = []
            if marker is not None:
                async for doc in self._snapshot_of(partition, marker["gen"]):
                    if doc["ns"] == SNAP_VALUE:
                        old = int(doc["_id"].rsplit("/", 1)[1])
                        items = orjson.loads(doc["items"])
                        await _rewrite(out, items, changed.take(old), buckets)
                    elif doc["ns"] == SNAP_TIMER:
                        timers.update(orjson.loads(doc["items"]))
                    elif doc["ns"] == SNAP_LEDGER:
                        ledger.append((doc["n"], orjson.loads(doc["handled"])))
            for old in changed.left():  # buckets the last snapshot had no document for
                await _rewrite(out, {}, changed.take(old), buckets)
        for timer_id, (_, value) in tail.timers.items():
            if value is None:
                timers.pop(timer_id, None)
            else:
                timers[timer_id] = value
        pairs = list(timers.items())
        for n, at in enumerate(range(0, len(pairs), SNAP_CHUNK)):
            await out.add(SNAP_TIMER, n, items=orjson.dumps(dict(pairs[at : at + SNAP_CHUNK])))
        handled = [i for _, chunk in sorted(ledger, key=lambda c: c[0]) for i in chunk]
        handled += tail.handled()
        handled = handled[-ledger_size:] if ledger_size else []
        for n, at in enumerate(range(0, len(handled), LEDGER_CHUNK)):
            chunk = handled[at : at + LEDGER_CHUNK]
            await out.add(SNAP_LEDGER, n, n=n, handled=orjson.dumps(chunk))
        last = tail.last or marker or {"checkpoint": [], "outbox": []}
        outbox = last["outbox"] if "outbox" in last else _outbox_of(last)
        return await out.finish(
            next_seq=next_seq, buckets=buckets, checkpoint=last["checkpoint"], outbox=outbox
        )

    async def _snapshot_whole(
        self, partition: int, *, gen: int, upto: int, ledger_size: int, owner: str
    ) -> "Snapshot":
        """`snapshot` for a partition holding documents of the earlier layouts: read whole."""
        state = await self.restore(partition, upto=upto)
        state.next_seq = max(state.next_seq, upto)
        self.round_trips += 1
        docs = snapshot_docs(partition, state, gen=gen, ledger_size=ledger_size, owner=owner)
        await self.collection.insert_many(docs, ordered=True)
        keys = len(state.values)
        return Snapshot(keys=keys, buckets=snapshot_buckets(keys), parts=docs[-1]["part"])

    async def drop_generation(self, partition: int, gen: int, *, parts: int, before: int) -> int:
        """Delete one generation of the partition (parts 0 to `parts`), batches from `before`
        on excepted (a successor's, should this instance have lost the partition); how many.

        FerretDB pushes the equalities down and checks `seq` on what they matched."""
        deleted = 0
        for part in range(parts + 1):
            self.round_trips += 1
            doomed = {"partition": partition, "gen": gen, "part": part, "seq": {"$lt": before}}
            deleted += (await self.collection.delete_many(doomed)).deleted_count
        return deleted
