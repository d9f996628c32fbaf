"""The stateful runtime: one consumer group over a service's co-partitioned topics.

Per poll: plan (drop what the state already holds) → run the rules per partition in log
order, each event on a copy-on-write view → persist the batch's changes (one insert) →
publish its events and dead letters (sent together, awaited once) → commit the offsets →
apply the changes to the partitions in memory. On assignment a partition is restored from
storage (its last batch's records republished unless the group committed it); on
revocation it is let go. Due timers of owned partitions run in the same cycle; compaction
snapshots partitions off the hot path. See docs/developing.md, "The stateful runtime".
"""

import asyncio
import contextlib
import heapq
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError, OutOfOrderSequenceNumber
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from pydantic import TypeAdapter
from pymongo.asynchronous.database import AsyncDatabase

from shared import faults, observability
from shared.background import Background
from shared.batching import parse
from shared.clock import Clock, SystemClock
from shared.delivery import TRANSIENT_ERRORS, Rejected, dead_letter_headers, describe_error
from shared.events import Event
from shared.kafka import admin_client, admin_client_options, await_group_coordinators
from shared.partitioner import KeyPartitioner
from shared.runtime.cold import SpillDirectory
from shared.runtime.context import Context, Outgoing
from shared.runtime.inputs import check_copartitioned, prepare_inputs
from shared.runtime.memory import give_back
from shared.runtime.plan import HANDED_HEADER, Plan, Work, plan_batch
from shared.runtime.state import DELETED, ChangedKeys, PartitionState, View
from shared.runtime.storage import (
    PART_DOCS,
    Changes,
    ChangeStore,
    Fenced,
    Restored,
)
from shared.runtime.timers import Timer, TimerHeap, decode_timer, encode_timer
from shared.settings import LexcareSettings
from shared.topics import dlq

V = TypeVar("V")
E = TypeVar("E", bound=Event)
Rule = Callable[[View[Any], E, Context], None]
GroupRule = Callable[[View[Any], list[E], Context], None]
TimerRule = Callable[[View[Any], Timer, Context], None]

log = structlog.get_logger("lexcare.runtime")

CRASH_POINTS = ("after_persist", "after_publish")
HAND_OFF_ROUNDS = 16
"""Rounds of hand-off per cycle: events a handed-off rule emits to its own internal topics
are handed off in the next round; past the last, they wait for their record."""
"""Where a test may stop the runtime dead (`crash_at`), or a process (`faults`)."""


class Crashed(Exception):
    """Raised at the crash point a test chose: the runtime stops without committing."""


@dataclass(frozen=True)
class _Route:
    model: type[Event]
    rule: Rule[Any]
    stateless: bool = False
    group: GroupRule[Any] | None = None
    """Set for `Runtime.on_group` routes: the rule over consecutive events at once."""


@dataclass
class _Batch:
    """One partition's work in progress: its view, what it publishes, what it handled."""

    state: PartitionState[Any]
    view: View[Any]
    outbox: list[Outgoing]
    handled: list[str]
    work: list[Work] = field(default_factory=list)
    position: int = 0
    """The work item running now."""
    looked: int = 0
    """How much of the outbox the hand-off has looked at."""

    def take_emitted(self) -> list[tuple[int, Outgoing]]:
        """What the rules emitted since the last call, with its place in the outbox."""
        start, self.looked = self.looked, len(self.outbox)
        return list(enumerate(self.outbox[start:], start))

    def mark_handed(self, place: int, seq: int) -> None:
        """Say on an emitted record that batch `seq` of its partition ran it (a hand-off):
        a copy republished at a restore is skipped by that, whatever the ledger holds."""
        out = self.outbox[place]
        self.outbox[place] = replace(out, headers=(*out.headers, (HANDED_HEADER, str(seq))))


@dataclass(frozen=True)
class _Handed:
    """Where a record handed off in the cycle that emitted it would have been read."""

    topic: str
    partition: int
    key: bytes
    origin: int = -1
    """The partition of the batch that emitted it (a number, not the batch: a reference
    would tie the cycle's batches into a reference cycle, which only the garbage
    collector frees, every batch surviving into its oldest generation), and where in its
    outbox."""
    place: int = -1


