"""The stateful runtime at saturation, next to a raw aiokafka pass-through, in one run.

`python -m bench.runtime [--events 20000] [--keys 500]` publishes `--events` toy `added`
events over `--keys` keys to a 3-partition topic, then measures:
1. the raw pass-through (bench.baseline) over that topic: the ceiling;
2. the toy service (tests/toy_service.py: a tally per key, a `counted` event per input, a
   timer per key) on shared.runtime: events/s from its first batch to its last commit, and
   database round trips per consumed event (persist, restore, reloads); compaction of the
   superseded versions is run after, and counted apart;
3. the two durable-state choices for one batch of 200 changed keys: one `insert_many` into
   MongoDB versus 200 records sent to a compacted changelog topic (acks=all), and the
   restore of `--keys` keys from each;
4. compaction before and after, on the same `--compact-versions` versions of `--keys` keys
   written twice: step 1's deletes of superseded versions by `_id` in `$in` chunks of
   1,000, versus a snapshot generation and one `delete_many` of the old generation by
   `partition` and `gen` (equality); restore time before and after each;
5. restore at start of one partition holding `--restore-keys` keys (read and decoded into
   typed values), from batches only and from a snapshot.
Prints the figures and their ratios; everything it creates is deleted at the end.
"""

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from bench.baseline import pass_through
from bench.infra import provide_infra
from shared.kafka import admin_client
from shared.runtime import Runtime
from shared.runtime.storage import PART_DOCS, Changes, ChangeStore, value_doc_id
from shared.settings import LexcareSettings
from tests.kafka_tools import delete_topics
from tests.toy_service import ADDED, INPUTS, OUTPUTS, Tally, toy_runtime

PARTITIONS = 3
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def parse_args() -> argparse.Namespace:
    """The sizes of the run."""
    p = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__)
    p.add_argument("--events", type=int, default=20_000, help="toy events published")
    p.add_argument("--keys", type=int, default=500, help="distinct keys among them")
    p.add_argument("--batches", type=int, default=20, help="batches in the storage comparison")
    p.add_argument(
        "--compact-versions", type=int, default=20_000, help="versions in the compaction run"
    )
    p.add_argument("--restore-keys", type=int, default=100_000, help="keys in the restore run")
    return p.parse_args()


async def publish(bootstrap: str, topic: str, *, events: int, keys: int) -> None:
    """Publish the toy events as fast as the producer goes."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = []
        for n in range(events):
            body = {
                "event_id": str(uuid.uuid4()),
                "event_type": ADDED,
                "occurred_at": T0.isoformat(),
                "producer": "bench",
                "case_id": f"case-{n % keys}",
            }
            sent.append(
                await producer.send(topic, orjson.dumps(body), key=body["case_id"].encode())
            )
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def wait_for(condition: Callable[[], bool]) -> None:
    """Return once `condition()` holds (checked every 5 ms)."""
    while True:
        if condition():
            return
        await asyncio.sleep(0.005)


async def run_toy(settings: LexcareSettings, db: AsyncDatabase, events: int) -> dict[str, float]:
    """The toy service at saturation, compacting at the settings' cadence: events/s, round
    trips, documents kept at the end; then a last compaction's deletes and seconds."""
    runtime = toy_runtime(settings, db)
    await runtime.start()
    try:
        await wait_for(lambda: runtime.consumed > 0)
        started, first = time.monotonic(), runtime.consumed
        await wait_for(lambda: runtime.consumed >= events)
        rate = (events - first) / (time.monotonic() - started)
        round_trips = runtime.changes.round_trips
        compacted_during = runtime.compacted
        kept = await runtime.changes.collection.count_documents({})
        started = time.monotonic()
        deleted = await runtime.compact_once(force=True)
        return {
            "rate": rate,
            "round_trips": round_trips,
            "compacted_during": compacted_during,
            "kept": kept,
            "deleted": deleted,
            "compaction_s": time.monotonic() - started,
            "left": await runtime.changes.collection.count_documents({}),
        }
    finally:
        await runtime.stop()


