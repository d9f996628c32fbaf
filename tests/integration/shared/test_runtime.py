"""The stateful runtime over the real broker and database, with a toy counter service."""

import asyncio
import gc
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from shared import observability
from shared.clock import FakeClock
from shared.runtime import engine, storage
from shared.runtime.engine import CRASH_POINTS, Crashed, Runtime
from shared.runtime.state import View
from shared.runtime.storage import BATCH_VALUES, Changes, ChangeStore, batch_docs, bucket_of
from shared.settings import LexcareSettings
from shared.topics import dlq
from tests.conftest import eventually
from tests.kafka_tools import RawKafka, key_on
from tests.runtime_state import stored_state
from tests.toy_service import (
    ADDED,
    CONTACT,
    COUNTED,
    FILED,
    INPUTS,
    OPENED,
    REMINDED,
    REMOVED,
    RESOLVED,
    counted_id,
    create_topics,
    toy_runtime,
)

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
PARTITIONS = 3


@pytest.fixture
def settings(settings_for) -> LexcareSettings:
    return settings_for(
        LexcareSettings,
        service_name="toy",
        partitions=PARTITIONS,
        batch_timeout_ms=20,
        runtime_keep_recent_s=0,  # the caps the tests set decide alone what leaves memory
    )


@pytest.fixture
async def toy_topics(settings: LexcareSettings) -> None:
    await create_topics(settings)


@pytest.fixture
async def start(settings, db, toy_topics):
    running: list[Runtime[Any]] = []

    async def start_one(**options: Any) -> Runtime[Any]:
        runtime = toy_runtime(settings, db, **options)
        await runtime.start()
        running.append(runtime)
        return runtime

    yield start_one
    for runtime in running:
        await runtime.kill()


@pytest.fixture
async def kafka(infra, settings):
    async with RawKafka(infra.kafka, settings.topic_prefix) as raw:
        yield raw


def event(topic: str, case_id: str, *, at: datetime = T0, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": topic,
        "occurred_at": at.isoformat(),
        "producer": "test",
        "case_id": case_id,
        **fields,
    }


async def send(kafka: RawKafka, events: list[dict[str, Any]], *, pause: float = 0.0) -> None:
    for e in events:
        await kafka.send(e["event_type"], e, key=e["case_id"])
        if pause:
            await asyncio.sleep(pause)