class Runtime(Generic[V]):
    """Runs a service's rules over its partitions' state (see the module docstring)."""

    def __init__(
        self,
        settings: LexcareSettings,
        db: AsyncDatabase,
        *,
        value_type: Any,
        name: str = "state",
        clock: Clock | None = None,
        idle: Callable[[V], bool] = lambda value: False,
        max_keys: int | None = None,
        ledger_size: int | None = None,
        compact_every_s: float | None = None,
        snapshot_min_docs: int | None = None,
        scanned: tuple[str, ...] = (),
        timer_horizon_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.codec: TypeAdapter[V] = TypeAdapter(value_type)
        self.changes = ChangeStore(db, name)
        self.clock = clock or SystemClock()
        self.idle = idle
        self.scanned = scanned
        """Key prefixes rules list in order (`View.scan`)."""
        self.horizon = timedelta(seconds=timer_horizon_s or settings.runtime_timer_horizon_s)
        """How far ahead timers are kept in memory (later ones stay in storage)."""
        self.max_keys = max_keys or settings.runtime_max_keys
        self.ledger_size = settings.runtime_ledger_size if ledger_size is None else ledger_size
        self.snapshot_min_docs = snapshot_min_docs or settings.runtime_snapshot_min_docs
        self.routes: dict[str, _Route] = {}
        self._stateless: set[str] = set()
        """Topics whose rules only pass events on: taken on any partition."""
        self.internal: set[str] = set()
        """Topics this runtime both publishes and consumes (re-keying): created at start."""
        self.timer_rules: dict[str, TimerRule] = {}
        self.partitions: dict[int, PartitionState[V]] = {}
        self._parked: dict[int, PartitionState[V]] = {}
        self.heap = TimerHeap()
        self.lock = asyncio.Lock()
        self._compacting = asyncio.Lock()  # one snapshot at a time: each reads the last one
        self.owner = uuid.uuid4().hex
        self.crash_at: str | None = None
        self.crashed = asyncio.Event()
        self.consumed = 0
        self.restore_seconds = 0.0
        self.compacted = 0
        self._pending_commit: asyncio.Task[None] | None = None
        self._unsent_commits: dict[TopicPartition, tuple[int, str]] = {}
        """Offsets of stored and published batches whose commit waits for the interval."""
        self._next_commit_at = 0.0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._loop = Background(self._run, name=f"runtime-{settings.service_name}")
        self._compactor = Background(self._compact, name=f"compact-{settings.service_name}")
        self._compact_every_s = compact_every_s or settings.runtime_compact_every_s
        self._partitions: list[int] = []
        """Every partition number of the inputs (known once started): where a key belongs."""
        self._partitioner = KeyPartitioner()
        self._spill = SpillDirectory(settings.runtime_spill_dir, settings.service_name)
        """Where the partitions' values that leave memory are kept (`shared.runtime.cold`)."""

    @property
    def reloads(self) -> int:
        """Keys the owned partitions brought back into memory from their cold stores (a rule
        needed a value that had left)."""
        return sum(state.cold.taken for state in self.partitions.values())

    # Registration: what the service's handlers module does at import.

    def on(
        self, topic: str, model: type[E], *, internal: bool = False, stateless: bool = False
    ) -> Callable[[Rule[E]], Rule[E]]:
        """Decorator: run `rule(state, event, ctx)` for each `model` event on `topic`.

        `internal`: the service's own re-keying topic (its rules emit to it with another
        key); the runtime creates it at start, co-partitioned with the other inputs.
        `stateless`: the rule keeps no state, it only passes the event on re-keyed, so a
        record is taken on whatever partition its producer put it (never `Misplaced`).
        """

        def register(rule: Rule[E]) -> Rule[E]:
            self.routes[self.settings.topic(topic)] = _Route(model, rule, stateless)
            if stateless:
                self._stateless.add(self.settings.topic(topic))
            if internal:
                self.internal.add(self.settings.topic(topic))
            return rule

        return register

    def on_group(
        self, topic: str, model: type[E], *, internal: bool = False
    ) -> Callable[[GroupRule[E]], GroupRule[E]]:
        """Decorator: run `rule(state, events, ctx)` once for the consecutive `model` events
        of `topic` a partition's batch holds (in log order), instead of once per event.

        For a rule whose fixed cost per run outweighs its cost per event (metrics' totals
        read and write each cell once for the whole group). What each event does must not
        depend on whether it ran alone: if the group's run fails, each event runs alone
        (`rule(state, [event], ctx)`), so the one that fails is dead-lettered by itself.
        """

        def register(rule: GroupRule[E]) -> GroupRule[E]:
            def one(view: View[Any], event: E, ctx: Context) -> None:
                rule(view, [event], ctx)

            name = self.settings.topic(topic)
            self.routes[name] = _Route(model, one, group=rule)
            if internal:
                self.internal.add(name)
            return rule

        return register

    def on_timer(self, kind: str) -> Callable[[TimerRule], TimerRule]:
        """Decorator: run `rule(state, timer, ctx)` when a timer of `kind` is due."""

        def register(rule: TimerRule) -> TimerRule:
            self.timer_rules[kind] = rule
            return rule

        return register

    # What the service's gauges read.

    async def observe(self) -> None:
        """Set the shared gauges from the runtime: due timers, lag of its input partitions."""
        observability.TIMERS_DUE.set(self.timers_due(self.clock.now()))
        observability.RUNTIME_ROUND_TRIPS.set(self.changes.round_trips)
        observability.RUNTIME_CONSUMED.set(self.consumed)
        observability.RUNTIME_RESTORE.set(self.restore_seconds)
        observability.RUNTIME_RELOADS.set(self.reloads)
        observability.RUNTIME_TIMERS.set(sum(len(s.timers) for s in self.partitions.values()))
        observability.RUNTIME_LEDGER.set(sum(len(s.seen) for s in self.partitions.values()))
        observability.RUNTIME_KEYS.set(sum(len(s.values) for s in self.partitions.values()))
        for (topic, partition), behind in (await self.lag()).items():
            observability.CONSUMER_LAG.labels(topic, str(partition)).set(behind)

    def loaded_values(self) -> Iterable[V]:
        """The values of the owned partitions held in memory now."""
        return (value for state in self.partitions.values() for value in state.values.values())

    async def value(self, key: str) -> V | None:
        """The key's value in whichever owned partition holds it (read from its cold store,
        not brought back, when it left memory): for a service's own read model."""
        for state in list(self.partitions.values()):
            value = state.peek(key)
            if value is not None:
                return value
        return None

    # Life cycle.

    async def start(self) -> None:
        """Create the index, join the group, start consuming and compacting."""
        await self.changes.prepare()
        counts = await prepare_inputs(
            self.settings, inputs=set(self.routes), internal=self.internal
        )
        options = admin_client_options(self.settings)
        self._producer = self._new_producer()
        self._consumer = AIOKafkaConsumer(
            **options,
            group_id=self.settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.batch_max_records,
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            **_fetch_options(self.settings.runtime_fetch_wait_ms),
        )
        await self._producer.start()
        # A fresh broker elects the group's coordinator at the first request; aiokafka's
        # consumer logs each refusal meanwhile at ERROR: ask first, quietly.
        await await_group_coordinators(self.settings, [self.settings.consumer_group])
        await self._consumer.start()
        check_copartitioned(counts)
        self._partitions = list(range(max(counts.values(), default=0)))
        self._consumer.subscribe(list(self.routes), listener=_Rebalance(self))
        self._loop.start()
        self._compactor.start()

    async def stop(self) -> None:
        """Finish the batch in flight, then leave the group; past `graceful_timeout_s` the
        batch is cut short as a crash would (stored or not, never committed unpublished)."""
        try:
            await asyncio.wait_for(self.lock.acquire(), timeout=self.settings.graceful_timeout_s)
        except TimeoutError:
            log.warning("runtime_stop_cut_short", timeout_s=self.settings.graceful_timeout_s)
            await self.kill()
            return
        try:
            await self._loop.stop()
            await self._committed_all()
        finally:
            self.lock.release()
        await self._close()

    async def kill(self) -> None:
        """Stop at once, committing nothing more (what a crash does)."""
        await self._loop.stop()
        self._unsent_commits.clear()
        pending, self._pending_commit = self._pending_commit, None
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await self._close()

    async def _close(self) -> None:
        await self._compactor.stop()
        consumer, producer = self._consumer, self._producer
        self._consumer = self._producer = None
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()
        self.partitions.clear()
        self._parked.clear()
        self.heap = TimerHeap()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Crashed:
                self.crashed.set()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("runtime_batch_failed")
                await self._read_again()
                await asyncio.sleep(self.settings.retry_backoff_s)

    async def _read_again(self) -> None:
        """Seek back to the uncommitted records after a poll failed half way, until the seek
        works: they must run again. Whatever fails here (a broker blip, a partition revoked
        during the seek) is logged and the seek tried again on the assignment of the moment;
        it never ends the loop."""
        while True:
            try:
                await self._until_done(self._rewind)
                return
            except Exception:
                log.exception("runtime_rewind_failed")
                await asyncio.sleep(self.settings.retry_backoff_s)

    # One poll.

    async def run_once(self) -> int:
        """Poll once and take the batch through rules, persist, publish and commit."""
        assert self._consumer is not None
        await self._reach_horizon()
        phase = _Phases()
        polled = await self._consumer.getmany(
            timeout_ms=self.settings.batch_timeout_ms,
            max_records=self.settings.batch_max_records,
        )
        records = [record for batch in polled.values() for record in batch]
        async with self.lock:
            phase.done("wait")
            due = self.heap.due(self.clock.now(), current=self._current_timer)
            plan = plan_batch(
                records,
                models={topic: route.model for topic, route in self.routes.items()},
                states=self.partitions,
                due=due,
                owner_of=self._owner_of,
                stateless=self._stateless,
            )
            if not plan.offsets and not plan.work:
                if self._unsent_commits:  # idle: the offsets held back go now
                    await self._send_commits()
                return 0
            batches = {p: await self._apply(p, work) for p, work in plan.work.items()}
            await self._hand_off(batches)
            batches = list(batches.values())
            stored = [(b, self._changes(b, plan)) for b in batches if _changed(b)]
            phase.done("rules")
            if stored and not await self._persist([changes for _, changes in stored]):
                return 0
            phase.done("persist")
            outside = any(record.topic not in self.internal for record in records)
            self._crash("after_persist", outside)
            await faults.delay_at("runtime_slow_publish", self.settings.service_name)
            await self._until_done(self._publish, _to_publish(batches))
            phase.done("publish")
            self._crash("after_publish", outside)
            for batch, changes in stored:
                self._settle(batch, changes)
            _skipped_past(plan, self.partitions, {changes.partition for _, changes in stored})
            await self._commit(plan, [changes for _, changes in stored])
            phase.done("commit")  # the wait for the previous cycle's commit
            self.consumed += len(records)
            return len(records)

    def _owner_of(self, key: bytes) -> int | None:
        """The partition Kafka's default partitioner gives `key` (None before start)."""
        if not self._partitions:
            return None
        return self._partitioner(key, self._partitions, self._partitions)

    async def _apply(self, partition: int, work: list[Work]) -> _Batch:
        """Run the partition's work in order on one batch view."""
        state = self.partitions[partition]
        batch = _Batch(state, View(state), [], [], work)
        for batch.position, item in enumerate(work):
            if item.timer is not None:
                await self._fire(batch, item.timer)
            elif isinstance(item.event, Event):
                group = self._group_at(work, batch.position)
                if group is None:
                    await self._handle(batch, item.record, item.event)
                elif group:
                    await self._handle_group(batch, group)
            else:
                self._dead_letter(batch, item.record, item.event or ValueError("empty record"))
        return batch

    def _group_at(self, work: list[Work], position: int) -> range | None:
        """The places of the consecutive events of a grouped route that start at `position`
        (empty when the item belongs to a group that started earlier; None: not a grouped
        route)."""
        topic = getattr(work[position].record, "topic", None)
        route = self.routes.get(topic) if topic is not None else None
        if route is None or route.group is None:
            return None

        def same(item: Work) -> bool:
            return isinstance(item.event, Event) and getattr(item.record, "topic", None) == topic

        if position > 0 and same(work[position - 1]):
            return range(0)
        end = position
        while end < len(work) and same(work[end]):
            end += 1
        return range(position, end)

    async def _handle_group(self, batch: _Batch, places: range) -> None:
        """Run a grouped route's events at once; if that fails, each on its own."""
        items = [batch.work[place] for place in places]
        topic = items[0].record.topic
        route = self.routes[topic]
        assert route.group is not None
        events = [item.event for item in items]
        started = time.perf_counter()
        outcome = await self._attempt(batch, lambda view, ctx: route.group(view, events, ctx))
        if isinstance(outcome, BaseException):
            log.warning("group_failed_running_alone", topic=topic, events=len(events))
            for batch.position in places:
                item = batch.work[batch.position]
                await self._handle(batch, item.record, item.event)
            return
        _handled(batch, topic, events, started)

    async def _hand_off(self, batches: dict[int, _Batch]) -> None:
        """Run now what the rules emitted to the service's own internal topics for partitions
        this instance owns, instead of a cycle later when the record comes back.

        Its record stays in the origin's outbox, marked with the target's batch number, and
        is stored with it; once the whole cycle is stored it is not published (`_to_publish`).
        A crash before that publish leaves the outbox to a restore, which republishes it
        (`_checked_copies`): a copy whose target batch is stored and ran it is dropped,
        any other goes without its mark, and the target's next owner runs it. A hand-off
        runs after what the target's partition polled, as if it had been first in the topic
        after those. An event whose rule fails here is left to that copy (see
        `_run_handed`). Bounded by `HAND_OFF_ROUNDS`.
        """
        if not self.internal:
            return
        deferred: set[int] = set()
        for _ in range(HAND_OFF_ROUNDS):
            handed = [
                (batch, place, out)
                for batch in list(batches.values())
                for place, out in batch.take_emitted()
                if out.topic in self.internal and out.topic not in self._stateless
            ]
            queued: list[tuple[_Batch, int]] = []
            taken: set[str] = set()
            for origin, place, out in handed:
                partition = self._owner_of(out.key) if out.key is not None else None
                if partition is None or partition not in self.partitions or partition in deferred:
                    continue  # a deferred partition's events come in order through Kafka
                model = self.routes[out.topic].model
                event = out.event if isinstance(out.event, model) else parse(model, out)
                if not isinstance(event, Event):
                    continue
                target = batches.get(partition)
                if target is None:
                    state = self.partitions[partition]
                    target = batches[partition] = _Batch(state, View(state), [], [])
                event_id = str(event.event_id)
                if target.state.handled(event_id) or event_id in taken:
                    continue
                taken.add(event_id)
                handed_record = _Handed(
                    out.topic, partition, out.key, origin.state.partition, place
                )
                target.work.append(Work(record=handed_record, event=event))
                queued.append((target, len(target.work) - 1))
            for target, places in _runs(queued, self._grouped):
                if target.state.partition in deferred:
                    continue  # deferred earlier in this round
                if not await self._run_handed(target, places, batches):
                    deferred.add(target.state.partition)
            if not queued:
                return

    def _grouped(self, target: _Batch, index: int) -> str | None:
        """The topic of a handed-off item when its route is grouped."""
        topic = target.work[index].record.topic
        route = self.routes.get(topic)
        return topic if route is not None and route.group is not None else None

    async def _run_handed(
        self, batch: _Batch, places: list[int], batches: dict[int, _Batch]
    ) -> bool:
        """Run handed-off events: one, or a grouped route's run of them (each alone if the
        group fails). False when the first that fails and those after it are left to their
        copies.

        Left to its copy, an event runs after the next cycle's hand-offs, which do not
        wait for it: only a failing rule is, so only a dead letter is out of order. Leaving
        the events that needed a read from storage to their copies (before the cold store)
        let metrics apply a case's later step before its earlier one (a cell then read
        below zero until the copy came)."""
        started = time.perf_counter()
        batch.position = places[0]
        items = [batch.work[place] for place in places]
        topic = items[0].record.topic
        route = self.routes[topic]
        events = [item.event for item in items]

        def run(view: View[Any], ctx: Context) -> None:
            if route.group is not None:
                route.group(view, events, ctx)
            else:
                route.rule(view, events[0], ctx)

        outcome = await self._attempt(batch, run)
        if isinstance(outcome, BaseException):
            if len(places) == 1:
                return False
            log.warning("group_failed_running_alone", topic=topic, events=len(events))
            for place in places:
                if not await self._run_handed(batch, [place], batches):
                    return False
            return True
        _handled(batch, topic, events, started)
        for item in items:
            origin = batches.get(item.record.origin)
            if origin is not None:
                origin.mark_handed(item.record.place, batch.state.next_seq)
        observability.HANDED_OFF.labels(topic).inc(len(events))
        return True

    async def _handle(self, batch: _Batch, record: Any, event: Event) -> None:
        route = self.routes[record.topic]
        started = time.perf_counter()
        outcome = await self._attempt(batch, lambda view, ctx: route.rule(view, event, ctx))
        if isinstance(outcome, BaseException):
            self._dead_letter(batch, record, outcome)
            return
        _handled(batch, record.topic, [event], started)

    async def _fire(self, batch: _Batch, timer: Timer) -> None:
        rule = self.timer_rules.get(timer.kind)

        def fire(view: View[Any], ctx: Context) -> None:
            view.drop_timer(timer.id)  # fired once: the rule may schedule it again
            if rule is not None:
                rule(view, timer, ctx)

        outcome = await self._attempt(batch, fire)
        if isinstance(outcome, BaseException):
            log.error("timer_failed_giving_up", timer_id=timer.id, error=describe_error(outcome))
            batch.view.drop_timer(timer.id)

    async def _attempt(
        self, batch: _Batch, rule: Callable[[View[Any], Context], None]
    ) -> Context | BaseException:
        """Run `rule` on a fresh child view until it passes or fails `max_attempts` times
        (a value it reads that left memory comes back from the partition's cold store)."""
        tries = 0
        while True:
            view = batch.view.child()
            ctx = Context(
                view,
                now=self.clock.now(),
                topic=self.settings.topic,
                consumer=self.settings.consumer_group,
            )
            try:
                rule(view, ctx)
            except Rejected as e:
                return e
            except Exception as e:
                tries += 1
                if tries >= self.settings.max_attempts:
                    return e
                log.warning("rule_failed_retrying", tries=tries, error=describe_error(e))
                continue
            view.fold()
            batch.outbox.extend(ctx.emitted)
            for out in ctx.emitted:  # refused by a later hop (`ctx.dead_letter`)
                if out.topic.endswith(".dlq"):
                    observability.DEAD_LETTERS.labels(out.topic.removesuffix(".dlq")).inc()
            return ctx

    def _dead_letter(self, batch: _Batch, record: Any, error: BaseException) -> None:
        headers = dead_letter_headers(record, error, consumer=self.settings.consumer_group)
        out = Outgoing(dlq(record.topic), record.key, record.value or b"", tuple(headers.items()))
        batch.outbox.append(out)
        observability.DEAD_LETTERS.labels(record.topic).inc()
        reason = headers["x-error"]
        log.warning("dead_lettered", topic=record.topic, offset=record.offset, reason=reason)

    def _changes(self, batch: _Batch, plan: Plan) -> Changes:
        state = batch.state
        checkpoint = dict(state.checkpoint)
        for tp, offset in plan.offsets.items():
            if tp.partition == state.partition:
                checkpoint[tp.topic] = offset
        return Changes(
            partition=state.partition,
            seq=state.next_seq,
            values={k: self._encode(v) for k, v in batch.view.writes.items()},
            timers={t: _encode_timer(timer) for t, timer in batch.view.timer_writes.items()},
            handled=batch.handled,
            outbox=batch.outbox,
            checkpoint=checkpoint,
            gen=state.gen,
            part=state.gen_docs // PART_DOCS,
        )

    def _encode(self, value: Any) -> Any:
        return None if value is DELETED else self.codec.dump_python(value, mode="json")

    async def _persist(self, batch: list[Changes]) -> bool:
        """Store the poll's changes; False when another instance stored a batch first."""
        try:
            await self._until_done(self.changes.persist, batch, owner=self.owner)
        except Fenced as e:
            # Another instance wrote a partition since we restored it: the rest of this poll
            # is void. Read them again and re-run the records (or lose them in the
            # rebalance). The batches stored before the fenced one are ours and kept: their
            # records are not run again, so their events go out now.
            log.warning("partition_fenced", version=str(e), partition=e.partition)
            kept = batch[: [changes.partition for changes in batch].index(e.partition)]
            for changes in batch:
                state, _ = await self._restore(changes.partition)
                self.partitions[changes.partition] = state
            await self._until_done(self._publish, self._kept_outboxes(kept))
            await self._rewind()
            return False
        return True

    def _kept_outboxes(self, kept: list[Changes]) -> list[Outgoing]:
        """What the batches a fenced persist stored send: their events, and the copies of
        their hand-offs whose target batch was not stored, without the mark that would
        have the target skip them (the target's batch of that number is another's)."""
        stored = {changes.partition for changes in kept}
        sent: list[Outgoing] = []
        for out in (out for changes in kept for out in changes.outbox):
            if not _ran_here(out):
                sent.append(out)
            elif out.key is None or self._owner_of(out.key) not in stored:
                sent.append(_unmarked(out))
        return sent

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **admin_client_options(self.settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=self.settings.runtime_linger_ms,
            partitioner=self._partitioner,
        )

    async def _publish(self, outbox: list[Outgoing]) -> None:
        if not outbox:
            return
        assert self._producer is not None
        try:
            sent = [
                await self._producer.send(out.topic, out.value, key=out.key, headers=_headers(out))
                for out in outbox
            ]
            await asyncio.gather(*sent)
        except OutOfOrderSequenceNumber as e:
            # Fatal to an idempotent producer (seen after a broker restart): every later send
            # fails the same way. A new producer sends the batch again; the ids are the same,
            # so a deduping consumer sees each event once.
            log.warning("producer_replaced", error=describe_error(e))
            await self._replace_producer()
            raise ConnectionError("the producer was replaced: publish the batch again") from e

    async def _replace_producer(self) -> None:
        old, self._producer = self._producer, self._new_producer()
        await self._producer.start()
        if old is not None:
            with contextlib.suppress(Exception):
                await old.stop()

    def _settle(self, batch: _Batch, changes: Changes) -> None:
        """Apply a persisted batch to its partition in memory."""
        state = batch.state
        state.next_seq = changes.seq + 1
        state.checkpoint = changes.checkpoint
        state.remember(changes.handled)
        state.gens[changes.gen] = max(state.gens.get(changes.gen, 0), changes.part)
        state.gen_docs += changes.docs
        state.since_snapshot += len(changes.values) + len(changes.timers) + 1
        for key, value in batch.view.writes.items():
            state.put(key, value)
        for timer_id, timer in batch.view.timer_writes.items():
            if timer is DELETED or state.beyond(timer):
                state.timers.pop(timer_id, None)
            else:
                state.timers[timer_id] = timer
                self.heap.push(state.partition, timer)
        state.evict(keep=self.max_keys, idle=self.idle, now=time.monotonic())

    async def _commit(self, plan: Plan, stored: list[Changes]) -> None:
        """Commit the batch's offsets while the next cycle polls and runs its rules, at most
        once per `runtime_commit_interval_ms` while records keep coming (held back till then;
        sent at once when a poll is idle, on a revocation and on a stop).

        The batch is stored (with its checkpoint) and published: a commit that never lands,
        or is held back when the process dies, only makes the next owner read records its
        state already holds, which it skips. The previous commit is awaited first, so
        commits land in order; a revocation and a stop wait for the last one (a committed
        offset below a stored checkpoint means "republish the last outbox" to the next
        owner)."""
        assert self._consumer is not None
        owned = {
            tp: (offset, _published_seq(self.partitions[tp.partition]))
            for tp, offset in plan.offsets.items()
            if tp.partition in self.partitions
        }
        for changes in stored:  # a batch of timers or of no new record moves no offset
            if changes.partition in self.partitions:
                owned.update(self._marks(changes.partition, owned))
        self._unsent_commits.update(owned)
        if time.monotonic() >= self._next_commit_at:
            await self._send_commits()

    async def _send_commits(self) -> None:
        """Commit the offsets held back, once the commit in flight has landed."""
        await self._commit_landed()
        owned, self._unsent_commits = self._unsent_commits, {}
        if owned:
            self._pending_commit = asyncio.create_task(self._commit_now(owned))
            interval = self.settings.runtime_commit_interval_ms / 1000
            self._next_commit_at = time.monotonic() + interval

    def _marks(
        self, partition: int, owned: dict[TopicPartition, tuple[int, str]]
    ) -> dict[TopicPartition, tuple[int, str]]:
        """Commits naming the partition's last published batch when the poll's offsets do
        not: its checkpoint again (the first input at 0 when it never read a record)."""
        if any(tp.partition == partition for tp in owned):
            return {}
        state = self.partitions[partition]
        checkpoint = state.checkpoint or {min(self.routes): 0}
        seq = _published_seq(state)
        return {TopicPartition(t, partition): (o, seq) for t, o in checkpoint.items()}

    async def _commit_now(self, owned: dict[TopicPartition, tuple[int, str]]) -> None:
        assert self._consumer is not None
        try:
            await self._until_done(self._consumer.commit, owned)
        except CommitFailedError:  # rebalanced meanwhile: the state is stored, the next owner skips
            log.warning("commit_failed_partitions_moved", partitions=sorted(map(str, owned)))

    async def _committed_all(self) -> None:
        """Commit what is held back and wait for it (a failure is logged, not raised)."""
        await self._send_commits()
        await self._commit_landed()

    async def _commit_landed(self) -> None:
        """Wait for the commit in flight, if any (its failure is logged, not raised)."""
        pending, self._pending_commit = self._pending_commit, None
        if pending is not None:
            try:
                await pending
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("commit_failed", error=describe_error(e))

    async def _rewind(self) -> None:
        """After an unexpected failure, read the uncommitted records again."""
        assert self._consumer is not None
        await self._committed_all()
        for tp in self._consumer.assignment():
            committed = await self._consumer.committed(tp)
            if committed is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)

    def _crash(self, point: str, outside: bool = True) -> None:
        """Stop dead at `point` when a test asks; a process-level crash point waits for a
        batch holding records from outside (a test's inputs), not the service's own start-up
        work on its internal topics."""
        if outside:
            faults.crash_at(f"runtime_{point}", self.settings.service_name)
        if self.crash_at == point:
            raise Crashed(point)

    async def _until_done(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Await `call(...)`, retrying while the database or the broker is unreachable."""
        while True:
            try:
                return await call(*args, **kwargs)
            except TRANSIENT_ERRORS as e:
                log.warning("infrastructure_unavailable_retrying", error=describe_error(e))
                await asyncio.sleep(self.settings.retry_backoff_s * 4)

    # Observability.

    async def lag(self) -> dict[tuple[str, int], int]:
        """Messages each assigned input partition is behind its end (for /metrics)."""
        consumer, lag = self._consumer, {}
        if consumer is None:
            return lag
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is not None:
                lag[(tp.topic, tp.partition)] = max(end - await consumer.position(tp), 0)
        return lag

    def timers_due(self, now: datetime) -> int:
        """Timers of the owned partitions due at `now` and not fired yet."""
        return sum(
            1
            for state in self.partitions.values()
            for timer in state.timers.values()
            if timer.due_at <= now
        )

    # Partitions.

    def _current_timer(self, partition: int, timer_id: str) -> Timer | None:
        state = self.partitions.get(partition)
        return None if state is None else state.timers.get(timer_id)

    async def _reach_horizon(self) -> None:
        """Bring into memory the stored timers that came within the horizon: each partition
        past half its horizon reads the timers due up to a full one from now. No snapshot
        runs meanwhile (it drops the documents read), and no batch (this is the loop)."""
        until = self.clock.now() + self.horizon
        late = [
            state
            for state in self.partitions.values()
            if state.horizon is not None and state.horizon < until - self.horizon / 2
        ]
        if not late:
            return
        async with self._compacting:
            for state in late:
                assert state.horizon is not None
                found = await self._until_done(
                    self.changes.timers_between, state.partition, state.horizon, until
                )
                async with self.lock:
                    if self.partitions.get(state.partition) is not state:
                        continue
                    for timer_id, encoded in found.items():
                        timer = decode_timer(timer_id, encoded)
                        state.timers[timer_id] = timer
                        self.heap.push(state.partition, timer)
                    state.horizon = until
                log.info("timers_reached", partition=state.partition, timers=len(found))

    async def revoke(self) -> None:
        """Stop processing every partition until the next assignment (the batch in flight ends).

        Their state is parked: no other instance processes a partition between its
        revocation and the assignment that follows, so one given back to us is still valid.
        """
        async with self.lock:
            await self._committed_all()
            self._parked.update(self.partitions)
            self.partitions = {}

    async def assign(self, partitions: Iterable[int]) -> None:
        """Own exactly `partitions`: take back the parked ones, restore the new ones."""
        wanted = set(partitions)
        async with self.lock:
            parked, self._parked = self._parked, {}
            held = {**parked, **self.partitions}
            self.partitions = {p: state for p, state in held.items() if p in wanted}
            new = sorted(wanted - set(self.partitions))
            began = time.perf_counter()
            restored = await asyncio.gather(*(self._restore(p) for p in new))
            pending = [(p, stored) for p, (_, stored) in zip(new, restored, strict=True)]
            committed = await self._until_done(
                self._committed_offsets, [p for p, stored in pending if stored.outbox]
            )
            for partition, (state, stored) in zip(new, restored, strict=True):
                self.partitions[partition] = state
                if stored.outbox and not _published(partition, stored, committed):
                    outbox = await self._until_done(self._checked_copies, stored.outbox)
                    await self._until_done(self._publish, outbox)
            if new:  # a rebalance that hands back parked partitions restores nothing
                self.restore_seconds = time.perf_counter() - began
                give_back()  # what the restore decoded and let go
            log.info(
                "partitions_assigned",
                partitions=sorted(wanted),
                restored=new,
                restore_ms=round((time.perf_counter() - began) * 1000),
            )

    async def _checked_copies(self, outbox: list[Outgoing]) -> list[Outgoing]:
        """An unpublished outbox as a restore sends it: each hand-off copy checked against
        the target's stored batch it names. A copy that batch ran is dropped; any other
        goes without its mark, for the target's owner to run (the ledger skips it if it ran
        in a later batch). The mark alone was not enough: a crash during the ordered insert
        can store the origin's batch and not the target's, and the target's next owner
        then stores a batch of that number without the event, so the copy, arriving after
        it, was skipped and lost."""
        ran: dict[tuple[int, int], set[str] | None] = {}
        sent: list[Outgoing] = []
        for out in outbox:
            mark = _mark(out)
            if mark is None:
                sent.append(out)
                continue
            target = self._owner_of(out.key) if out.key is not None else None
            handled: set[str] | None = None
            if target is not None:
                if (target, mark) not in ran:
                    ran[target, mark] = await self.changes.handled_in(target, mark)
                handled = ran[target, mark]
            if handled is None or _event_id(out) not in handled:
                sent.append(_unmarked(out))
        return sent

    async def _committed_offsets(
        self, partitions: list[int]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """What the group committed for `partitions` of every input, with the metadata."""
        if not partitions:
            return {}
        wanted = [TopicPartition(t, p) for t in sorted(self.routes) for p in partitions]
        try:
            async with admin_client(self.settings) as admin:
                return await admin.list_consumer_group_offsets(
                    self.settings.consumer_group, partitions=wanted
                )
        except KafkaError as e:
            if e.retriable:  # the coordinator moving or loading: asked again
                raise ConnectionError(describe_error(e)) from e
            # Not knowing must not stall the assignment: the last outboxes are published
            # again (their ids are the same; deduping consumers see each event once).
            log.warning("committed_offsets_unknown_republishing", error=describe_error(e))
            return {}

    async def _restore(self, partition: int) -> tuple[PartitionState[V], Restored]:
        """The partition as stored (retried while storage is unreachable)."""
        return await self._until_done(self._restore_once, partition)

    async def _restore_once(self, partition: int) -> tuple[PartitionState[V], Restored]:
        """Read the partition one document at a time: every value is decoded as it comes,
        and only the busy ones and the `max_keys` newest idle ones stay."""
        state: PartitionState[V] = PartitionState(
            partition,
            ledger_size=self.ledger_size,
            scanned=self.scanned,
            keep_recent_s=self.settings.runtime_keep_recent_s,
            cold=self._spill.store(partition),
        )
        keeper = _Keeper(state, self.codec.validate_python, self.idle, self.max_keys)
        horizon = self.clock.now() + self.horizon
        stored = await self.changes.restore_into(partition, keeper, horizon=horizon)
        keeper.finish()
        return self._partition(stored, state, horizon), stored

    def _partition(
        self, stored: Restored, state: PartitionState[V], horizon: datetime
    ) -> PartitionState[V]:
        """The rest of the partition's state from what `stored` holds (its values are in
        `state` already: the keeper put them there), timers due by `horizon`."""
        state.horizon = horizon
        for timer_id, encoded in stored.timers.items():
            timer = decode_timer(timer_id, encoded)
            if not state.beyond(timer):
                state.timers[timer_id] = timer
                self.heap.push(state.partition, timer)
        state.remember(stored.handled)
        state.checkpoint = stored.checkpoint
        state.next_seq = stored.next_seq
        state.gen, state.gen_docs, state.gens = stored.gen, stored.gen_docs, dict(stored.gens)
        state.since_snapshot, state.snapshot_keys = stored.since_snapshot, stored.base_keys
        if len(state.values) > self.max_keys:
            state.evict(keep=self.max_keys, idle=self.idle)
        return state

    async def compact_once(self, *, force: bool = False) -> int:
        """Snapshot each owned partition with enough to reclaim (`force`: anything); documents
        deleted."""
        due = [
            p
            for p, state in self.partitions.items()
            if state.needs_snapshot(
                min_docs=1 if force else self.snapshot_min_docs,
                max_docs=self.settings.runtime_snapshot_max_docs,
            )
        ]
        deleted = 0
        async with self._compacting:
            for partition in due:
                deleted += await self.compact(partition)
            if due:
                give_back()  # the snapshot's transient values: RSS back to what is kept
        self.compacted += deleted
        return deleted

    async def compact(self, partition: int) -> int:
        """Write the partition's state as a new generation, then drop the older ones.

        New batches go to the new generation from now on; the snapshot is built from
        storage (evicted keys included) up to the batches before it, streamed. A crash
        before the snapshot's marker leaves the old generations in charge; after it,
        restore ignores what is left of them and the next snapshot drops it.
        """
        async with self.lock:
            state = self.partitions.get(partition)
            if state is None:
                return 0
            gen = max([*state.gens, state.gen]) + 1
            old, upto = dict(state.gens), state.next_seq
            state.gen, state.gen_docs, state.since_snapshot = gen, 0, 0
            state.gens[gen] = 0
        snap = await self.changes.snapshot(
            partition, gen=gen, upto=upto, ledger_size=self.ledger_size, owner=self.owner
        )
        self._crash("after_snapshot")
        async with self.lock:
            if self.partitions.get(partition) is not state:
                return 0  # moved meanwhile: the next owner drops the old generations
            state.snapshot_keys = snap.keys
            state.gens[gen] = max(state.gens[gen], snap.parts)
            for stale in old:
                state.gens.pop(stale, None)
        deleted = 0
        for stale, parts in sorted(old.items()):
            deleted += await self.changes.drop_generation(
                partition, stale, parts=parts, before=upto
            )
        log.info("partition_compacted", partition=partition, gen=gen, deleted=deleted)
        return deleted

    async def _compact(self) -> None:
        while True:
            await asyncio.sleep(self._compact_every_s)
            try:
                await self.compact_once()
            except Crashed:
                self.crashed.set()
                return
            except Exception as e:
                log.warning("compaction_failed", error=describe_error(e))


class _Keeper:
    """What a streaming restore keeps of a partition's values: the newest version of each
    key; every busy value, and of the idle ones the `keep` newest (the others go to the
    partition's cold store at once)."""

    def __init__(
        self,
        state: PartitionState[Any],
        decode: Callable[[Any], Any],
        idle: Callable[[Any], bool],
        keep: int,
    ) -> None:
        self.state = state
        self.decode = decode
        self.idle = idle
        self.keep = keep
        self.kept: dict[str, tuple[int, Any]] = {}
        self.idle_kept: set[str] = set()
        self.oldest: list[tuple[int, str]] = []
        """Heap of (batch, key) of the idle values kept: the first to leave."""
        self.changed = ChangedKeys()
        """Key → the batch of the newest version offered so far (batches come in any order,
        the snapshot's values last): gone with the restore."""

    def offer(self, key: str, encoded: Any, seq: int | None) -> None:
        """Keep or let go of `key`'s value (a batch's beats the snapshot's, a later batch's an
        earlier one's)."""
        state = self.state
        changed = self.changed.get(key)
        if seq is None:
            if changed is not None:
                return  # changed after the snapshot
            order = -1
        else:
            if changed is not None and changed[0] >= seq:
                return
            order = seq
        self.idle_kept.discard(key)
        if key not in self.kept and key in state.left:
            state.cold.discard(key)  # let go with an older version
        if encoded is None:
            self.kept.pop(key, None)
            self.changed.set(key, order, gone=True)
            return
        if seq is not None:
            self.changed.set(key, seq)
        value = self.decode(encoded)
        self.kept[key] = (order, value)
        if self.idle(value) and not state.pinned(key):
            self.idle_kept.add(key)
            heapq.heappush(self.oldest, (order, key))
            while len(self.idle_kept) > self.keep:
                old, gone = heapq.heappop(self.oldest)
                if gone in self.idle_kept and self.kept[gone][0] == old:
                    self.idle_kept.discard(gone)
                    state.let_go(gone, self.kept.pop(gone)[1])

    def finish(self) -> None:
        """Put what was kept into the partition, least recently stored first."""
        for key, (_, value) in sorted(self.kept.items(), key=lambda item: item[1][0]):
            self.state.put(key, value)
        self.state.cold.flush()
        self.kept.clear()
        self.oldest.clear()
        self.changed = ChangedKeys()


class _Phases:
    """Times the phases of one cycle into `lexcare_runtime_phase_seconds`."""

    def __init__(self) -> None:
        self.last = time.perf_counter()

    def done(self, phase: str) -> None:
        """`phase` ended now (it began when the previous one ended)."""
        now = time.perf_counter()
        observability.RUNTIME_PHASE.labels(phase).observe(now - self.last)
        self.last = now


class _Rebalance(ConsumerRebalanceListener):
    """Lets a revocation wait for the batch in flight; restores what is assigned."""

    def __init__(self, runtime: Runtime[Any]) -> None:
        self.runtime = runtime

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Park every partition once the batch in flight is done."""
        await self.runtime.revoke()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Own exactly the assigned partitions, restored before the first fetch."""
        await self.runtime.assign(tp.partition for tp in assigned)


def _fetch_options(wait_ms: int) -> dict[str, int]:
    """The consumer's fetch: answered at the first record, or held up to `wait_ms` for a
    batch (a megabyte of records ends the wait sooner)."""
    if wait_ms <= 0:
        return {"fetch_min_bytes": 1}
    return {"fetch_min_bytes": 1 << 20, "fetch_max_wait_ms": wait_ms}


def _to_publish(batches: list[_Batch]) -> list[Outgoing]:
    """The cycle's records, once every batch of it is stored: all but the copies of the
    hand-offs that ran here. Those batches are stored, so a copy would only come back to
    be skipped; each stays in its batch's stored outbox, which a restore republishes when
    the batch may not have been (a crash before this publish)."""
    return [out for b in batches for out in b.outbox if not _ran_here(out)]


def _ran_here(out: Outgoing) -> bool:
    return _mark(out) is not None


def _mark(out: Outgoing) -> int | None:
    """The number of the target's batch that ran this hand-off copy (None: not a copy)."""
    for name, value in out.headers:
        if name == HANDED_HEADER:
            return int(value) if value.isdigit() else None
    return None


def _unmarked(out: Outgoing) -> Outgoing:
    """The copy without its mark: the target's owner runs it unless its ledger holds it."""
    return replace(out, headers=tuple(h for h in out.headers if h[0] != HANDED_HEADER))


def _event_id(out: Outgoing) -> str | None:
    """The id of the event an outgoing record carries (None if it cannot be read)."""
    if out.event is not None:
        return str(out.event.event_id)
    try:
        return str(orjson.loads(out.value)["event_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def _changed(batch: _Batch) -> bool:
    """Whether the batch has anything to store: values, timers (a rule that only moved a
    timer: left unstored, the timer stayed due and fired again at every cycle) or events."""
    return bool(batch.view.writes or batch.view.timer_writes or batch.outbox)


def _skipped_past(plan: Plan, partitions: dict[int, PartitionState[Any]], stored: set[int]) -> None:
    """Move the checkpoint of the partitions whose polled records stored nothing (handled
    before, or changing nothing) past them: a later batch of that partition's timers or
    hand-offs alone commits its checkpoint, which would otherwise take the group's offset
    back to the last stored batch's."""
    for tp, offset in plan.offsets.items():
        state = partitions.get(tp.partition)
        if tp.partition in stored or state is None:
            continue
        if offset > state.checkpoint.get(tp.topic, 0):
            state.checkpoint = {**state.checkpoint, tp.topic: offset}


def _published_seq(state: PartitionState[Any]) -> str:
    """The commit metadata naming the partition's last published batch."""
    return str(state.next_seq - 1)


def _published(
    partition: int, stored: Restored, committed: dict[TopicPartition, OffsetAndMetadata]
) -> bool:
    """Whether the partition's last stored batch was published: the group committed its
    number (commit metadata) or, for commits that carry none, its checkpoint."""
    last = stored.next_seq - 1
    marks = [
        int(c.metadata)
        for tp, c in committed.items()
        if tp.partition == partition and c.metadata.isdigit()
    ]
    if marks:
        return max(marks) >= last
    if not stored.checkpoint:
        return False
    for topic, offset in stored.checkpoint.items():
        done = committed.get(TopicPartition(topic, partition))
        if done is None or done.offset < offset:
            return False
    return True


def _headers(out: Outgoing) -> list[tuple[str, bytes]] | None:
    return [(k, v.encode()) for k, v in out.headers] or None


def _encode_timer(timer: Any) -> Any:
    return None if timer is DELETED else encode_timer(timer)


def _handled(batch: _Batch, topic: str, events: list[Event], started: float) -> None:
    """Record that `events` of `topic` ran (the ledger's ids and the counters)."""
    batch.handled.extend(str(event.event_id) for event in events)
    observability.HANDLED.labels(topic).inc(len(events))
    observability.LATENCY.labels(topic).observe(time.perf_counter() - started)


def _runs(
    queued: list[tuple[_Batch, int]], grouped: Callable[[_Batch, int], str | None]
) -> list[tuple[_Batch, list[int]]]:
    """Queued hand-offs in order, consecutive ones of one grouped topic for one target
    together (any other alone)."""
    runs: list[tuple[_Batch, list[int]]] = []
    last: tuple[_Batch, str] | None = None
    for target, index in queued:
        topic = grouped(target, index)
        if topic is not None and last is not None and last[0] is target and last[1] == topic:
            runs[-1][1].append(index)
        else:
            runs.append((target, [index]))
        last = (target, topic) if topic is not None else None
    return runs
