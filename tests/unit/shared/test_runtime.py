"""The stateful runtime's pure parts: batch planning, dedupe, timer heap, views, restore."""

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
)
from aiokafka.structs import ConsumerRecord, TopicPartition

from shared.runtime import engine, storage
from shared.runtime.context import Outgoing
from shared.runtime.engine import Crashed, Runtime
from shared.runtime.plan import HANDED_HEADER, Misplaced, Plan, Work, plan_batch
from shared.runtime.state import (
    DELETED,
    ChangedKeys,
    KeyFilter,
    Ledger,
    PartitionState,
    View,
)
from shared.runtime.storage import (
    BATCH_VALUES,
    CHUNK_BYTES,
    Changes,
    Restored,
    batch_docs,
    pack_outbox,
    restored,
    snapshot_docs,
    unpack_outbox,
)
from shared.runtime.timers import Timer, TimerHeap
from shared.settings import LexcareSettings
from tests.runtime_harness import NO_DATABASE
from tests.toy_service import ADDED, Added, Tally

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
MODELS = {ADDED: Added}


def record(partition: int, offset: int, body: bytes) -> ConsumerRecord:
    return ConsumerRecord(ADDED, partition, offset, 0, 0, b"k", body, None, 0, len(body), [])


def added(event_id: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id or str(uuid.uuid4()),
            "event_type": ADDED,
            "occurred_at": T0.isoformat(),
            "producer": "test",
            "case_id": "case-1",
        }
    )


def test_a_poll_is_planned_per_partition_in_log_order_with_every_offset_to_commit():
    states = {0: PartitionState(0), 1: PartitionState(1)}
    polled = [record(0, 5, added()), record(1, 3, b"{bad"), record(0, 6, added())]
    plan = plan_batch(polled, models=MODELS, states=states)
    assert [w.record.offset for w in plan.work[0]] == [5, 6]
    assert isinstance(plan.work[1][0].event, ValueError)  # dead-lettered by the runtime
    assert plan.offsets == {TopicPartition(ADDED, 0): 7, TopicPartition(ADDED, 1): 4}


def test_records_already_in_the_state_are_dropped_but_still_committed():
    state = PartitionState(0, checkpoint={ADDED: 10})
    state.remember(["handled-before"])
    twice = str(uuid.uuid4())
    polled = [
        record(0, 9, added()),  # below the persisted checkpoint
        record(0, 10, added(str(uuid.UUID(int=1)))),
        record(0, 11, added(twice)),
        record(0, 12, added(twice)),  # the same event again in the poll
    ]
    state.remember([str(uuid.UUID(int=1))])
    plan = plan_batch(polled, models=MODELS, states={0: state})
    assert [w.record.offset for w in plan.work[0]] == [11]
    assert plan.skipped == 3
    assert plan.offsets == {TopicPartition(ADDED, 0): 13}


def test_the_copy_of_a_hand_off_is_dropped_once_its_batch_is_in_the_state_ledger_or_not():
    state = PartitionState(0, next_seq=8)  # batches 0-7 stored; the ledger remembers none
    polled = [
        handed_copy(0, 0, seq=7),  # run by batch 7: stored before the copy was published
        handed_copy(0, 1, seq=8),  # a batch the state does not hold: it runs
        record(0, 2, added()),  # no mark: the ledger decides
    ]
    plan = plan_batch(polled, models=MODELS, states={0: state})
    assert [w.record.offset for w in plan.work[0]] == [1, 2]
    assert plan.skipped == 1 and plan.offsets == {TopicPartition(ADDED, 0): 3}


def handed_copy(partition: int, offset: int, *, seq: int) -> ConsumerRecord:
    body = added()
    headers = [(HANDED_HEADER, str(seq).encode())]
    return ConsumerRecord(ADDED, partition, offset, 0, 0, b"k", body, None, 0, len(body), headers)


def test_a_keyed_record_on_another_partition_than_its_keys_is_dead_lettered_with_why():
    states = {0: PartitionState(0), 1: PartitionState(1)}
    plan = plan_batch(
        [record(0, 0, added()), record(1, 0, added())],
        models=MODELS,
        states=states,
        owner_of=lambda key: 1,
    )
    [misplaced] = plan.work[0]
    assert isinstance(misplaced.event, Misplaced)
    assert "on partition 0, but its key belongs to partition 1" in str(misplaced.event)
    assert isinstance(plan.work[1][0].event, Added)
    assert plan.offsets == {TopicPartition(ADDED, 0): 1, TopicPartition(ADDED, 1): 1}
    anywhere = plan_batch(
        [record(0, 0, added())],
        models=MODELS,
        states=states,
        owner_of=lambda key: 1,
        stateless={ADDED},
    )
    assert isinstance(anywhere.work[0][0].event, Added)  # a pass-on rule takes it where it is