def expected_totals(events: list[dict[str, Any]]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for e in events:
        totals[e["case_id"]] += e.get("amount", 1) * (1 if e["event_type"] == ADDED else -1)
    return dict(totals)


async def stored_totals(db) -> dict[str, int]:
    values = (await stored_state(db, PARTITIONS)).values
    return {key: value["total"] for key, value in values.items() if value["kind"] == "tally"}


async def test_every_input_is_counted_once_and_a_duplicate_changes_nothing(start, kafka, db):
    runtime = await start()
    events = [event(ADDED, f"case-{i % 5}") for i in range(40)]
    events += [event(REMOVED, "case-0", amount=2) for _ in range(3)]
    await send(kafka, events)
    await send(kafka, events[:10])  # redelivered by their producer: same ids
    counted = await kafka.distinct(COUNTED, count=len(events))
    assert {e["event_id"] for e in counted} == {counted_id(e) for e in events}
    assert len(await kafka.settle(COUNTED)) == len(events)  # nothing published twice
    assert (
        await stored_totals(db)
        == expected_totals(events)
        == {
            "case-0": 2,
            **{f"case-{i}": 8 for i in range(1, 5)},
        }
    )

    assert await runtime.compact_once(force=True) > 0
    stored = db["state_changes"]
    assert await stored.count_documents({"ns": {"$in": ["v", "t", "batch"]}}) == 0
    snapshots = await stored.find({"ns": "sv"}).to_list(None)
    assert sum(len(orjson.loads(d["items"])) for d in snapshots) == 5  # one per key left
    assert await stored_totals(db) == expected_totals(events)


async def test_bad_input_and_a_rule_that_always_fails_are_dead_lettered(start, kafka, settings, db):
    await start()
    await kafka.send(ADDED, b"{not json", key="case-1")
    await send(kafka, [event(ADDED, "case-1", poison=True), event(ADDED, "case-1")])
    dead = await kafka.read(dlq(ADDED), until=lambda records: len(records) >= 2)
    reasons = [dict(r.headers) for r in dead]
    assert reasons[0]["x-error"].startswith(b"not valid JSON")
    assert reasons[1]["x-error"] == b"RuntimeError: poisoned"
    for headers in reasons:
        assert headers["x-consumer"] == settings.consumer_group.encode()
        assert headers["x-original-topic"] == settings.topic(ADDED).encode()
    assert dead[0].value == b"{not json"
    counted = await kafka.distinct(COUNTED, count=1)
    assert counted[0]["total"] == 1  # the poisoned event's change was discarded
    assert await stored_totals(db) == {"case-1": 1}


class FailsFirst:
    """`call`, except that its first `times` calls for which `when(*args)` holds raise an
    error that is no broker blip; `left` counts the failures still to come."""

    def __init__(self, call: Any, times: int, why: str, when: Any = lambda *args: True):
        self.call, self.left, self.why, self.when = call, times, why, when

    async def __call__(self, *args: Any) -> Any:
        if self.left and self.when(*args):
            self.left -= 1
            raise RuntimeError(self.why)
        return await self.call(*args)


async def test_a_poll_and_a_seek_back_that_fail_unexpectedly_do_not_end_the_loop(start, kafka, db):
    """A poll fails half way, then the seek back to its records fails twice with an error
    that is no broker blip (until session 19 that ended the runtime's loop: the service
    stayed up, ready, and consumed nothing): both are logged, the seek is tried again,
    and every input is counted once."""
    runtime = await start()
    polls = FailsFirst(runtime.run_once, 1, "a poll failed half way")
    seeks = FailsFirst(runtime._rewind, 2, "the seek was refused")
    runtime.run_once, runtime._rewind = polls, seeks  # type: ignore[method-assign]
    await eventually(lambda: (polls.left, seeks.left) == (0, 0))
    events = [event(ADDED, f"case-{i % 3}") for i in range(12)]
    await send(kafka, events)
    counted = await kafka.distinct(COUNTED, count=len(events))
    assert {e["event_id"] for e in counted} == {counted_id(e) for e in events}
    await eventually(lambda: _totals_reach(db, expected_totals(events)))
    assert await stored_totals(db) == {f"case-{i}": 4 for i in range(3)}
    assert not runtime.crashed.is_set()


async def test_a_publish_refused_after_its_batch_was_stored_sends_the_events_once(start, kafka, db):
    """The publish of a stored batch fails with an error that is no broker blip: the poll
    is read again and its events go out, once, and the totals count each input once."""
    runtime = await start()
    publishes = FailsFirst(runtime._publish, 1, "the publish was refused", when=bool)
    runtime._publish = publishes  # type: ignore[method-assign]
    events = [event(ADDED, f"case-{i % 2}") for i in range(6)]
    await send(kafka, events)
    counted = await kafka.distinct(COUNTED, count=len(events))
    assert publishes.left == 0
    assert {e["event_id"] for e in counted} == {counted_id(e) for e in events}
    assert len(await kafka.settle(COUNTED)) == len(events)  # nothing published twice
    assert await stored_totals(db) == {"case-0": 3, "case-1": 3}


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_crash_between_persist_and_commit_loses_nothing_and_counts_nothing_twice(
    point, start, kafka, db
):
    first = await start()
    first.crash_at = point
    events = [event(ADDED, f"case-{i % 4}") for i in range(20)]
    await send(kafka, events)
    await eventually(first.crashed.is_set)
    await first.kill()
    await start()
    counted = await kafka.distinct(COUNTED, count=len(events))
    assert {e["event_id"] for e in counted} == {counted_id(e) for e in events}
    await eventually(lambda: _totals_reach(db, expected_totals(events)))
    assert await stored_totals(db) == {f"case-{i}": 5 for i in range(4)}


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_timer_batch_cut_short_by_a_crash_is_published_after_the_restart(
    point, start, kafka
):
    """A batch of due timers alone moves no offset: its outbox is republished all the same."""
    clock = FakeClock(T0)
    first = await start(clock=clock)
    await send(kafka, [event(ADDED, "case-t", at=T0)])
    await kafka.distinct(COUNTED, count=1)
    first.crash_at = point
    clock.advance(timedelta(hours=2))
    await eventually(first.crashed.is_set)
    await first.kill()
    await start(clock=clock)
    reminded = await kafka.distinct(REMINDED, count=1)
    assert reminded[0]["total"] == 1


async def test_a_published_timer_batch_is_not_published_again_by_the_next_owner(start, kafka):
    """The commit after a batch of timers names that batch: a restart republishes nothing."""
    clock = FakeClock(T0)
    first = await start(clock=clock)
    await send(kafka, [event(ADDED, "case-t", at=T0)])
    await kafka.distinct(COUNTED, count=1)
    clock.advance(timedelta(hours=2))
    await kafka.distinct(REMINDED, count=1)
    await first.stop()
    await start(clock=clock)
    await send(kafka, [event(ADDED, "case-t", at=T0 + timedelta(hours=2))])
    await kafka.distinct(COUNTED, count=2)  # the restart's republishing came before it
    reminded = await kafka.settle(REMINDED)  # up to its end: a republished copy is there
    assert len(reminded) == 1


async def _totals_reach(db, expected: dict[str, int]) -> bool:
    return await stored_totals(db) == expected


async def test_a_second_instance_joining_and_leaving_midstream_changes_no_result(start, kafka, db):
    one = await start()
    events = [
        event(ADDED if i % 4 else REMOVED, f"case-{i % 7}", amount=1 + i % 3) for i in range(150)
    ]
    sending = asyncio.create_task(send(kafka, events, pause=0.01))
    await kafka.distinct(COUNTED, count=30)
    two = await start()
    await eventually(lambda: one.partitions and two.partitions, timeout=20)
    for runtime in (one, two):  # RangeAssignor: partition p of both inputs on one member
        owned = runtime._consumer.assignment()
        by_topic = [{tp.partition for tp in owned if tp.topic.endswith(t)} for t in INPUTS]
        assert by_topic[0] == by_topic[1] == set(runtime.partitions)
    await kafka.distinct(COUNTED, count=90)
    await two.stop()
    await sending
    counted = await kafka.distinct(COUNTED, count=len(events))
    assert {e["event_id"] for e in counted} == {counted_id(e) for e in events}
    await eventually(lambda: _totals_reach(db, expected_totals(events)))


async def test_a_timer_scheduled_before_a_restart_fires_once_after_it(start, kafka):
    clock = FakeClock(T0)
    first = await start(clock=clock)
    await send(kafka, [event(ADDED, "case-t", at=T0)])
    await kafka.distinct(COUNTED, count=1)
    await first.stop()
    clock.advance(timedelta(hours=2))
    second = await start(clock=clock)
    reminded = await kafka.distinct(REMINDED, count=1)
    assert reminded[0]["total"] == 1
    await eventually(
        lambda: second.partitions and not any(s.timers for s in second.partitions.values())
    )
    await second.stop()
    third = await start(clock=clock)
    await eventually(lambda: len(third.partitions) == PARTITIONS)
    records = await kafka.settle(REMINDED)
    assert {r.value for r in records} == {records[0].value}  # one reminder (maybe resent)
    assert not any(s.timers for s in third.partitions.values())


async def test_a_timer_that_only_moves_itself_is_stored_and_fires_once(start, kafka):
    """A batch whose only change is a timer is stored like any other: the timer it moved
    is not due again at the next cycle, and the next owner holds it moved."""
    clock = FakeClock(T0)
    first = await start(clock=clock)
    fired: list[datetime] = []

    def snooze(state: View[Any], timer: Any, ctx: Any) -> None:  # no value, no event
        fired.append(timer.due_at)
        ctx.schedule(timer.id, due_at=ctx.now + timedelta(hours=1), kind="remind", payload={})

    first.on_timer("remind")(snooze)
    await send(kafka, [event(ADDED, "case-s", at=T0)])
    await kafka.distinct(COUNTED, count=1)
    clock.advance(timedelta(hours=2))
    await eventually(lambda: fired)
    await asyncio.sleep(1.0)  # dozens of cycles: a timer left due would fire in each
    assert fired == [T0 + timedelta(hours=1)]
    await first.stop()
    second = await start(clock=clock)
    await eventually(lambda: len(second.partitions) == PARTITIONS)
    timers = [t for s in second.partitions.values() for t in s.timers.values()]
    assert [t.due_at for t in timers] == [T0 + timedelta(hours=3)]


async def test_a_timer_beyond_the_horizon_stays_in_storage_and_fires_once_on_time(start, kafka):
    clock = FakeClock(T0)
    first = await start(clock=clock, timer_horizon_s=600)  # the reminder is due in an hour
    await send(kafka, [event(ADDED, "case-far", at=T0), event(ADDED, "case-moved", at=T0)])
    await kafka.distinct(COUNTED, count=2)
    assert not any(s.timers for s in first.partitions.values())
    await first.stop()
    second = await start(clock=clock, timer_horizon_s=600)
    await eventually(lambda: len(second.partitions) == PARTITIONS)
    assert not any(s.timers for s in second.partitions.values())  # restored: storage only
    clock.advance(timedelta(minutes=30))  # case-moved's reminder moves to 1 h 30 from now
    await send(kafka, [event(ADDED, "case-moved", at=T0 + timedelta(minutes=30))])
    await kafka.distinct(COUNTED, count=3)
    clock.advance(timedelta(minutes=26))  # past half the horizon: read up to 10 min ahead
    await eventually(
        lambda: (
            [t.id for s in second.partitions.values() for t in s.timers.values()]
            == ["remind/case-far"]
        )
    )
    clock.advance(timedelta(minutes=5))
    [reminded] = await kafka.distinct(REMINDED, count=1)
    assert (reminded["case_id"], reminded["total"]) == ("case-far", 1)
    clock.advance(timedelta(minutes=30))  # case-moved's, at its new time, once
    reminded = await kafka.distinct(REMINDED, count=2)
    assert sorted((r["case_id"], r["total"]) for r in reminded) == [
        ("case-far", 1),
        ("case-moved", 2),
    ]
    await second.stop()


async def test_idle_keys_leave_memory_and_come_back_when_an_event_needs_them(start, kafka):
    runtime = await start(max_keys=1, idle=lambda tally: True)
    keys = [f"case-{i}" for i in range(6)]
    events = [event(ADDED, key) for key in keys]
    await send(kafka, events)
    await kafka.distinct(COUNTED, count=6)
    # Published before the batch is applied to memory: wait for the eviction.
    await eventually(lambda: sum(len(s.values) for s in runtime.partitions.values()) <= 3)
    again = [event(ADDED, key) for key in keys]
    await send(kafka, again)
    counted = await kafka.distinct(COUNTED, count=12)
    again_ids = {counted_id(e) for e in again}
    last = {e["case_id"]: e["total"] for e in counted if e["event_id"] in again_ids}
    assert last == dict.fromkeys(keys, 2)
    # The outputs are published before their batch is applied to memory (and evicts).
    await eventually(lambda: all(len(s.values) <= 1 for s in runtime.partitions.values()))


def contact(sender: str, customer: str) -> dict[str, Any]:
    """A toy contact from `sender`, whose customer is `customer` (no case yet)."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": CONTACT,
        "occurred_at": T0.isoformat(),
        "producer": "test",
        "sender_id": sender,
        "customer_id": customer,
    }


async def send_pairs(kafka: RawKafka, customers: int) -> list[dict[str, Any]]:
    """Two simultaneous contacts per customer, from two senders on different partitions."""
    sent = []
    for c in range(customers):
        senders = [key_on((c + side) % PARTITIONS, PARTITIONS, f"s{c}") for side in (0, 1)]
        pair = [contact(sender, f"customer-{c}") for sender in senders]
        await asyncio.gather(*(kafka.send(CONTACT, e, key=e["sender_id"]) for e in pair))
        sent += pair
    return sent


def assert_one_case_per_customer(
    contacts: list[dict[str, Any]], opened: list[dict[str, Any]], filed: list[dict[str, Any]]
) -> None:
    """Exactly one case opened per customer, every contact filed once, on that case."""
    customers = {c["customer_id"] for c in contacts}
    per_customer = Counter(e["customer_id"] for e in opened)
    assert set(per_customer) == customers
    assert set(per_customer.values()) == {1}, f"one case per customer: {per_customer}"
    case_of = {e["customer_id"]: e["case_id"] for e in opened}
    assert sorted(e["contact_id"] for e in filed) == sorted(c["event_id"] for c in contacts)
    assert all(e["case_id"] == case_of[e["customer_id"]] for e in filed)


@pytest.mark.parametrize("instances", [1, 2])
async def test_two_simultaneous_contacts_of_one_customer_on_two_partitions_open_one_case(
    instances, start, kafka, db, settings
):
    runtimes = [await start() for _ in range(instances)]
    await eventually(lambda: all(r.partitions for r in runtimes), timeout=20)
    owned = [p for r in runtimes for p in r.partitions]
    assert sorted(owned) == list(range(PARTITIONS))  # the instances share the partitions
    contacts = await send_pairs(kafka, customers=30)
    filed = await kafka.distinct(FILED, count=len(contacts))
    opened = [orjson.loads(r.value) for r in await kafka.settle(OPENED)]
    assert len({e["event_id"] for e in opened}) == len(opened) == 30  # none published twice
    assert_one_case_per_customer(contacts, opened, filed)
    stored = (await stored_state(db, PARTITIONS)).values
    assert {k: v["contacts"] for k, v in stored.items()} == {
        f"customer/customer-{c}": 2 for c in range(30)
    }
    internal = settings.topic(RESOLVED)
    assert all(internal in r.internal for r in runtimes)
    assert {len(r._consumer.partitions_for_topic(internal)) for r in runtimes} == {PARTITIONS}


def handed_off(topic: str) -> float:
    return observability.HANDED_OFF.labels(topic)._value.get()


async def test_an_internal_event_for_an_owned_partition_runs_in_the_cycle_that_emitted_it(
    start, kafka, db, settings
):
    """Handed off: filed at once, and its record not published (the batch that ran it is
    stored before the cycle publishes, so a copy would only come back to be skipped)."""
    internal = settings.topic(RESOLVED)
    before = handed_off(internal)
    runtime = await start()
    await eventually(lambda: len(runtime.partitions) == PARTITIONS, timeout=20)
    contacts = await send_pairs(kafka, customers=10)
    filed = await kafka.distinct(FILED, count=len(contacts))
    assert handed_off(internal) - before == len(contacts)
    assert len(await kafka.settle(FILED)) == len(contacts)
    assert await kafka.settle(RESOLVED) == []
    assert runtime.consumed == len(contacts)  # nothing came back through Kafka
    opened = [orjson.loads(r.value) for r in await kafka.settle(OPENED)]
    assert_one_case_per_customer(contacts, opened, filed)
    stored = (await stored_state(db, PARTITIONS)).values
    assert {k: v["contacts"] for k, v in stored.items()} == {
        f"customer/customer-{c}": 2 for c in range(10)
    }


async def test_a_cycle_s_batches_are_freed_when_it_ends_without_the_garbage_collector(start, kafka):
    """A handed-off record names its origin batch by partition, not by reference: a
    reference tied the cycle's batches into a reference cycle that only the collector
    freed, so every batch, its records and its events outlived the cycle into the
    collector's oldest generation (100,000–330,000 objects per full collection)."""
    runtime = await start()
    await eventually(lambda: len(runtime.partitions) == PARTITIONS, timeout=20)
    gc.collect()
    gc.disable()  # what reference counting alone frees
    try:
        contacts = await send_pairs(kafka, customers=10)
        await kafka.distinct(FILED, count=len(contacts))
        await eventually(lambda: runtime.consumed >= len(contacts))
        left = [o for o in gc.get_objects() if isinstance(o, engine._Batch)]
        assert len(left) <= PARTITIONS  # at most the cycle under way
    finally:
        gc.enable()


async def test_a_handed_off_event_needing_a_value_that_left_memory_reads_it_back_and_runs(
    start, kafka, db, settings
):
    """Read back in the cycle (not left to the copy, which a later cycle's hand-offs would
    overtake): every one handed off, each filed once."""
    internal = settings.topic(RESOLVED)
    runtime = await start(max_keys=1, idle=lambda value: True)
    await eventually(lambda: len(runtime.partitions) == PARTITIONS, timeout=20)
    first = await send_pairs(kafka, customers=6)
    await kafka.distinct(FILED, count=len(first))
    await eventually(lambda: runtime.consumed >= len(first))
    before = handed_off(internal)
    second = await send_pairs(kafka, customers=6)  # the customers' records left memory
    filed = await kafka.distinct(FILED, count=len(first) + len(second))
    assert handed_off(internal) - before == len(second)  # none went round through Kafka
    assert runtime.reloads > 0  # the customers' values came back from the cold stores
    assert len(await kafka.settle(FILED)) == len(first) + len(second)
    opened = [orjson.loads(r.value) for r in await kafka.settle(OPENED)]
    assert_one_case_per_customer(first + second, opened, filed)
    stored = (await stored_state(db, PARTITIONS)).values
    assert {k: v["contacts"] for k, v in stored.items()} == {
        f"customer/customer-{c}": 4 for c in range(6)
    }


async def test_a_fenced_poll_sends_what_it_stored_before_the_fenced_partition(start, kafka):
    """Another owner stored the hand-off's target partition first (this instance a zombie
    there): the contact's own batch is stored all the same (an ordered insert), so its
    records are not run again; its hand-off goes out without its mark, and the target's
    owner files the contact. Before, the stored batch's records were never published."""
    runtime = await start()
    await eventually(lambda: len(runtime.partitions) == PARTITIONS, timeout=20)
    sender, customer = key_on(0, PARTITIONS, "fenced-sender"), key_on(1, PARTITIONS, "fenced")
    target = runtime.partitions[1]
    theirs = Changes(1, target.next_seq, {}, {}, [], [], dict(target.checkpoint), gen=target.gen)
    await runtime.changes.collection.insert_many(batch_docs(theirs, owner="another instance"))
    sent = contact(sender, customer)
    await kafka.send(CONTACT, sent, key=sender)
    filed = await kafka.distinct(FILED, count=1)
    assert [e["contact_id"] for e in filed] == [sent["event_id"]]
    # Stored after theirs. The batch settles once its publish is acknowledged, which can
    # come after a consumer has read the event, so wait for it.
    await eventually(lambda: runtime.partitions[1].next_seq > theirs.seq + 1)


@pytest.mark.parametrize("ledger_size", [None, 1], ids=["ledger", "one-id-ledger"])
@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_crash_after_a_hand_off_loses_no_contact_and_opens_one_case(
    point, ledger_size, start, kafka, db
):
    """The restart republishes the unpublished outbox, copies of hand-offs included: each
    runs where its target's batch was not stored, and is skipped by its mark where it was,
    even when the ledger forgot its id (one id): every contact filed once."""
    first = await start(ledger_size=ledger_size)
    await eventually(lambda: len(first.partitions) == PARTITIONS, timeout=20)
    first.crash_at = point
    contacts = await send_pairs(kafka, customers=10)
    await eventually(first.crashed.is_set)
    await first.kill()
    await start(ledger_size=ledger_size)
    filed = await kafka.distinct(FILED, count=len(contacts))
    opened = await kafka.distinct(OPENED, count=10)
    assert_one_case_per_customer(contacts, opened, filed)
    expected = {f"customer/customer-{c}": 2 for c in range(10)}

    async def stored_counts() -> bool:
        values = (await stored_state(db, PARTITIONS)).values
        return {k: v["contacts"] for k, v in values.items()} == expected

    await eventually(stored_counts)


async def test_a_crash_that_stored_a_hand_off_s_origin_but_not_its_target_loses_nothing(
    start, kafka
):
    """The ordered insert stopped after the contact's batch (its partition first), before
    the batch that ran its hand-off; the target's next owner then stored a batch of that
    number without it (here: inserted as another instance's). The restore republishes the
    copy without its mark, so it runs: the contact is filed once. With the mark it was
    skipped (`seq < next_seq`) and the contact lost."""
    first = await start()
    await eventually(lambda: len(first.partitions) == PARTITIONS, timeout=20)
    sender, customer = key_on(0, PARTITIONS, "torn-sender"), key_on(1, PARTITIONS, "torn")
    target = first.partitions[1]
    persist = first.changes.persist

    async def torn(batch: list[Changes], *, owner: str) -> None:
        assert [c.partition for c in batch] == [0, 1]  # the contact's, then the hand-off's
        await persist(batch[:1], owner=owner)
        raise Crashed("during the insert")

    first.changes.persist = torn
    sent = contact(sender, customer)
    await kafka.send(CONTACT, sent, key=sender)
    await eventually(first.crashed.is_set)
    await first.kill()
    theirs = Changes(1, target.next_seq, {}, {}, [], [], dict(target.checkpoint), gen=target.gen)
    await first.changes.collection.insert_many(batch_docs(theirs, owner="the next owner"))
    await start()
    filed = await kafka.distinct(FILED, count=1)
    assert [e["contact_id"] for e in filed] == [sent["event_id"]]
    assert len(await kafka.settle(FILED)) == 1


async def test_a_crash_between_a_snapshot_and_the_old_generation_s_delete_restores_the_state(
    start, kafka, db
):
    clock = FakeClock(T0)  # the reminders stay pending
    first = await start(clock=clock, max_keys=2, idle=lambda tally: True)  # some evicted
    events = [event(ADDED, f"case-{i % 6}", amount=1 + i % 4) for i in range(60)]
    await send(kafka, events)
    await kafka.distinct(COUNTED, count=len(events))
    await eventually(lambda: first.consumed >= len(events))  # the last batch applied too
    before = {p: (dict(s.values), dict(s.timers), set(s.seen)) for p, s in first.partitions.items()}
    first.crash_at = "after_snapshot"
    with pytest.raises(Crashed):
        await first.compact_once(force=True)
    await first.kill()
    stored = db["state_changes"]
    snapshot = await stored.find_one({"ns": "gen"})  # the new generation is complete
    assert await stored.count_documents({"ns": "gen"}) == 1
    old = {"partition": snapshot["partition"], "gen": 0}
    assert await stored.count_documents(old) > 0  # the old one is still there
    second = await start(clock=clock)
    await eventually(lambda: len(second.partitions) == PARTITIONS)
    for partition, (values, timers, seen) in before.items():
        state = second.partitions[partition]
        assert values.items() <= state.values.items()  # and the evicted ones are back
        assert state.timers == timers and set(state.seen) == seen
    restored = {k: v.total for s in second.partitions.values() for k, v in s.values.items()}
    assert restored == expected_totals(events)
    assert await stored_totals(db) == expected_totals(events)
    assert await second.compact_once() > 0  # what the crash left is dropped
    assert await stored.count_documents(old) == 0
    assert await stored_totals(db) == expected_totals(events)
    await second.kill()
    await start(clock=clock, max_keys=1, idle=lambda tally: True)  # reloads from snapshots
    more = [event(ADDED, f"case-{i}") for i in range(6)]
    await send(kafka, more)
    counted = await kafka.distinct(COUNTED, count=len(events) + len(more))
    more_ids = {counted_id(e) for e in more}
    totals = {e["case_id"]: e["total"] for e in counted if e["event_id"] in more_ids}
    assert totals == {key: total + 1 for key, total in expected_totals(events).items()}


async def test_a_clean_restart_or_a_rebalance_republishes_nothing(start, kafka, db):
    clock = FakeClock(T0)  # no reminder: each partition's last batch published `counted`
    one = await start(clock=clock)
    events = [event(ADDED, f"case-{i % 5}") for i in range(30)]
    await send(kafka, events)
    await kafka.distinct(COUNTED, count=len(events))
    two = await start(clock=clock)  # a rebalance: each partition restored by one of the two
    await eventually(lambda: one.partitions and two.partitions, timeout=20)
    await two.stop()  # another one: its partitions go back
    await eventually(lambda: len(one.partitions) == PARTITIONS, timeout=20)
    await one.stop()
    three = await start(clock=clock)  # a clean restart
    await eventually(lambda: len(three.partitions) == PARTITIONS)
    assert len(await kafka.settle(COUNTED)) == len(events)


async def test_compaction_keeps_storage_bounded_with_the_settings_cadence(
    settings, db, toy_topics, kafka
):
    tuned = settings.model_copy(
        update={"runtime_compact_every_s": 0.1, "runtime_snapshot_min_docs": 20}
    )
    runtime = toy_runtime(tuned, db)
    await runtime.start()
    try:
        events = [event(ADDED, f"case-{i % 3}") for i in range(300)]
        await send(kafka, events, pause=0.002)
        await kafka.distinct(COUNTED, count=len(events))
        await eventually(lambda: runtime.compacted > 0)
        assert await db["state_changes"].count_documents({}) < len(events)
        assert await stored_totals(db) == expected_totals(events)
    finally:
        await runtime.kill()


async def test_per_key_documents_of_the_earlier_layout_are_looked_for_once_per_partition(db):
    """Each look is a scan of the whole collection on FerretDB; no version writes them now."""
    store = ChangeStore(db, "looked")
    await store.prepare()
    await store.persist([Changes(0, 0, {"a": 1}, {}, ["e0"], [], {"t": 1})], owner="me")
    before = store.round_trips
    assert await store._base(0) == (None, False)
    assert store.round_trips - before == 3  # the markers, then per-key values and timers
    await store.snapshot(0, gen=1, upto=1, ledger_size=10, owner="me")
    before = store.round_trips
    base, older = await store._base(0)
    assert base is not None and base["gen"] == 1 and not older
    assert store.round_trips - before == 1  # the markers only
    await db["legacy_changes"].insert_one(  # a partition written by an earlier version
        {"_id": "0/v/a/0", "partition": 0, "seq": 0, "ns": "v", "key": "a", "value": 1}
    )
    assert (await ChangeStore(db, "legacy")._base(0))[1] is True


async def test_dropping_a_generation_spares_the_batches_a_successor_wrote_to_it(db):
    store = ChangeStore(db, "zombie")
    await store.prepare()
    for seq in range(2):  # ours
        await store.persist(
            [Changes(0, seq, {"a": seq}, {}, [f"e{seq}"], [], {"t": seq + 1})], owner="old"
        )
    await store.snapshot(0, gen=1, upto=2, ledger_size=10, owner="old")
    # The partition moved meanwhile: its new owner wrote to generation 0, not knowing 1 yet.
    await store.persist([Changes(0, 2, {"a": 2}, {}, ["e2"], [], {"t": 3})], owner="new")
    await store.drop_generation(0, 0, parts=0, before=2)
    state = await store.restore(0)
    assert {key: value for key, (value, _) in state.values.items()} == {"a": 2}
    assert state.handled == ["e0", "e1", "e2"] and state.checkpoint == {"t": 3}


async def test_a_partition_of_large_batches_is_read_back_whole(db):
    # 110 batches of ~500 KB: FerretDB filled a reply with 101 of them (83 MB seen in the
    # benchmark), over the driver's 48 MB limit: restore failed with a ProtocolError.
    store = ChangeStore(db, "large")
    await store.prepare()
    big = "x" * 5_000
    for seq in range(110):
        changed = {f"k{seq}/{n}": {"text": big, "n": n} for n in range(100)}
        await store.persist(
            [Changes(0, seq, changed, {}, [f"e{seq}"], [], {"t": seq + 1})], owner="me"
        )
    state = await store.restore(0)
    assert len(state.values) == 110 * 100
    assert state.values["k109/99"][0] == {"text": big, "n": 99}


class _Everything:
    """A sink that keeps every value offered, newest version first (as `_Keeper` decides)."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[Any, int]] = {}

    def offer(self, key: str, encoded: Any, seq: int | None) -> None:
        order = -1 if seq is None else seq
        if key in self.values and self.values[key][1] >= order:
            return
        self.values[key] = (encoded, order)


async def _grown_partition(db) -> ChangeStore:
    """Batches, a snapshot of them, then batches changing, deleting and adding keys; batches
    2 and 5 take more than `CHUNK_BYTES`, so their values are stored in chunks."""
    store = ChangeStore(db, "streamed")
    await store.prepare()
    timer = {"due_at": T0.isoformat(), "kind": "remind", "payload": {}}
    for seq in range(6):
        pad = {"pad": "x" * 1_000} if seq in (2, 5) else {}
        changed = {f"k{n}": {"v": seq, "n": n} | pad for n in range(seq * 40, seq * 40 + 60)}
        timers = {f"t{seq}": timer} | ({"t0": None} if seq == 4 else {})
        await store.persist(
            [Changes(0, seq, changed, timers, [f"e{seq}"], [], {"t": seq + 1})], owner="me"
        )
    await store.snapshot(0, gen=1, upto=4, ledger_size=100, owner="me")
    for seq in range(6, 9):
        changed = {"k1": {"v": seq}, "k45": None, f"new{seq}": {"v": seq}}
        await store.persist(
            [Changes(0, seq, changed, {"t1": None}, [f"e{seq}"], [], {"t": seq + 1}, gen=1)],
            owner="me",
        )
    return store


async def test_a_streamed_restore_reads_the_same_state_as_a_whole_one(db):
    store = await _grown_partition(db)
    assert await store.collection.count_documents({"ns": BATCH_VALUES}) > 1  # batch 5's
    marker = await store.collection.find_one({"ns": "gen"})
    assert marker["keys"] <= 200 and marker["buckets"] > 1  # spread by bytes, not count
    whole = await store.restore(0)
    sink = _Everything()
    streamed = await store.restore_into(0, sink)
    live = {key: value for key, (value, order) in sink.values.items() if value is not None}
    assert live == {key: value for key, (value, _) in whole.values.items()}
    assert {key for key, (value, _) in sink.values.items() if value is None} >= set(whole.deleted)
    assert streamed.timers == whole.timers and streamed.handled == whole.handled
    assert streamed.checkpoint == whole.checkpoint and streamed.next_seq == whole.next_seq
    assert (streamed.base, streamed.base_keys) == (whole.base, whole.base_keys)
    assert (streamed.gen, streamed.gen_docs, streamed.gens) == (
        whole.gen,
        whole.gen_docs,
        whole.gens,
    )
    assert streamed.since_snapshot == whole.since_snapshot


async def test_a_restore_keeps_the_newest_idle_values_and_finds_the_others_again(db, settings):
    store = await _grown_partition(db)
    whole = {key: value for key, (value, _) in (await store.restore(0)).values.items()}
    runtime: Runtime[Any] = Runtime(
        settings, db, value_type=dict[str, Any], name="streamed", max_keys=50, idle=lambda v: True
    )
    state, _ = await runtime._restore(0)
    assert len(state.values) == 50  # the 50 newest, the others left memory
    assert {"new6", "new7", "new8", "k1"} <= set(state.values)
    for key, value in whole.items():  # every other key is in the partition's cold store
        found = state.lookup(key)
        assert runtime.codec.dump_python(found, mode="json") == value, key
    assert View(state).get("k45") is None  # deleted after the snapshot


async def test_a_restore_keeps_every_scanned_key_in_memory_and_lists_them_in_order(db, settings):
    store = await _grown_partition(db)
    whole = (await store.restore(0)).values
    runtime: Runtime[Any] = Runtime(
        settings,
        db,
        value_type=dict[str, Any],
        name="streamed",
        max_keys=5,
        idle=lambda v: True,
        scanned=("k1",),
    )
    state, _ = await runtime._restore(0)
    listed = sorted(key for key in whole if key.startswith("k1"))
    assert len(listed) > 5 and list(View(state).scan("k1")) == listed
    assert set(listed) <= set(state.values)  # idle, past max_keys, and still in memory
    assert len(state.values) <= len(listed) + 5


async def in_buckets(
    store: ChangeStore, *, gen: int, buckets: int, keys: Iterable[str]
) -> dict[str, Any]:
    """Each key's value in the document of snapshot `gen` its bucket names (None: not there)."""
    found: dict[str, Any] = {}
    for key in keys:
        doc = await store.collection.find_one({"_id": f"0/g{gen}/sv/{bucket_of(key, buckets)}"})
        found[key] = None if doc is None else orjson.loads(doc["items"]).get(key)
    return found


async def test_a_streamed_snapshot_holds_what_the_whole_partition_holds(db):
    store = await _grown_partition(db)  # its first snapshot was streamed too
    before = await store.restore(0)
    snap = await store.snapshot(0, gen=2, upto=9, ledger_size=100, owner="me")
    after = await store.restore(0)
    assert after.base == (2, snap.buckets) and after.deleted == {}
    values = {key: value for key, (value, _) in before.values.items()}
    assert {key: value for key, (value, _) in after.values.items()} == values
    assert snap.keys == len(values) and "k45" not in values and values["k1"] == {"v": 8}
    assert after.timers == before.timers and after.checkpoint == before.checkpoint == {"t": 9}
    assert after.handled == before.handled[-100:]
    found = await in_buckets(store, gen=2, buckets=snap.buckets, keys=values)
    assert found == values  # each key is in the document its bucket names


async def test_a_snapshot_doubles_its_buckets_as_keys_grow_and_each_key_follows(db):
    store = ChangeStore(db, "doubling")
    await store.prepare()
    first = {f"a{n}": {"n": n} for n in range(150)}
    await store.persist([Changes(0, 0, first, {}, ["e0"], [], {"t": 1})], owner="me")
    snap = await store.snapshot(0, gen=1, upto=1, ledger_size=10, owner="me")
    assert (snap.keys, snap.buckets) == (150, 1)
    grown = {f"b{n}": {"n": n} for n in range(400)} | {f"a{n}": None for n in range(50)}
    await store.persist([Changes(0, 1, grown, {}, ["e1"], [], {"t": 2}, gen=1)], owner="me")
    snap = await store.snapshot(0, gen=2, upto=2, ledger_size=10, owner="me")
    expected = {k: v for k, v in (first | grown).items() if v is not None}
    assert (snap.keys, snap.buckets) == (500, 4)  # 1 → 2 → 4: ≥ ceil(550 / 200)
    found = await in_buckets(store, gen=2, buckets=4, keys=first | grown)
    assert {k: v for k, v in found.items() if v is not None} == expected
    assert all(found[f"a{n}"] is None for n in range(50))
    docs = await db["doubling_changes"].count_documents({"gen": 2, "ns": "sv"})
    assert docs == 4


async def test_a_snapshot_merges_the_changes_spilled_for_each_old_bucket(db, monkeypatch, tmp_path):
    """The changes go to a file per bucket of the last snapshot: every change lands once,
    the newest version of a key changed twice, deletions too."""
    monkeypatch.setattr(storage, "SPILL_FLUSH", 100)  # to the files after a frame or two
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the spill files go
    store = ChangeStore(db, "spilled")
    await store.prepare()
    first = {f"a{n}": {"n": n} for n in range(700)}
    await store.persist([Changes(0, 0, first, {}, ["e0"], [], {"t": 1})], owner="me")
    snap = await store.snapshot(0, gen=1, upto=1, ledger_size=10, owner="me")
    assert snap.buckets == 4
    changed = {f"a{n}": {"n": -n} for n in range(0, 700, 3)} | {f"a{n}": None for n in range(5)}
    added = {f"b{n}": {"b": n} for n in range(300)}
    await store.persist([Changes(0, 1, changed, {}, ["e1"], [], {"t": 2}, gen=1)], owner="me")
    await store.persist([Changes(0, 2, added, {}, ["e2"], [], {"t": 3}, gen=1)], owner="me")
    again = {"a6": {"n": "newest"}}  # a key changed in two batches: the later one counts
    await store.persist([Changes(0, 3, again, {}, ["e3"], [], {"t": 4}, gen=1)], owner="me")
    snap = await store.snapshot(0, gen=2, upto=4, ledger_size=10, owner="me")
    expected = {k: v for k, v in (first | changed | added | again).items() if v is not None}
    assert snap.keys == len(expected) == 995 and snap.buckets == 8
    restored = await store.restore(0)
    assert {k: v for k, v in restored.values.items()} == {k: (v, None) for k, v in expected.items()}
    found = await in_buckets(store, gen=2, buckets=8, keys=expected)
    assert found == expected  # each key in the document its bucket names
    assert os.listdir(tmp_path) == []  # the spill files went with the snapshot


async def test_a_streamed_restore_finds_the_generations_a_crash_left_unread(db):
    store = await _grown_partition(db)
    await store.snapshot(0, gen=2, upto=9, ledger_size=100, owner="me")
    coll = store.collection  # generation 1 partly dropped: one value document left
    await coll.delete_many({"partition": 0, "gen": {"$in": [0, 1]}, "_id": {"$ne": "0/g1/sv/0"}})
    await coll.insert_one(  # generation 3 cut short: a value document, no marker
        {"_id": "0/g3/sv/0", "partition": 0, "gen": 3, "part": 0, "seq": 8, "ns": "sv"}
    )
    whole = await store.restore(0)
    streamed = await store.restore_into(0, _Everything())
    assert streamed.gens == whole.gens == {1: 0, 2: 0, 3: 0}
    assert (streamed.gen, streamed.next_seq) == (whole.gen, whole.next_seq) == (3, 9)
    assert streamed.base == whole.base and streamed.base[0] == 2


async def test_a_timer_batch_never_commits_below_what_a_poll_of_duplicates_committed(
    start, kafka, settings
):
    """A poll of records all handled before changes no state, yet its offsets are committed;
    a later batch of that partition's timers alone commits the state's checkpoint, which
    must have moved with them (it once went back to the last stored batch's offsets)."""
    clock = FakeClock(T0)
    runtime = await start(clock=clock)
    added = event(ADDED, "case-t", at=T0)
    await send(kafka, [added])
    await kafka.distinct(COUNTED, count=1)
    await send(kafka, [added] * 5)  # redelivered: the same id, dropped by the ledger
    topic = next(t for t in runtime.routes if t.endswith(ADDED))
    tp = TopicPartition(topic, runtime._owner_of(b"case-t"))

    async def committed_all_six() -> bool:
        return await runtime._consumer.committed(tp) == 6

    await eventually(committed_all_six)
    clock.advance(timedelta(hours=2))
    await kafka.distinct(REMINDED, count=1)
    await asyncio.sleep(0.5)  # the next cycles' commits land
    await runtime._committed_all()
    assert await committed_all_six()
