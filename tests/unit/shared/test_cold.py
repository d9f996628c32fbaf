"""The cold store: values that left memory, on local disk, read back without a round trip."""

import gc
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from shared.runtime import cold
from shared.runtime.cold import ColdStore, SpillDirectory
from shared.runtime.state import DELETED, PartitionState, View


@dataclass(frozen=True)
class Sheet:
    case_id: str
    steps: tuple[str, ...]


def test_a_store_gives_back_each_value_once_queued_or_written(tmp_path):
    store = ColdStore(tmp_path, "p0")
    store.put("a", Sheet("a", ("opened",)))
    assert store.take("a") == Sheet("a", ("opened",))  # still queued
    for n in range(cold.FLUSH_AT + 3):  # more than a queue: written as they pass it
        store.put(f"k{n}", Sheet(f"k{n}", ()))
    store.flush()
    assert len(store) == cold.FLUSH_AT + 3
    assert store.take("k7") == Sheet("k7", ())
    assert store.take("k7") is None  # taken: it lives in memory now
    store.discard("k8")
    assert store.take("k8") is None and len(store) == cold.FLUSH_AT + 1
    path = store.path
    assert path.exists()
    store.close()
    assert not path.exists()


def test_a_store_no_longer_referenced_deletes_its_file(tmp_path):
    store = ColdStore(tmp_path, "p1")
    store.put("a", 1)
    store.flush()
    path = store.path
    del store
    gc.collect()
    assert not path.exists()


def test_values_past_the_cap_go_to_the_cold_store_and_come_back_when_read(tmp_path):
    store = ColdStore(tmp_path, "p0")
    state: PartitionState[Sheet] = PartitionState(0, cold=store)
    for n in range(5):
        state.put(f"case-{n}", Sheet(f"case-{n}", ("opened",)))
    assert state.evict(keep=2, idle=lambda sheet: True) == ["case-0", "case-1", "case-2"]
    assert set(state.values) == {"case-3", "case-4"} and len(store) == 3
    assert state.peek("case-0") == Sheet("case-0", ("opened",))  # a read model's look:
    assert "case-0" not in state.values and len(store) == 3  # it stays on disk
    assert View(state).get("case-1") == Sheet("case-1", ("opened",))  # at once, no round trip
    assert "case-1" in state.values and len(store) == 2 and store.taken == 1
    assert View(state).get("never") is None  # never stored
    assert store.taken == 1


def test_a_key_written_or_deleted_while_out_of_memory_never_reads_its_old_value(tmp_path):
    store = ColdStore(tmp_path, "p0")
    state: PartitionState[Sheet] = PartitionState(0, cold=store)
    state.put("a", Sheet("a", ("opened",)))
    state.put("b", Sheet("b", ("opened",)))
    state.put("c", Sheet("c", ()))
    state.evict(keep=1, idle=lambda sheet: True)
    assert set(state.values) == {"c"}
    state.put("a", Sheet("a", ("opened", "closed")))  # written without a read
    state.put("b", DELETED)
    assert len(store) == 0
    state.evict(keep=0, idle=lambda sheet: True)
    assert View(state).get("a") == Sheet("a", ("opened", "closed"))
    assert View(state).get("b") is None


def test_a_failed_write_to_the_cold_store_lets_no_value_leave_memory(tmp_path, monkeypatch):
    store = ColdStore(tmp_path, "p0")
    state: PartitionState[int] = PartitionState(0, cold=store)
    for n in range(cold.FLUSH_AT + 10):  # more than one write: the first one lands
        state.put(f"k{n}", n)

    real = store.flush
    calls = []

    def flush_once_then_fail() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise OSError("disk full")
        real()

    monkeypatch.setattr(store, "flush", flush_once_then_fail)
    with pytest.raises(OSError):
        state.evict(keep=0, idle=lambda value: True)
    assert len(state.values) == cold.FLUSH_AT + 10  # every value still in memory
    monkeypatch.setattr(store, "flush", real)
    assert len(store) == 0  # and none left behind on disk
    state.put("k0", -1)
    state.evict(keep=0, idle=lambda value: True)
    assert View(state).get("k0") == -1


def test_a_spill_directory_clears_what_dead_processes_left_and_its_own_at_exit(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    left = tmp_path / f"lexcare-spill-{dead.stdout.strip()}-intake-x1"
    left.mkdir()
    (left / "p0-0.sqlite").write_bytes(b"stale")
    alive = tmp_path / f"lexcare-spill-{os.getppid()}-intake-x2"  # a live process's
    alive.mkdir()
    cold._swept.discard(tmp_path)
    spill = SpillDirectory(str(tmp_path), "intake")
    assert not left.exists() and alive.exists()
    store = spill.store(0)
    assert store.path.parent == spill.path and spill.store(0).path != store.path
    store.close()
    spill.remove()
    assert not spill.path.exists()