def test_records_of_a_partition_no_longer_owned_are_neither_run_nor_committed():
    plan = plan_batch([record(2, 0, added())], models=MODELS, states={0: PartitionState(0)})
    assert plan.work == {} and plan.offsets == {}


def test_due_timers_run_after_their_partition_records():
    timer = Timer("t1", T0, "remind")
    plan = plan_batch(
        [record(0, 0, added())], models=MODELS, states={0: PartitionState(0)}, due=[(0, timer)]
    )
    assert [w.timer for w in plan.work[0]] == [None, timer]


def test_a_failed_rule_leaves_nothing_and_a_passed_one_folds_into_the_batch():
    state: PartitionState[int] = PartitionState(0)
    state.put("a", 1)
    batch = View(state)
    failed = batch.child()
    failed.set("a", 99)
    failed.put_timer(Timer("t", T0, "remind"))
    assert failed.get("a") == 99 and batch.get("a") == 1  # dropped with its view
    passed = batch.child()
    passed.set("a", 2)
    passed.delete("b")
    passed.fold()
    assert batch.get("a") == 2 and batch.timer("t") is None
    assert state.lookup("a") == 1  # the partition changes only once persisted


def test_an_evicted_key_leaves_memory_for_the_cold_store_and_comes_back_when_read():
    state: PartitionState[int] = PartitionState(0)
    for key, idle in (("old", 1), ("busy", 0), ("new", 1)):
        state.put(key, idle)
    assert state.evict(keep=2, idle=lambda value: value == 1) == ["old"]
    assert set(state.values) == {"busy", "new"}  # busy is not idle: it stays
    assert len(state.cold) == 1
    assert View(state).get("old") == 1 and "old" in state.values and len(state.cold) == 0
    assert View(state).get("never") is None  # never stored


def test_keys_used_within_the_recent_span_stay_past_the_cap_and_leave_once_it_passes():
    state: PartitionState[int] = PartitionState(0, keep_recent_s=10)
    for key in ("a", "b", "c"):
        state.put(key, 1)
    idle = lambda value: True  # noqa: E731
    assert state.evict(keep=1, idle=idle, now=100.0) == []  # all three used just now
    View(state).get("a")  # read at 105: the most recently used now
    assert state.evict(keep=1, idle=idle, now=105.0) == []
    assert state.evict(keep=1, idle=idle, now=109.0) == []  # b and c: used 9 s ago
    assert state.evict(keep=1, idle=idle, now=111.0) == ["b", "c"]  # 11 s: they leave
    assert list(state.values) == ["a"]
    state.put("d", 1)
    assert state.evict(keep=1, idle=idle, now=116.0) == []  # a: 11 s, within two spans
    assert state.evict(keep=1, idle=idle, now=122.0) == ["a"]  # 17 s: past them


def test_without_a_recent_span_the_cap_alone_decides():
    state: PartitionState[int] = PartitionState(0)
    for key in ("a", "b", "c"):
        state.put(key, 1)
    assert state.evict(keep=1, idle=lambda value: True, now=100.0) == ["a", "b"]
    assert not state.recent and not state.earlier  # nothing tracked when it is off


def test_a_scan_lists_a_prefix_in_key_order_with_the_writes_of_every_view_above():
    state: PartitionState[int] = PartitionState(0, scanned=("q/",))
    for key in ("q/3", "q/1", "other", "q/5"):
        state.put(key, 1)
    state.put("q/5", DELETED)
    batch = View(state)
    batch.set("q/2", 1)
    event = batch.child()
    event.delete("q/1")
    event.set("q/4", 1)
    event.set("q/1x", 1)
    assert list(event.scan("q/")) == ["q/1x", "q/2", "q/3", "q/4"]
    assert list(batch.scan("q/")) == ["q/1", "q/2", "q/3"]  # the event's writes not folded
    listing = event.scan("q/")
    event.delete("q/3")  # written while reading: the listing stays as it began
    assert list(listing) == ["q/1x", "q/2", "q/3", "q/4"]
    event.fold()
    assert list(batch.scan("q/")) == ["q/1x", "q/2", "q/4"]
    with pytest.raises(KeyError, match="other/"):
        batch.scan("other/")


