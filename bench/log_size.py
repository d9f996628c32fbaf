"""Disk cost of the kept log: a pipeline run's real events, multiplied, measured on disk.

    python -m bench --phases pipeline --contacts 300 --latency-levels "" --growth "" --keep
    python -m bench.log_size --sample <run>-pipe- --contacts 10000 --log-dir <broker log.dirs>

Reads every business event topic of the sample run (what the five services and the life
cycle published for its contacts), republishes it to scratch topics until `--contacts`
contacts' worth are there (ids rewritten per copy, so copies do not compress into each
other), once per codec (the topic's `compression.type`: the broker compresses what the
producer sent uncompressed, as lexcare's producers do), and sums the partitions' files.
Two ways of arriving: `bulk` (full producer batches, a backlog) and `trickle` (one record
per batch, what a firm's real pace gives: lexcare publishes each event as it happens).
"""

import argparse
import asyncio
import hashlib
import json
import math
import re
import sys
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from shared import topics
from shared.kafka import admin_client
from shared.settings import LexcareSettings

Record = tuple[bytes | None, bytes]
HEX_ID = re.compile(rb"[0-9a-f]{8}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: the sample's prefix, contacts to reach, where the broker keeps its logs."""
    p = argparse.ArgumentParser(prog="python -m bench.log_size", description=__doc__)
    p.add_argument("--kafka", default="127.0.0.1:9092")
    p.add_argument("--sample", required=True, help="topic prefix of a kept pipeline run")
    p.add_argument("--contacts", type=int, default=10_000, help="contacts' worth, bulk")
    p.add_argument("--trickle-contacts", type=int, default=1_000, help="one record per batch")
    p.add_argument("--codecs", default="uncompressed,lz4,zstd")
    p.add_argument("--partitions", type=int, default=6, help="compose's LEXCARE_PARTITIONS")
    p.add_argument("--log-dir", type=Path, required=True, help="the broker's log.dirs")
    return p.parse_args(argv)


async def read_sample(bootstrap: str, prefix: str) -> dict[str, list[Record]]:
    """Every record of every business event topic under `prefix`, by unprefixed topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        sample: dict[str, list[Record]] = {}
        for name in topics.REPLAYED_TOPICS:
            parts = metadata.partitions_for_topic(prefix + name) or set()
            tps = [TopicPartition(prefix + name, p) for p in parts]
            sample[name] = await read_all(consumer, tps) if tps else []
        return sample
    finally:
        await consumer.stop()


async def read_all(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> list[Record]:
    """The records of `tps` from the beginning to their current ends."""
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    records: list[Record] = []
    remaining = {tp for tp in tps if ends[tp] > 0}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=500)
        records += [(r.key, r.value) for rs in batch.values() for r in rs if r.value]
        remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    return records


def copy_of(value: bytes, copy: int) -> bytes:
    """`value` with every 8-hex-digit id replaced consistently for copy `copy`."""

    def fresh(match: re.Match[bytes]) -> bytes:
        return (
            hashlib.blake2b(match.group() + str(copy).encode(), digest_size=4).hexdigest().encode()
        )

    return HEX_ID.sub(fresh, value)


async def create(bootstrap: str, names: list[str], partitions: int, codec: str) -> None:
    """Scratch topics kept forever, compressed by the broker with `codec`."""
    configs = {"retention.ms": "-1", "retention.bytes": "-1", "compression.type": codec}
    async with admin_client(LexcareSettings(kafka=bootstrap)) as admin:
        await admin.create_topics(
            [NewTopic(n, partitions, 1, topic_configs=configs) for n in names]
        )


async def delete(bootstrap: str, names: list[str]) -> None:
    """Delete the scratch topics."""
    async with admin_client(LexcareSettings(kafka=bootstrap)) as admin:
        await admin.delete_topics(names)


async def publish(
    bootstrap: str, prefix: str, sample: dict[str, list[Record]], copies: int, *, trickle: bool
) -> int:
    """Publish `copies` copies of the sample under `prefix` the way lexcare's producers do."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        for copy in range(copies):
            for name, records in sample.items():
                for key, value in records:
                    new_key = copy_of(key, copy) if key else None
                    send = producer.send(prefix + name, copy_of(value, copy), key=new_key)
                    if trickle:
                        await (await send)
                    else:
                        pending.append(await send)
                    sent += 1
            await asyncio.gather(*pending)
            pending.clear()
    finally:
        await producer.stop()
    return sent


def bytes_on_disk(log_dir: Path, topic: str) -> tuple[int, int]:
    """(segment bytes, all files' bytes) of every partition of `topic` under `log_dir`."""
    files = [
        f
        for d in log_dir.glob(f"{topic}-*")
        if d.name[len(topic) + 1 :].isdigit()
        for f in d.iterdir()
    ]
    segments = sum(f.stat().st_size for f in files if f.suffix == ".log")
    allocated = sum(f.stat().st_blocks * 512 for f in files)
    return segments, allocated


async def measure(args: argparse.Namespace) -> dict:
    """Publish and measure every codec in both arrival modes."""
    sample = {k: v for k, v in (await read_sample(args.kafka, args.sample)).items() if v}
    contacts = len(sample[topics.CONTACT_RECEIVED])
    result: dict = {
        "sample_contacts": contacts,
        "sample_records": {k: len(v) for k, v in sample.items()},
        "runs": [],
    }
    run = uuid.uuid4().hex[:6]
    for mode, target in (("bulk", args.contacts), ("trickle", args.trickle_contacts)):
        copies = max(1, math.ceil(target / contacts))
        for codec in args.codecs.split(","):
            prefix = f"logsize{run}-{mode}-{codec}-"
            names = [prefix + n for n in sample]
            await create(
                args.kafka, names, args.partitions, codec if codec != "uncompressed" else "producer"
            )
            records = await publish(args.kafka, prefix, sample, copies, trickle=mode == "trickle")
            per_topic = {n[len(prefix) :]: bytes_on_disk(args.log_dir, n) for n in names}
            await delete(args.kafka, names)
            segments = sum(s for s, _ in per_topic.values())
            row = {
                "mode": mode,
                "codec": codec,
                "contacts": copies * contacts,
                "records": records,
                "segment_bytes": segments,
                "allocated_bytes": sum(a for _, a in per_topic.values()),
                "bytes_per_contact": segments / (copies * contacts),
                "bytes_per_record": segments / records,
                "gb_per_million_contacts": segments / (copies * contacts) * 1e6 / 1e9,
                "per_topic_bytes_per_contact": {
                    t: round(s / (copies * contacts)) for t, (s, _) in per_topic.items()
                },
            }
            result["runs"].append(row)
            print(
                json.dumps({k: v for k, v in row.items() if k != "per_topic_bytes_per_contact"}),
                file=sys.stderr,
                flush=True,
            )
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure(parse_args())), indent=2))
