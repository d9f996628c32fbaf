"""A partition's state in memory and the copy-on-write views rules read and write.

`PartitionState` owns one partition's values (key → typed value), its timers and the ids
of the events it handled recently. Rules never touch it: each event runs on a `View`
layered over the batch's `View`, itself over the partition; an event whose rule fails is
dropped with its view, a successful one folds its writes into the batch; the batch's
writes reach the partition only once they are persisted.
"""

import bisect
import contextlib
import hashlib
import heapq
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from shared.runtime.cold import ColdStore
from shared.runtime.timers import Timer

V = TypeVar("V")


class _Deleted:
    def __repr__(self) -> str:
        return "DELETED"


DELETED: Any = _Deleted()
"""What a view holds for a key (or timer) deleted in it."""


@dataclass
class PartitionState(Generic[V]):
    """One partition's values, timers, recent event ids and where its versions are stored."""

    partition: int
    values: OrderedDict[str, V] = field(default_factory=OrderedDict)
    timers: dict[str, Timer] = field(default_factory=dict)
    seen: "Ledger" = field(init=False)
    """The ids of the events handled recently (the idempotency ledger)."""
    left: "KeyFilter" = field(default_factory=lambda: KeyFilter())
    """The keys that left memory (a Bloom filter: a key never evicted costs no lookup)."""
    checkpoint: dict[str, int] = field(default_factory=dict)
    """Topic → the next offset of this partition not yet in the state."""
    next_seq: int = 0
    ledger_size: int = 100_000
    gen: int = 0
    """The storage generation this partition's batches are written in."""
    gen_docs: int = 0
    """Documents stored in that generation: its current part is `gen_docs // PART_DOCS`."""
    gens: dict[int, int] = field(default_factory=dict)
    """Generation → highest part, stored for this partition (a snapshot drops the older)."""
    since_snapshot: int = 0
    """Versions stored since the last snapshot (keys, timers, batches): what compaction
    would reclaim."""
    snapshot_keys: int = 0
    """Keys in the last snapshot: the next one waits until as many documents are stored."""
    horizon: datetime | None = None
    """Every timer due by then is in `timers`; later ones are in storage only (None: all
    are in memory)."""
    scanned: tuple[str, ...] = ()
    """Key prefixes whose keys rules list in order (`View.scan`): they never leave memory."""
    index: dict[str, list[str]] = field(init=False)
    """Prefix → its keys in memory, sorted."""
    keep_recent_s: float = 0.0
    """A key used within this many seconds stays in memory even past the cap (0: the cap
    alone decides): rules that touch more keys than the cap holds would otherwise read
    back, batch after batch, what the batch before let go."""
    recent: set[str] = field(default_factory=set)
    """Keys used since `recent_since` (kept only when `keep_recent_s` is set)."""
    earlier: set[str] = field(default_factory=set)
    """Keys used in the span before that one."""
    recent_since: float = float("-inf")
    cold: ColdStore = field(default_factory=ColdStore.in_memory)
    """Where values that leave memory go and are read back from at once: the runtime gives
    each partition a file on local disk (`SpillDirectory`); by default, SQLite in memory."""

    def __post_init__(self) -> None:
        self.index = {prefix: [] for prefix in self.scanned}
        self.seen = Ledger(self.ledger_size)

    def beyond(self, timer: Timer) -> bool:
        """True for a timer due after the horizon: storage keeps it, memory does not."""
        return self.horizon is not None and timer.due_at > self.horizon

    def pinned(self, key: str) -> bool:
        """True for keys a scan lists: they stay in memory."""
        return bool(self.scanned) and key.startswith(self.scanned)

    def _indexed(self, key: str, present: bool) -> None:
        for prefix, keys in self.index.items():
            if key.startswith(prefix):
                at = bisect.bisect_left(keys, key)
                listed = at < len(keys) and keys[at] == key
                if present and not listed:
                    keys.insert(at, key)
                elif listed and not present:
                    del keys[at]

    def needs_snapshot(self, *, min_docs: int, max_docs: int) -> bool:
        """True when compaction would reclaim enough (as many documents as keys, at least
        `min_docs`, at most `max_docs`), or when older generations are left (a compaction
        cut short)."""
        due = max(min_docs, min(self.snapshot_keys, max_docs), 1)
        return self.since_snapshot >= due or len(self.gens) > 1

    def lookup(self, key: str) -> V | None:
        """The key's value (None when absent), brought back from the cold store when it
        left memory."""
        value = self.values.get(key)
        if value is not None:
            self.values.move_to_end(key)
            if self.keep_recent_s:
                self.recent.add(key)
            return value
        if key not in self.left:
            return None
        value = self.cold.take(key)
        if value is not None:
            self.values[key] = value
            if self.keep_recent_s:
                self.recent.add(key)
        return value

    def peek(self, key: str) -> V | None:
        """The key's value, read from the cold store without bringing it back into memory
        (a read model's look, not a rule's)."""
        value = self.values.get(key)
        if value is None and key in self.left:
            return self.cold.get(key)
        return value

    def _forget_cold(self, key: str) -> None:
        """A key gets a value in memory or is deleted: an older one in the cold store goes."""
        if key not in self.values and key in self.left:
            self.cold.discard(key)

    def handled(self, event_id: str) -> bool:
        """True when the event was handled here recently."""
        return event_id in self.seen

    def remember(self, event_ids: Iterable[str]) -> None:
        """Add handled event ids to the ledger, forgetting the oldest past its size."""
        self.seen.add(event_ids)

    def put(self, key: str, value: V) -> None:
        """Keep a value a stored batch wrote (`DELETED`: the batch deleted it)."""
        if self.scanned:
            self._indexed(key, value is not DELETED)
        self._forget_cold(key)
        if value is DELETED:
            self.values.pop(key, None)
            return
        self.values[key] = value
        self.values.move_to_end(key)
        if self.keep_recent_s:
            self.recent.add(key)

    def _age(self, now: float) -> None:
        """Begin a new span of use once the current one is `keep_recent_s` old: every key
        used in the last `keep_recent_s` seconds is then in `recent` or `earlier`."""
        if now - self.recent_since >= self.keep_recent_s:
            self.earlier, self.recent = self.recent, set()
            self.recent_since = now

    def evict(self, *, keep: int, idle: Callable[[V], bool], now: float | None = None) -> list[str]:
        """Let the least recently used idle values leave memory until `keep` remain; none
        used within `keep_recent_s` of `now` (a monotonic time) leaves."""
        if now is not None and self.keep_recent_s:
            self._age(now)
        excess = len(self.values) - keep
        gone: list[str] = []
        if excess <= 0:
            return gone
        for key, value in self.values.items():
            if len(gone) >= excess:
                break
            if key in self.recent or key in self.earlier:
                break  # used lately, as is every key after it (the order is of last use)
            if idle(value) and not self.pinned(key):
                gone.append(key)
        try:  # on disk before memory lets go: a write that fails loses nothing
            for key in gone:
                self.cold.put(key, self.values[key])
            self.cold.flush()
        except Exception:
            with contextlib.suppress(Exception):  # what was written: memory keeps these
                for key in gone:
                    self.cold.discard(key)
            raise
        for key in gone:
            del self.values[key]
            self.left.add(key)
        return gone

    def let_go(self, key: str, value: V) -> None:
        """A value restored that does not stay in memory (`evict` for a restore)."""
        self.cold.put(key, value)
        self.left.add(key)