def test_scanned_keys_never_leave_memory_and_the_index_follows_what_is_stored():
    state: PartitionState[int] = PartitionState(0, scanned=("q/",))
    state.put("q/b", 1)
    state.put("old", 1)
    state.put("q/a", 1)
    assert state.evict(keep=0, idle=lambda value: True) == ["old"]
    assert state.index["q/"] == ["q/a", "q/b"]
    state.put("q/a", DELETED)
    state.put("q/c", 1)
    assert list(View(state).scan("q/")) == ["q/b", "q/c"]


def test_the_ledger_holds_exactly_the_newest_ids_through_many_rounds_of_its_table():
    """Thousands of ids through a ledger of 500: its ring wraps and its table is rebuilt
    many times (slots of forgotten ids marked, then cleared); it always holds exactly the
    newest 500, in order."""
    ledger = Ledger(500)
    ids = [f"event-{n}" for n in range(5_000)]
    for at in range(0, len(ids), 37):
        ledger.add(ids[at : at + 37])
        end = min(at + 37, len(ids))
        assert len(ledger) == min(end, 500)
    assert all(e in ledger for e in ids[-500:]) and not any(e in ledger for e in ids[:-500])
    assert list(ledger) == [Ledger.digest(e) for e in ids[-500:]]
    assert len(ledger.slots) <= 2048  # rebuilt for what it holds, not for what it saw


def test_the_ledger_keeps_the_newest_ids_and_forgets_the_oldest():
    ledger = Ledger(3)
    ledger.add(["e1", "e2", "e3"])
    ledger.add(["e1", "e4"])  # e1 known: it keeps its place, the oldest
    assert "e1" not in ledger and all(e in ledger for e in ("e2", "e3", "e4"))
    assert len(ledger) == 3 and "e5" not in ledger and None not in ledger
    assert list(ledger) == [Ledger.digest(e) for e in ("e2", "e3", "e4")]
    none = Ledger(0)  # LEXCARE_RUNTIME_LEDGER_SIZE=0: no ledger
    none.add(["e1"])
    assert "e1" not in none and len(none) == 0


def test_changed_keys_answer_like_a_dict_through_rebuilds():
    """Thousands of keys stored, deleted and stored again over many batches: every answer
    is the one a dict of (batch, deleted) gives, through the table's rebuilds."""
    changed, model = ChangedKeys(), {}
    for seq in range(300):
        for n in range(seq * 7, seq * 7 + 40):
            key, gone = f"case/{n % 2_500}", n % 11 == 0
            changed.set(key, seq, gone=gone)
            model[key] = (seq, gone)
    changed.set("customer/absent", -1, gone=True)  # the snapshot's order
    model["customer/absent"] = (-1, True)
    assert len(changed) == len(model) > 0
    for n in range(2_600):
        key = f"case/{n}"
        assert changed.get(key) == model.get(key) and (key in changed) == (key in model)
    assert changed.get("customer/absent") == (-1, True) and None not in changed


def test_the_key_filter_knows_every_key_added_and_few_others():
    keys = KeyFilter(bits=1 << 16, hashes=5)
    for n in range(2_000):
        keys.add(f"case/{n}")
    assert all(f"case/{n}" in keys for n in range(2_000))
    strangers = sum(f"customer/{n}" in keys for n in range(10_000))
    assert strangers < 100  # about 0.5 % expected at 2,000 keys in 65,536 bits


def test_the_timer_heap_gives_due_timers_until_their_partition_drops_them():
    timers = {"early": Timer("early", T0, "k"), "late": Timer("late", T0 + timedelta(hours=1), "k")}
    heap = TimerHeap()
    for timer in timers.values():
        heap.push(0, timer)
    heap.push(0, timers["early"])  # scheduled twice: still one firing

    def current(partition: int, timer_id: str) -> Timer | None:
        return timers.get(timer_id)

    assert heap.due(T0, current=current) == [(0, timers["early"])]
    assert heap.due(T0, current=current) == [(0, timers["early"])]  # not fired yet
    del timers["early"]  # fired and persisted
    assert heap.due(T0 + timedelta(hours=2), current=current) == [(0, timers["late"])]
    timers["late"] = Timer("late", T0 + timedelta(hours=3), "k")  # moved later
    assert heap.due(T0 + timedelta(hours=2), current=current) == []


