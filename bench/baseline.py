"""The ceiling: a raw aiokafka consume → produce pass-through of the benchmark's contacts.

A consumer group reads batches (`getmany`), every record is decoded and re-encoded with
orjson (what any service does at least) and sent to an output topic; the batch's offsets
are committed once its sends are acknowledged: at-least-once, like the services, but with
one commit per poll instead of one per message, and no database.
"""

import asyncio
import time
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


@dataclass(frozen=True)
class PassThrough:
    """Result of one pass-through run."""

    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Events per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def relay(value: bytes) -> bytes:
    """What the pass-through does to each message: decode and re-encode the JSON."""
    return orjson.dumps(orjson.loads(value))


async def pass_through(
    bootstrap: str, source: str, sink: str, group: str, expected: int, timeout: float = 120.0
) -> PassThrough:
    """Consume `expected` records of `source`, produce each to `sink`; time the whole run.

    The clock starts at the first record received and stops when the last send of the
    `expected`-th record is acknowledged and its offset committed.
    """
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await consumer.start()
    await producer.start()
    done = 0
    started: float | None = None
    deadline = time.monotonic() + timeout
    try:
        while done < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            if not batch:
                continue
            if started is None:
                started = time.monotonic()
            futures = [
                await producer.send(sink, relay(record.value), key=record.key)
                for records in batch.values()
                for record in records
            ]
            await asyncio.gather(*futures)
            await consumer.commit()
            done += len(futures)
        return PassThrough(done, time.monotonic() - (started or time.monotonic()))
    finally:
        await consumer.stop()
        await producer.stop()