class _DigestTable:
    """Strings kept as 64-bit digests in an open-addressing table (linear probing,
    deletions marked, rebuilt as it fills): the index of `Ledger` and `ChangedKeys`. Two
    strings share a digest about once in 10^14 lookups of a table of 100,000."""

    EMPTY, GONE = 0, 1
    LOAD = 0.6
    """Share of the table's slots in use (held or marked gone) that makes it rebuilt."""
    REBUILT = 0.45
    """Share of the slots in use, at most, once rebuilt."""

    def __init__(self) -> None:
        self.slots = array("Q", bytes(8 * 16))
        self.used = 0
        """Slots holding a digest or marked gone."""

    @staticmethod
    def digest(text: str) -> int:
        """The 64 bits a string is kept as (never 0 or 1: the table's marks)."""
        value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest())
        return value if value > _DigestTable.GONE else value + 2

    def _find(self, digest: int) -> int:
        """The slot holding `digest`, or -1."""
        slots, mask = self.slots, len(self.slots) - 1
        at = digest & mask
        while True:
            held = slots[at]
            if held == digest:
                return at
            if held == self.EMPTY:
                return -1
            at = (at + 1) & mask

    def _free(self, digest: int) -> int:
        """The slot `digest` goes into (not held yet), counted as used."""
        slots, mask = self.slots, len(self.slots) - 1
        at = digest & mask
        while slots[at] > self.GONE:
            at = (at + 1) & mask
        if slots[at] == self.EMPTY:
            self.used += 1
        slots[at] = digest
        return at

    def _full(self) -> bool:
        """True when one more digest would pass `LOAD`."""
        return self.used + 1 > len(self.slots) * self.LOAD

    def _empty_table(self, held: int) -> None:
        """A new empty table with room for `held` digests within `REBUILT`."""
        capacity = 16
        while capacity * self.REBUILT < held + 1:
            capacity *= 2
        self.slots, self.used = array("Q", bytes(8 * capacity)), 0


