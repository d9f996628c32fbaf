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
   restore of `--keys` keys from each.
Prints the figures and their ratios; everything it creates is deleted at the end.
"""

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from bench.baseline import pass_through
from bench.infra import provide_infra
from shared.runtime.storage import Changes, ChangeStore
from shared.settings import LexcareSettings
from tests.kafka_tools import delete_topics
from tests.toy_service import ADDED, INPUTS, OUTPUTS, toy_runtime

PARTITIONS = 3
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def parse_args() -> argparse.Namespace:
    """The sizes of the run."""
    p = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__)
    p.add_argument("--events", type=int, default=20_000, help="toy events published")
    p.add_argument("--keys", type=int, default=500, help="distinct keys among them")
    p.add_argument("--batches", type=int, default=20, help="batches in the storage comparison")
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


async def run_toy(settings: LexcareSettings, db, events: int) -> tuple[float, int, int, float]:
    """The toy service at saturation: events/s, round trips; then compaction's deletes, s."""
    runtime = toy_runtime(settings, db, compact_every_s=3600)
    await runtime.start()
    try:
        await wait_for(lambda: runtime.consumed > 0)
        started, first = time.monotonic(), runtime.consumed
        await wait_for(lambda: runtime.consumed >= events)
        rate = (events - first) / (time.monotonic() - started)
        round_trips = runtime.changes.round_trips
        started = time.monotonic()
        deleted = await runtime.compact_once()
        return rate, round_trips, deleted, time.monotonic() - started
    finally:
        await runtime.stop()


async def storage_choice(
    bootstrap: str, db, topic: str, *, keys: int, batches: int
) -> dict[str, float]:
    """Per-batch persist time and restore time: MongoDB inserts versus a changelog topic."""
    store = ChangeStore(db, "choice")
    await store.prepare()
    value = {"total": 1, "events": 1}
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
        admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka)
        await admin.start()
        names = [settings.topic(n) for n in (*INPUTS, *OUTPUTS, "sink", f"{ADDED}.dlq")]
        topics = [NewTopic(n, PARTITIONS, 1) for n in names]
        changelog = settings.topic("changelog")
        topics.append(NewTopic(changelog, 1, 1, topic_configs={"cleanup.policy": "compact"}))
        await admin.create_topics(topics)
        await admin.close()
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
            rate, round_trips, deleted, compaction_s = await run_toy(settings, db, args.events)
            choice = await storage_choice(
                infra.kafka, db, changelog, keys=args.keys, batches=args.batches
            )
        finally:
            await client.drop_database(settings.mongo_db)
            await client.close()
            await delete_topics(infra.kafka, prefix=run)
    print(f"events: {args.events} over {args.keys} keys, {PARTITIONS} partitions")
    print(f"raw aiokafka pass-through      {raw.per_second:10,.0f} events/s   ratio 1.0000")
    print(
        f"toy service on shared.runtime  {rate:10,.0f} events/s   ratio {rate / raw.per_second:.4f}"
    )
    print(f"database round trips per consumed event (hot path)  {round_trips / args.events:.4f}")
    print(
        f"compaction afterwards: {deleted} superseded versions deleted in {compaction_s:.1f} s "
        f"({deleted / args.events:.3f} per event)"
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


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