async def write_versions(
    store: ChangeStore, *, versions: int, keys: int, per_batch: int
) -> tuple[float, int]:
    """Store `versions` versions of `keys` keys in partition 0, in parts as the runtime
    does: ms per batch, and the highest part written."""
    value = Tally(total=1, events=1).model_dump()
    batches = max(1, versions // per_batch)
    written = 0
    started = time.monotonic()
    for seq in range(batches):
        changed = {f"case-{(seq * per_batch + i) % keys}": value for i in range(per_batch)}
        handled = [f"event-{seq}-{i}" for i in range(per_batch)]
        part = written // PART_DOCS
        changes = Changes(0, seq, changed, {}, handled, [], {"t": seq + 1}, part=part)
        await store.persist([changes], owner="bench")
        written += len(changed) + 1
    return (time.monotonic() - started) / batches * 1000, part


async def timed_restore(store: ChangeStore, runtime: Runtime[Any]) -> tuple[float, int]:
    """Restore partition 0 as an assignment does (read, then decode): seconds, keys."""
    runtime.changes = store  # not started: it restores from the collection measured
    started = time.monotonic()
    state, _ = await runtime._restore(0)
    return time.monotonic() - started, len(state.values)  # max_keys above the keys: all kept


async def delete_by_ids(store: ChangeStore, batches: int, parts: int, chunk: int = 1_000) -> int:
    """Step 1's compaction: the superseded versions' ids, deleted in `$in` chunks."""
    latest = {
        value_doc_id(0, key, ("batch", seq))
        for key, (_, seq) in (await store.restore(0)).values.items()
        if seq is not None
    }
    docs = await store.collection.find({"partition": 0, "ns": "v"}, {"_id": 1}).to_list(None)
    doomed = [d["_id"] for d in docs if d["_id"] not in latest]
    for start in range(0, len(doomed), chunk):
        await store.collection.delete_many({"_id": {"$in": doomed[start : start + chunk]}})
    return len(doomed)


async def snapshot_and_drop(store: ChangeStore, batches: int, parts: int) -> int:
    """Step 2's compaction: generation 1 of partition 0, then generation 0 dropped."""
    await store.snapshot(0, gen=1, upto=batches, ledger_size=100_000, owner="bench")
    return await store.drop_generation(0, 0, parts=parts, before=batches)


async def compaction_before_after(
    db: AsyncDatabase, runtime: Runtime[Any], *, versions: int, keys: int
) -> dict[str, float]:
    """The same versions compacted both ways: deletes/s, and restore before and after."""
    figures: dict[str, float] = {}
    for name, compact in (("ids", delete_by_ids), ("gen", snapshot_and_drop)):
        store = ChangeStore(db, f"compact_{name}")
        await store.prepare()
        figures[f"{name}_persist_ms"], parts = await write_versions(
            store, versions=versions, keys=keys, per_batch=200
        )
        figures[f"{name}_restore_before_s"], _ = await timed_restore(store, runtime)
        started = time.monotonic()
        figures[f"{name}_deleted"] = await compact(store, versions // 200, parts)
        figures[f"{name}_s"] = time.monotonic() - started
        figures[f"{name}_restore_after_s"], restored_keys = await timed_restore(store, runtime)
        figures[f"{name}_kept"] = await store.collection.count_documents({})
        assert restored_keys == keys
    return figures


async def restore_at_scale(
    db: AsyncDatabase, runtime: Runtime[Any], *, keys: int
) -> dict[str, float]:
    """One partition of `keys` keys restored from its batches, then from a snapshot."""
    store = ChangeStore(db, "restore")
    await store.prepare()
    started = time.monotonic()
    _, parts = await write_versions(store, versions=keys, keys=keys, per_batch=1_000)
    written = time.monotonic() - started
    from_batches, counted = await timed_restore(store, runtime)
    started = time.monotonic()
    await snapshot_and_drop(store, max(1, keys // 1_000), parts)
    snapshot = time.monotonic() - started
    from_snapshot, again = await timed_restore(store, runtime)
    assert counted == again == keys
    return {"write_s": written, "batches_s": from_batches, "snapshot_s": snapshot} | {
        "from_snapshot_s": from_snapshot
    }


async def storage_choice(
    bootstrap: str, db: AsyncDatabase, topic: str, *, keys: int, batches: int
) -> dict[str, float]:
    """Per-batch persist time and restore time: MongoDB inserts versus a changelog topic."""
    store = ChangeStore(db, "choice")
    await store.prepare()
    value = Tally(total=1, events=1).model_dump()
    started = time.monotonic()
    for seq in range(batches):
        changed = {f"case-{(seq * 200 + i) % keys}": value for i in range(200)}
        await store.persist([Changes(0, seq, changed, {}, [], [], {"t": seq})], owner="bench")
    mongo_batch = (time.monotonic() - started) / batches
    started = time.monotonic()
    restored = await store.restore(0)
    mongo_restore = time.monotonic() - started
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    started = time.monotonic()
    for seq in range(batches):
        sent = [
            await producer.send(
                topic, orjson.dumps(value), key=b"case-%d" % ((seq * 200 + i) % keys)
            )
            for i in range(200)
        ]
        await asyncio.gather(*sent)
    kafka_batch = (time.monotonic() - started) / batches
    await producer.stop()
    started = time.monotonic()
    reader = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await reader.start()
    latest: dict[bytes, bytes] = {}
    while len(latest) < min(keys, batches * 200):
        for records in (await reader.getmany(timeout_ms=200)).values():
            latest.update((r.key, r.value) for r in records)
    kafka_restore = time.monotonic() - started
    await reader.stop()
    assert len(restored.values) == len(latest)
    return {
        "mongo_batch_ms": mongo_batch * 1000,
        "changelog_batch_ms": kafka_batch * 1000,
        "mongo_restore_s": mongo_restore,
        "changelog_restore_s": kafka_restore,
    }


async def main(args: argparse.Namespace) -> None:
    """Run the three measures and print them."""
    run = f"bench{uuid.uuid4().hex[:8]}"
    with provide_infra() as infra:
        settings = LexcareSettings(
            service_name="toy",
            kafka=infra.kafka,
            mongo_url=infra.mongo_url,
            topic_prefix=f"{run}.",
            mongo_db_prefix=run,
            partitions=PARTITIONS,
            log_level="WARNING",
        )
        names = [settings.topic(n) for n in (*INPUTS, *OUTPUTS, "sink", f"{ADDED}.dlq")]
        topics = [NewTopic(n, PARTITIONS, 1) for n in names]
        changelog = settings.topic("changelog")
        topics.append(NewTopic(changelog, 1, 1, topic_configs={"cleanup.policy": "compact"}))
        async with admin_client(settings) as admin:
            await admin.create_topics(topics)
        client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
        db = client[settings.mongo_db]
        try:
            await publish(infra.kafka, settings.topic(ADDED), events=args.events, keys=args.keys)
            raw = await pass_through(
                infra.kafka,
                settings.topic(ADDED),
                settings.topic("sink"),
                f"{run}-raw",
                args.events,
            )
            toy = await run_toy(settings, db, args.events)
            choice = await storage_choice(
                infra.kafka, db, changelog, keys=args.keys, batches=args.batches
            )
            runtime = toy_runtime(settings, db)  # not started: decodes restored partitions
            compaction = await compaction_before_after(
                db, runtime, versions=args.compact_versions, keys=args.keys
            )
            at_scale = await restore_at_scale(db, runtime, keys=args.restore_keys)
        finally:
            await client.drop_database(settings.mongo_db)
            await client.close()
            await delete_topics(infra.kafka, prefix=run)
    print(f"events: {args.events} over {args.keys} keys, {PARTITIONS} partitions")
    print(f"raw aiokafka pass-through      {raw.per_second:10,.0f} events/s   ratio 1.0000")
    rate = toy["rate"]
    print(
        f"toy service on shared.runtime  {rate:10,.0f} events/s   ratio {rate / raw.per_second:.4f}"
    )
    trips = toy["round_trips"] / args.events
    print(f"database round trips per consumed event (hot path and compaction)  {trips:.4f}")
    print(
        f"storage after the run: {toy['kept']:,.0f} documents kept "
        f"({toy['compacted_during']:,.0f} deleted by compaction during it); a last "
        f"compaction deleted {toy['deleted']:,.0f} in {toy['compaction_s']:.2f} s, "
        f"{toy['left']:,.0f} left"
    )
    mongo, kafka = choice["mongo_batch_ms"], choice["changelog_batch_ms"]
    print(
        f"persist 200 changed keys: MongoDB insert_many {mongo:.1f} ms, "
        f"changelog topic {kafka:.1f} ms (ratio {mongo / kafka:.2f})"
    )
    print(
        f"restore {args.keys} keys: MongoDB {choice['mongo_restore_s'] * 1000:.0f} ms, "
        f"changelog topic {choice['changelog_restore_s'] * 1000:.0f} ms"
    )
    print_compaction(compaction, versions=args.compact_versions, keys=args.keys)
    print(
        f"restore at start, {args.restore_keys:,} keys in one partition (written in "
        f"{at_scale['write_s']:.1f} s): from batches {at_scale['batches_s'] * 1000:,.0f} ms, "
        f"from a snapshot {at_scale['from_snapshot_s'] * 1000:,.0f} ms "
        f"(snapshot written and old generation dropped in {at_scale['snapshot_s']:.1f} s)"
    )


def print_compaction(c: dict[str, float], *, versions: int, keys: int) -> None:
    """Compaction before (deletes by id) and after (generations), with ratios."""
    before, after = c["ids_deleted"] / c["ids_s"], c["gen_deleted"] / c["gen_s"]
    print(f"compaction of {versions:,} versions of {keys} keys (one partition):")
    print(
        f"  before, by _id $in chunks: {c['ids_deleted']:,.0f} deleted in {c['ids_s']:.2f} s "
        f"= {before:,.0f}/s, {c['ids_kept']:,.0f} documents kept"
    )
    print(
        f"  after, snapshot + delete_many(partition, gen): {c['gen_deleted']:,.0f} deleted in "
        f"{c['gen_s']:.2f} s (snapshot included) = {after:,.0f}/s, "
        f"{c['gen_kept']:,.0f} documents kept   ratio {after / before:.1f}"
    )
    print(
        f"  persist one batch of 200 keys: {c['ids_persist_ms']:.1f} ms / "
        f"{c['gen_persist_ms']:.1f} ms; restore {keys} keys before compaction "
        f"{c['ids_restore_before_s'] * 1000:.0f} ms / {c['gen_restore_before_s'] * 1000:.0f} ms,"
        f" after {c['ids_restore_after_s'] * 1000:.0f} ms / "
        f"{c['gen_restore_after_s'] * 1000:.0f} ms (ratio to before "
        f"{c['gen_restore_after_s'] / c['gen_restore_before_s']:.2f})"
    )


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