class Ledger(_DigestTable):
    """Event ids handled recently, the newest `size`, as digests in a ring in arrival order
    and the table. About 28 bytes an id: 100,000 ids take 2.8 MB, where a deque and a set
    of 128-bit digests took 9.4 and the ids as strings 17.6."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.ring = array("Q")
        self.head = 0
        """The oldest id's place in the ring, once it is full."""

    def add(self, event_ids: Iterable[str]) -> None:
        """Remember these ids (one already known keeps its place), forgetting the oldest."""
        if self.size <= 0:
            return
        for event_id in event_ids:
            digest = self.digest(event_id)
            if self._find(digest) >= 0:
                continue
            if len(self.ring) < self.size:
                self.ring.append(digest)
            else:
                oldest = self.ring[self.head]
                self.ring[self.head] = digest
                self.head = (self.head + 1) % self.size
                self.slots[self._find(oldest)] = self.GONE
            if self._full():  # the new id is in the ring: placed with the others
                self._empty_table(len(self.ring))
                for held in self.ring:
                    self._free(held)
            else:
                self._free(digest)

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, str) and self._find(self.digest(event_id)) >= 0

    def __len__(self) -> int:
        return len(self.ring)

    def __iter__(self) -> Iterator[int]:
        """The digests, oldest first."""
        ring, head = self.ring, self.head
        return iter([*ring[head:], *ring[:head]])


class ChangedKeys(_DigestTable):
    """Key → the batch that stored its newest version, or deleted it (-1: the snapshot's):
    a restore's index of the newest version of each key it was offered, in whatever order
    the versions come. As digests with the batch beside them, about 30 bytes a key where
    two dicts of key strings took about 140."""

    def __init__(self) -> None:
        super().__init__()
        self.marks = array("q", bytes(8 * len(self.slots)))
        """Beside each slot: (batch + 1) * 2, plus 1 for a deletion. No slot is ever marked
        gone (a key is never forgotten), so `used` counts the keys held."""

    def set(self, key: str, seq: int, *, gone: bool = False) -> None:
        """`key` was stored (or deleted, `gone`) by batch `seq`."""
        digest = self.digest(key)
        at = self._find(digest)
        if at < 0:
            if self._full():
                self._rebuild(room=1)
            at = self._free(digest)
        self.marks[at] = (seq + 1) * 2 + gone

    def get(self, key: str) -> tuple[int, bool] | None:
        """(batch, deleted) for a changed key, None for the others."""
        at = self._find(self.digest(key))
        if at < 0:
            return None
        mark = self.marks[at]
        return (mark >> 1) - 1, bool(mark & 1)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._find(self.digest(key)) >= 0

    def __len__(self) -> int:
        return self.used

    def _rebuild(self, *, room: int = 0) -> None:
        """The table again, sized for what it holds and `room` more to come."""
        old = [
            (digest, mark)
            for digest, mark in zip(self.slots, self.marks, strict=True)
            if digest > self.GONE
        ]
        self._empty_table(len(old) + room)
        self.marks = array("q", bytes(8 * len(self.slots)))
        for digest, mark in old:
            self.marks[self._free(digest)] = mark