def _docs(changes: Changes) -> list[dict[str, Any]]:
    return batch_docs(changes, owner="me")


def test_a_batch_with_big_values_stores_them_in_chunks_and_restores_whole_or_not_at_all():
    big = {f"k{n}": {"n": n, "pad": "x" * 1_000} for n in range(100)}  # ≈ 110 KB
    docs = _docs(_batch(0, big, ["e0"]))
    chunks = [d for d in docs if d["ns"] == BATCH_VALUES]
    assert len(chunks) == docs[-1]["chunks"] == 4 and docs[-1]["ns"] == "batch"  # marker last
    assert all(len(d["items"]) < 2 * CHUNK_BYTES for d in chunks)
    later = _docs(_batch(1, {"k1": None, "k2": {"n": 2}}, ["e1"]))
    state = restored([*docs, *later])
    assert state.values["k2"] == ({"n": 2}, 1) and "k1" not in state.values
    assert state.values["k3"] == (big["k3"], 0) and len(state.values) == 99
    assert restored(chunks).values == {}  # chunks without their marker: a batch never stored


def _batch(seq: int, values: dict[str, Any], handled: list[str], *, gen: int = 0) -> Changes:
    timers = (
        {"remind/a": {"due_at": T0.isoformat(), "kind": "k", "payload": {}}} if seq == 0 else {}
    )
    return Changes(0, seq, values, timers, handled, [], {ADDED: seq + 1}, gen=gen)


def _values(state: Restored) -> dict[str, Any]:
    return {k: v for k, (v, _) in state.values.items()}


def _snapshot(docs: list[dict[str, Any]], *, gen: int, upto: int, ledger: int = 100) -> list:
    return snapshot_docs(0, restored(docs, upto=upto), gen=gen, ledger_size=ledger, owner="me")


def test_restore_keeps_the_latest_version_of_complete_batches_only():
    docs = [
        *_docs(_batch(0, {"a": 1, "b": 1}, ["e0"])),
        *_docs(_batch(1, {"a": 2, "b": None}, ["e1"])),
        *_docs(_batch(2, {"a": 3}, ["e2"]))[:-1],  # cut short: no marker
    ]
    state = restored(docs)
    assert _values(state) == {"a": 2}
    assert state.values["a"][1] == 1  # the batch an evicted key is reloaded from
    assert state.deleted == {"b": 1}  # deleted since the snapshot (none here)
    assert set(state.timers) == {"remind/a"}
    assert state.checkpoint == {ADDED: 2}
    assert state.handled == ["e0", "e1"]
    assert state.next_seq == 2  # a batch cut short stored nothing: its number is free
    assert state.gens == {0: 0} and state.since_snapshot == 7  # what a snapshot reclaims


def test_an_outbox_is_stored_as_it_will_be_sent_whatever_its_bytes():
    outbox = [
        Outgoing("lexcare.case.assigned", b"case-1", b'{"a": 1}'),
        Outgoing("lexcare.contact.received.dlq", None, b"\xff\x00not json", (("x-error", "bad"),)),
        Outgoing("lexcare.metrics.kpi", b"", b""),
    ]
    assert unpack_outbox(pack_outbox(outbox)) == outbox
    assert unpack_outbox(pack_outbox([])) == []


def test_batches_stored_a_document_per_key_before_the_blobs_are_restored_the_same():
    older = [  # the shape stored up to session 6
        {"_id": "0/v/a/0", "partition": 0, "seq": 0, "gen": 0, "part": 0, "ns": "v"}
        | {"key": "a", "value": 1},
        {"_id": "0/v/b/0", "partition": 0, "seq": 0, "gen": 0, "part": 0, "ns": "v"}
        | {"key": "b", "value": 1},
        {"_id": "0/batch/0", "partition": 0, "seq": 0, "gen": 0, "part": 0, "ns": "batch"}
        | {"checkpoint": [{"topic": ADDED, "offset": 1}], "handled": ["e0"], "outbox": []},
    ]
    state = restored([*older, *_docs(_batch(1, {"a": 2, "b": None}, ["e1"]))])
    assert _values(state) == {"a": 2} and state.deleted == {"b": 1}
    assert state.handled == ["e0", "e1"] and state.checkpoint == {ADDED: 2}


