"""Batch planning, pure: which records of a poll run, in which order, and what to commit."""

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.structs import TopicPartition

from shared.batching import parse
from shared.events import Event
from shared.runtime.state import PartitionState
from shared.runtime.timers import Timer

HANDED_HEADER = "lexcare-handed"
"""On a record a hand-off already ran (in the cycle that emitted it): the number of the
batch of its partition that ran it."""


class Misplaced(ValueError):
    """A keyed record on another partition than its key's: its key's owner never sees it."""

    def __init__(self, partition: int, owner: int) -> None:
        super().__init__(
            f"on partition {partition}, but its key belongs to partition {owner} (Kafka's "
            "default murmur2 partitioner): publish keyed records with that partitioner "
            "(kcat: -X topic.partitioner=murmur2_random), then send it again"
        )


@dataclass(frozen=True)
class Work:
    """One thing to run a rule for: a record (parsed, or its parse error) or a due timer."""

    record: Any = None
    event: Event | Exception | None = None
    timer: Timer | None = None


@dataclass
class Plan:
    """A poll's work per owned partition in log order, and the offsets it lets us commit."""

    work: dict[int, list[Work]] = field(default_factory=dict)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    """The next offset of every owned partition the poll read from, skipped records included."""
    skipped: int = 0

    def add(self, partition: int, item: Work) -> None:
        """Queue `item` after the partition's earlier work."""
        self.work.setdefault(partition, []).append(item)


def plan_batch(
    records: Sequence[Any],
    *,
    models: Mapping[str, type[Event]],
    states: Mapping[int, PartitionState[Any]],
    due: Sequence[tuple[int, Timer]] = (),
    owner_of: Callable[[bytes], int] | None = None,
    stateless: Collection[str] = (),
) -> Plan:
    """Parse a poll's records; drop those already in the state (below the checkpoint, or
    with an event id handled before or earlier in the poll) and those of partitions no
    longer owned; queue the due timers after their partition's records.

    `owner_of`: the partition a key belongs to; a keyed record found elsewhere is queued
    as `Misplaced` (dead-lettered): the state of its key lives in another partition. Not
    for the `stateless` topics, whose rules only pass events on.
    """
    plan = Plan()
    batch_ids: set[str] = set()
    for record in records:
        state = states.get(record.partition)
        if state is None:
            continue  # revoked since the poll: its next owner reads it again
        tp = TopicPartition(record.topic, record.partition)
        plan.offsets[tp] = max(plan.offsets.get(tp, 0), record.offset + 1)
        if record.offset < state.checkpoint.get(record.topic, 0):
            plan.skipped += 1
            continue
        if _handed_before(record, state):
            plan.skipped += 1
            continue
        checked = owner_of is not None and record.key is not None and record.topic not in stateless
        owner = owner_of(record.key) if checked else None
        if owner is not None and owner != record.partition:
            plan.add(
                record.partition, Work(record=record, event=Misplaced(record.partition, owner))
            )
            continue
        event = parse(models[record.topic], record)
        if isinstance(event, Event):
            event_id = str(event.event_id)
            if state.handled(event_id) or event_id in batch_ids:
                plan.skipped += 1
                continue
            batch_ids.add(event_id)
        plan.add(record.partition, Work(record=record, event=event))
    for partition, timer in due:
        if partition in states:
            plan.add(partition, Work(timer=timer))
    return plan


def _handed_before(record: Any, state: PartitionState[Any]) -> bool:
    """True for the copy of a hand-off whose batch the partition's state holds: a copy
    keeps its mark only when that batch is stored and ran it (a restore checks it before
    it republishes: `Runtime._checked_copies`), so every owner since holds it. The ledger
    alone would let a copy run again once more events than it holds came in between."""
    for name, value in getattr(record, "headers", None) or ():
        if name == HANDED_HEADER:
            try:
                return int(value) < state.next_seq
            except ValueError:
                return False
    return False