class KeyFilter:
    """A Bloom filter of keys: `key in f` is False for every key never added, True for
    every key added and for about 1 in 2,000 others at a million keys (fixed 1 MiB)."""

    def __init__(self, bits: int = 1 << 23, hashes: int = 7) -> None:
        self.bits = bits
        self.hashes = hashes
        self.array = bytearray(bits // 8)

    def _positions(self, key: str) -> Iterable[int]:
        digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
        h1 = int.from_bytes(digest[:8], "little")
        h2 = int.from_bytes(digest[8:], "little") | 1
        return ((h1 + i * h2) % self.bits for i in range(self.hashes))

    def add(self, key: str) -> None:
        """Remember `key`."""
        for bit in self._positions(key):
            self.array[bit >> 3] |= 1 << (bit & 7)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and all(
            self.array[bit >> 3] & (1 << (bit & 7)) for bit in self._positions(key)
        )


class View(Generic[V]):
    """Copy-on-write access to a partition's values and timers: what a rule sees as `state`."""

    def __init__(self, parent: "View[V] | PartitionState[V]") -> None:
        self.parent = parent
        self.writes: dict[str, Any] = {}
        self.timer_writes: dict[str, Any] = {}
        self.scanned = parent.scanned
        self.listed: set[str] = set()
        """Keys written here that scans list."""

    def get(self, key: str) -> V | None:
        """The key's value, or None."""
        if key in self.writes:
            value = self.writes[key]
            return None if value is DELETED else value
        return self.parent.get(key) if isinstance(self.parent, View) else self.parent.lookup(key)

    def set(self, key: str, value: V) -> None:
        """Give the key a new value (values are immutable: build a new one, never mutate)."""
        self.writes[key] = value
        if self.scanned and key.startswith(self.scanned):
            self.listed.add(key)

    def delete(self, key: str) -> None:
        """Forget the key."""
        self.set(key, DELETED)

    def scan(self, prefix: str) -> Iterator[str]:
        """The keys starting with `prefix` (a prefix the runtime scans), in order: an
        ordered index such as a queue, a key per entry. Read it whole or stop early; write
        while reading and the listing stays as it was when it began."""
        views: list[View[V]] = []
        node: View[V] | PartitionState[V] = self
        while isinstance(node, View):
            views.append(node)
            node = node.parent
        if prefix not in node.index:
            raise KeyError(f"the runtime does not scan the prefix {prefix!r}")
        written: dict[str, bool] = {}
        for view in reversed(views):  # the innermost view's writes win
            for key in view.listed:
                if key.startswith(prefix):
                    written[key] = view.writes[key] is not DELETED
        added = sorted(key for key, present in written.items() if present)
        stored = (key for key in list(node.index[prefix]) if key not in written)
        return heapq.merge(stored, added)

    def timer(self, timer_id: str) -> Timer | None:
        """The pending timer with this id, or None; a timer due beyond the runtime's horizon
        reads as None (cancel one without asking: a cancel of nothing changes nothing)."""
        if timer_id in self.timer_writes:
            timer = self.timer_writes[timer_id]
            return None if timer is DELETED else timer
        if isinstance(self.parent, View):
            return self.parent.timer(timer_id)
        return self.parent.timers.get(timer_id)

    def put_timer(self, timer: Timer) -> None:
        """Schedule (or move) a timer."""
        self.timer_writes[timer.id] = timer

    def drop_timer(self, timer_id: str) -> None:
        """Cancel a timer (nothing happens when it is not pending)."""
        self.timer_writes[timer_id] = DELETED

    def child(self) -> "View[V]":
        """A view over this one whose writes stay apart until `fold`."""
        return View(self)

    def fold(self) -> None:
        """Move this view's writes into its parent view."""
        assert isinstance(self.parent, View), "the batch's view is applied by the runtime"
        self.parent.writes.update(self.writes)
        self.parent.timer_writes.update(self.timer_writes)
        self.parent.listed.update(self.listed)