def _history() -> list[dict[str, Any]]:
    """Batches 0-1 in generation 0, snapshot 1 of them, batch 2 written in generation 1."""
    old = [*_docs(_batch(0, {"a": 1, "b": 1}, ["e0"])), *_docs(_batch(1, {"b": None}, ["e1"]))]
    snapshot = _snapshot(old, gen=1, upto=2)
    return [*old, *snapshot, *_docs(_batch(2, {"a": 5, "c": 1}, ["e2"], gen=1))]


def test_restore_starts_from_the_latest_complete_snapshot_and_the_batches_after_it():
    docs = _history()
    state = restored(docs)
    assert _values(state) == {"a": 5, "c": 1}
    assert set(state.timers) == {"remind/a"}  # kept by the snapshot
    assert state.handled == ["e0", "e1", "e2"]  # the ledger survives the snapshot
    assert state.checkpoint == {ADDED: 3} and state.next_seq == 3
    assert state.gens == {0: 0, 1: 0} and state.gen == 1
    without_old = [d for d in docs if d["gen"] == 1]  # generation 0 dropped
    assert _values(restored(without_old)) == _values(state)
    assert restored(without_old).handled == state.handled
    assert restored(without_old).gens == {1: 0}


def test_a_snapshot_cut_short_leaves_the_previous_generation_in_charge():
    docs = _history()
    cut = _snapshot(docs, gen=2, upto=3)[:-1]  # the crash came before its marker
    state = restored([*docs, *cut, *_docs(_batch(3, {"c": 2}, ["e3"], gen=2))])
    assert _values(state) == {"a": 5, "c": 2}
    assert state.handled == ["e0", "e1", "e2", "e3"]
    assert state.gen == 2 and state.gens == {0: 0, 1: 0, 2: 0}  # the next snapshot drops 0 and 1


def test_what_is_left_of_a_dropped_generation_is_ignored():
    docs = _history()
    snapshot = _snapshot(docs, gen=2, upto=3)
    half_deleted = [d for d in docs if d["gen"] != 0 or d["seq"] == 0]
    state = restored([*half_deleted, *snapshot])
    assert _values(state) == {"a": 5, "c": 1}
    assert state.values["a"][1] is None and state.base == (2, 1)  # in the snapshot's bucket
    assert state.handled == ["e0", "e1", "e2"]
    assert state.since_snapshot == 0 and state.base_keys == 2
    assert state.gens == {0: 0, 1: 0, 2: 0}


def test_a_snapshot_keeps_the_newest_ledger_entries_only():
    docs = [d for n in range(5) for d in _docs(_batch(n, {"a": n}, [f"e{n}"]))]
    state = restored(_snapshot(docs, gen=1, upto=5, ledger=2))
    assert state.handled == ["e3", "e4"] and _values(state) == {"a": 4}


def test_a_partition_needs_a_snapshot_once_it_stored_as_many_documents_as_keys():
    state: PartitionState[int] = PartitionState(0, since_snapshot=99, snapshot_keys=100)
    assert not state.needs_snapshot(min_docs=10, max_docs=1_000)
    state.since_snapshot = 100
    assert state.needs_snapshot(min_docs=10, max_docs=1_000)
    assert not state.needs_snapshot(min_docs=1_000, max_docs=1_000)
    leftover: PartitionState[int] = PartitionState(0, gens={1: 0, 2: 0})
    assert leftover.needs_snapshot(min_docs=1_000, max_docs=1_000)  # a compaction cut short


def test_a_large_partition_is_snapshotted_after_max_docs_versions_not_after_its_keys():
    """What the changed keys' index can grow to is bounded, not the partition's key count."""
    big: PartitionState[int] = PartitionState(0, since_snapshot=5_000, snapshot_keys=900_000)
    assert big.needs_snapshot(min_docs=100, max_docs=5_000)
    assert not big.needs_snapshot(min_docs=100, max_docs=5_001)


