"""What a small batch's durability costs, in wall time and in CPU, process by process.

`python -m bench.small_batches [--cycles 1000] [--sizes 1,2,5]`. At a steady pace the
runtime's polls carry one or two records, so what it pays per cycle is paid per record.
For batches of each size, `--cycles` cycles one after the other (as the runtime runs
them), three ways:
1. **events only**: the batch's events sent and their acks awaited once (what every
   cycle publishes anyway);
2. **MongoDB, then events** (today's runtime): `ChangeStore.persist` of the batch's values,
   ledger ids and outbox (one `insert_many`), then the events;
3. **changelog with the events**: the values and a batch marker sent to a compacted
   changelog topic in the same produce as the events, acks awaited once;
4. **changelog in a transaction**: the events and the values in one Kafka transaction
   with the consumed offset (aiokafka's transactional producer: what makes such a batch
   all-or-nothing, as Kafka Streams' exactly-once does).
Prints milliseconds per cycle of wall time and of CPU in this process, the broker, FerretDB
and PostgreSQL (read from /proc, as `bench.cpu` does). Everything it creates is deleted.
"""

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from pymongo import AsyncMongoClient

from bench import cpu
from bench.infra import provide_infra
from shared.kafka import admin_client
from shared.runtime.context import Outgoing
from shared.runtime.storage import Changes, ChangeStore
from shared.settings import LexcareSettings
from tests.kafka_tools import delete_topics

GROUPS = ("benchmark", "kafka", "ferretdb", "postgres")
EVENT = orjson.dumps(
    {
        "event_id": str(uuid.uuid4()),
        "case_id": str(uuid.uuid4()),
        "legal_field": "land",
        "person_id": "lawyer-07",
        "occurred_at": "2026-12-03T07:00:00+07:00",
        "producer": "routing",
        "reason": "knows the field, fewest open cases",
        "fee": {"amount": 5_000_000, "currency": "VND"},
        "padding": "x" * 300,
    }
)
"""An event of a realistic size (≈ 500 bytes)."""
VALUE = {"case_id": str(uuid.uuid4()), "person": "lawyer-07", "field": "land", "open": 3}


def parse_args() -> argparse.Namespace:
    """The sizes of the run."""
    p = argparse.ArgumentParser(prog="python -m bench.small_batches", description=__doc__)
    p.add_argument("--cycles", type=int, default=1000, help="cycles per way and size")
    p.add_argument("--sizes", default="1,2,5", help="records per batch (comma list)")
    return p.parse_args()


async def timed(cycles: int, cycle: Callable[[int], Awaitable[None]]) -> dict[str, float]:
    """Milliseconds per cycle: wall time, and CPU by process group."""
    await cycle(-1)  # connections made, metadata read
    before = cpu.read({})
    started = time.monotonic()
    for n in range(cycles):
        await cycle(n)
    wall = time.monotonic() - started
    after = cpu.read({})
    used_before, used_after = before.used, after.used
    out = {"wall": wall / cycles * 1000}
    for group in GROUPS:
        out[group] = (used_after.get(group, 0.0) - used_before.get(group, 0.0)) / cycles * 1000
    return out


async def main(args: argparse.Namespace) -> None:
    """Run the three ways at each size; print the table."""
    run = f"bench{uuid.uuid4().hex[:8]}"
    sizes = [int(s) for s in args.sizes.split(",") if s]
    with provide_infra() as infra:
        settings = LexcareSettings(kafka=infra.kafka, topic_prefix=f"{run}.", log_level="WARNING")
        events, changelog = settings.topic("events"), settings.topic("changelog")
        async with admin_client(settings) as admin:
            await admin.create_topics(
                [
                    NewTopic(events, 3, 1),
                    NewTopic(changelog, 3, 1, topic_configs={"cleanup.policy": "compact"}),
                ]
            )
        client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
        db = client[f"{run}_small"]
        store = ChangeStore(db, "small")
        await store.prepare()
        producer = AIOKafkaProducer(
            bootstrap_servers=infra.kafka, acks="all", enable_idempotence=True
        )
        await producer.start()
        transactional = AIOKafkaProducer(
            bootstrap_servers=infra.kafka, acks="all", transactional_id=f"{run}-txn"
        )
        await transactional.start()
        group = f"{run}-group"
        seq = 0

        def keys(size: int, n: int) -> list[bytes]:
            return [b"case-%d-%d" % (n, i) for i in range(size)]

        async def send(batch: list[tuple[str, bytes, bytes]]) -> None:
            sent = [await producer.send(t, v, key=k) for t, k, v in batch]
            await asyncio.gather(*sent)

        results: dict[tuple[str, int], dict[str, float]] = {}
        try:
            for size in sizes:

                async def events_only(n: int, size: int = size) -> None:
                    await send([(events, k, EVENT) for k in keys(size, n)])

                async def mongo_then_events(n: int, size: int = size) -> None:
                    nonlocal seq
                    seq += 1
                    batch = keys(size, n)
                    outbox = [Outgoing(events, k, EVENT) for k in batch]
                    changes = Changes(
                        0,
                        seq,
                        {k.decode(): VALUE for k in batch},
                        {},
                        [str(uuid.uuid4()) for _ in batch],
                        outbox,
                        {events: seq},
                    )
                    await store.persist([changes], owner="bench")
                    await send([(events, k, EVENT) for k in batch])

                async def changelog_with_events(n: int, size: int = size) -> None:
                    nonlocal seq
                    seq += 1
                    batch = keys(size, n)
                    marker = orjson.dumps({"seq": seq, "records": size, "checkpoint": seq})
                    await send(
                        [(events, k, EVENT) for k in batch]
                        + [(changelog, k, orjson.dumps(VALUE)) for k in batch]
                        + [(changelog, b"marker-0", marker)]
                    )

                async def changelog_in_transaction(n: int, size: int = size) -> None:
                    batch = keys(size, n)
                    async with transactional.transaction():
                        sent = [await transactional.send(events, EVENT, key=k) for k in batch]
                        sent += [
                            await transactional.send(changelog, orjson.dumps(VALUE), key=k)
                            for k in batch
                        ]
                        await transactional.send_offsets_to_transaction(
                            {TopicPartition(events, 0): max(n, 0) + 1}, group
                        )
                    await asyncio.gather(*sent)

                for name, way in (
                    ("events only", events_only),
                    ("MongoDB, then events", mongo_then_events),
                    ("changelog with the events", changelog_with_events),
                    ("changelog in a transaction", changelog_in_transaction),
                ):
                    results[(name, size)] = await timed(args.cycles, way)
        finally:
            await producer.stop()
            await transactional.stop()
            await client.drop_database(db.name)
            await client.close()
            await delete_topics(infra.kafka, prefix=run)
    print(f"{args.cycles} cycles per row, one after the other; ms per cycle")
    print(f"{'way':28} {'records':>7} {'wall':>7} " + " ".join(f"{g:>9}" for g in GROUPS))
    for (name, size), row in results.items():
        figures = " ".join(f"{row[g]:9.3f}" for g in GROUPS)
        print(f"{name:28} {size:7d} {row['wall']:7.2f} {figures}")
    for size in sizes:
        base = results[("events only", size)]
        for name in (
            "MongoDB, then events",
            "changelog with the events",
            "changelog in a transaction",
        ):
            row = results[(name, size)]
            cpu_added = sum(row[g] - base[g] for g in GROUPS)
            print(
                f"{size} record(s): {name} adds {row['wall'] - base['wall']:.2f} ms wall, "
                f"{cpu_added:.2f} ms CPU per cycle to the events alone"
            )


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