def test_a_generation_is_stored_in_parts_small_enough_for_one_delete_each(monkeypatch):
    monkeypatch.setattr(storage, "PART_DOCS", 2)
    docs = [d for n in range(3) for d in _docs(_batch(n, {f"k{n}": n}, [f"e{n}"]))]
    monkeypatch.setattr(storage, "SNAP_CHUNK", 2)
    snapshot = _snapshot(docs, gen=1, upto=3)  # 3 values in 2 buckets, timer, ledger, marker
    assert [d["part"] for d in snapshot] == [n // 2 for n in range(len(snapshot))]
    assert restored([*docs, *snapshot]).gens == {0: 0, 1: (len(snapshot) - 1) // 2}
    assert _values(restored(snapshot)) == {"k0": 0, "k1": 1, "k2": 2}


class _RewindingConsumer:
    """A consumer whose first `committed` call finds the broker unreachable."""

    def __init__(self) -> None:
        self.calls = 0
        self.seeks: list[tuple[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("toy.added", 0)}

    async def committed(self, tp: TopicPartition) -> int:
        self.calls += 1
        if self.calls == 1:
            raise KafkaConnectionError("broker away")
        return 5

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


async def test_a_failed_batch_rewinds_even_when_the_broker_blips_during_the_rewind():
    settings = LexcareSettings(service_name="toy", retry_backoff_s=0.001)
    runtime: Runtime[Any] = Runtime(settings, {"state_changes": None}, value_type=int)
    consumer = _RewindingConsumer()
    runtime._consumer = consumer  # type: ignore[assignment]
    outcomes: list[BaseException] = [RuntimeError("rule blew up"), Crashed("after_persist")]

    async def run_once() -> int:
        raise outcomes.pop(0)

    runtime.run_once = run_once  # type: ignore[method-assign]
    await asyncio.wait_for(runtime._run(), timeout=30)
    assert consumer.seeks == [(TopicPartition("toy.added", 0), 5)]
    assert runtime.crashed.is_set()


class _AssignedConsumer:
    """Two assigned partitions: one fetched up to 7 of 10, one without a known end."""

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("toy.added", 0), TopicPartition("toy.added", 1)}

    def highwater(self, tp: TopicPartition) -> int | None:
        return 10 if tp.partition == 0 else None

    async def position(self, tp: TopicPartition) -> int:
        return 7


async def test_lag_and_due_timers_are_read_from_the_owned_partitions():
    settings = LexcareSettings(service_name="toy")
    runtime: Runtime[Any] = Runtime(settings, {"state_changes": None}, value_type=int)
    assert await runtime.lag() == {}  # not started
    runtime._consumer = _AssignedConsumer()  # type: ignore[assignment]
    assert await runtime.lag() == {("toy.added", 0): 3}
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    state: PartitionState[Any] = PartitionState(0)
    state.timers = {
        "due": Timer("due", now, "remind"),
        "later": Timer("later", now + timedelta(seconds=1), "remind"),
    }
    runtime.partitions = {0: state}
    assert runtime.timers_due(now) == 1


def added_for(case_id: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": ADDED,
            "occurred_at": T0.isoformat(),
            "producer": "test",
            "case_id": case_id,
        }
    )


@pytest.mark.parametrize(
    ("error", "outcome"),
    [(GroupCoordinatorNotAvailableError(), ConnectionError), (GroupAuthorizationFailedError(), {})],
)
async def test_committed_offsets_the_broker_cannot_give_are_asked_again_or_republished(
    monkeypatch, error, outcome
):
    """A coordinator moving is retried (as a broker blip); any other refusal makes the
    assignment republish the last outboxes rather than stall."""

    @contextlib.asynccontextmanager
    async def refusing(settings: LexcareSettings):
        raise error
        yield  # pragma: no cover

    monkeypatch.setattr(engine, "admin_client", refusing)
    runtime: Runtime[Any] = Runtime(LexcareSettings(), {"state_changes": None}, value_type=int)
    runtime.routes["t"] = None  # type: ignore[assignment]
    if outcome is ConnectionError:
        with pytest.raises(ConnectionError):
            await runtime._committed_offsets([0])
    else:
        assert await runtime._committed_offsets([0]) == outcome


def grouped_runtime(calls: list[list[str]]) -> Runtime[Any]:
    """A runtime whose `toy.added` rule takes the batch's consecutive events at once (a
    poisoned event makes any run holding it fail)."""
    runtime: Runtime[Any] = Runtime(LexcareSettings(), NO_DATABASE, value_type=Tally)

    @runtime.on_group(ADDED, Added)
    def add_all(view: View[Any], events: list[Added], ctx: Any) -> None:
        calls.append([event.case_id for event in events])
        for event in events:
            if event.poison:
                raise ValueError("poisoned")
            tally = view.get(event.case_id) or Tally()
            view.set(event.case_id, Tally(total=tally.total + 1, events=tally.events + 1))

    return runtime


def added_work(offset: int, case_id: str, *, poison: bool = False) -> Work:
    body = orjson.loads(added_for(case_id)) | {"poison": poison}
    item = Work(record=record(0, offset, orjson.dumps(body)), event=Added.model_validate(body))
    object.__setattr__(item.record, "topic", LexcareSettings().topic(ADDED))
    return item


async def test_a_grouped_rule_runs_once_for_a_partitions_consecutive_events():
    calls: list[list[str]] = []
    runtime = grouped_runtime(calls)
    state: PartitionState[Any] = PartitionState(0)
    runtime.partitions[0] = state
    work = [added_work(n, case) for n, case in enumerate(["a", "b", "a"])]
    batch = await runtime._apply(0, work)
    assert calls == [["a", "b", "a"]]
    assert batch.view.get("a") == Tally(total=2, events=2) and batch.view.get("b").total == 1
    assert batch.handled == [str(item.event.event_id) for item in work]
    assert not batch.outbox


async def test_when_a_group_fails_its_events_run_alone_and_only_the_bad_one_is_dead_lettered():
    calls: list[list[str]] = []
    runtime = grouped_runtime(calls)
    runtime.partitions[0] = PartitionState(0)
    work = [added_work(0, "a"), added_work(1, "bad", poison=True), added_work(2, "b")]
    batch = await runtime._apply(0, work)
    tries = runtime.settings.max_attempts
    assert calls == [["a", "bad", "b"]] * tries + [["a"]] + [["bad"]] * tries + [["b"]]
    assert batch.view.get("a").total == 1 and batch.view.get("b").total == 1
    assert batch.view.get("bad") is None
    assert batch.handled == [str(work[0].event.event_id), str(work[2].event.event_id)]
    assert [out.topic for out in batch.outbox] == [LexcareSettings().topic(ADDED) + ".dlq"]


def test_hand_offs_run_together_only_when_consecutive_for_one_target_and_grouped_topic():
    one, two = object(), object()
    topics = {(one, 0): "g", (one, 1): "g", (one, 2): None, (one, 3): "g", (two, 4): "g"}
    queued = [(one, 0), (one, 1), (one, 2), (one, 3), (two, 4), (one, 5)]
    topics[(one, 5)] = "g"
    runs = engine._runs(queued, lambda target, index: topics[(target, index)])  # type: ignore[arg-type]
    assert [(target is one, places) for target, places in runs] == [
        (True, [0, 1]),
        (True, [2]),
        (True, [3]),
        (False, [4]),
        (True, [5]),
    ]


class _CommittingConsumer:
    """Records each commit the runtime sends."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, tuple[int, str]]) -> None:
        self.commits.append({tp: offset for tp, (offset, _) in offsets.items()})


async def test_offsets_are_committed_once_per_interval_and_all_of_them_when_asked():
    settings = LexcareSettings(service_name="toy", runtime_commit_interval_ms=60_000)
    runtime: Runtime[Any] = Runtime(settings, NO_DATABASE, value_type=Tally)
    consumer = _CommittingConsumer()
    runtime._consumer = consumer  # type: ignore[assignment]
    runtime.partitions = {0: PartitionState(0), 1: PartitionState(1)}
    a0, a1 = TopicPartition(ADDED, 0), TopicPartition(ADDED, 1)

    for offsets in ({a0: 3}, {a0: 5, a1: 2}, {a1: 4}):
        plan = Plan(offsets=dict(offsets))
        await runtime._commit(plan, [])
    await runtime._commit_landed()
    assert consumer.commits == [{a0: 3}]  # the first at once, the next two held back

    await runtime._committed_all()  # a stop, a revocation, an idle poll
    assert consumer.commits == [{a0: 3}, {a0: 5, a1: 4}]


async def test_with_no_interval_every_poll_commits():
    settings = LexcareSettings(service_name="toy", runtime_commit_interval_ms=0)
    runtime: Runtime[Any] = Runtime(settings, NO_DATABASE, value_type=Tally)
    consumer = _CommittingConsumer()
    runtime._consumer = consumer  # type: ignore[assignment]
    runtime.partitions = {0: PartitionState(0)}
    for offset in (3, 5):
        await runtime._commit(Plan(offsets={TopicPartition(ADDED, 0): offset}), [])
    await runtime._commit_landed()
    assert consumer.commits == [{TopicPartition(ADDED, 0): 3}, {TopicPartition(ADDED, 0): 5}]
