"""Plain aiokafka clients for tests: publish and read topics the way outside parties do."""

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner

SEND_RETRY_S = 120.0
"""How long a send is retried while the broker cannot take it (a broker restarting)."""


def key_on(partition: int, partitions: int, prefix: str) -> str:
    """A key starting with `prefix` that Kafka's default partitioner puts on `partition`."""
    every = list(range(partitions))
    chooser = DefaultPartitioner()
    return next(
        key
        for n in itertools.count()
        if chooser((key := f"{prefix}-{n}").encode(), every, every) == partition
    )


class RawKafka:
    """A raw producer plus topic readers, scoped to one test's topic prefix."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        self._readers: dict[str, AIOKafkaConsumer] = {}
        self.seen: dict[str, list[ConsumerRecord]] = {}

    async def __aenter__(self) -> "RawKafka":
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()
        for reader in self._readers.values():
            await reader.stop()

    async def send(
        self,
        topic: str,
        value: bytes | dict[str, Any],
        *,
        key: str | None = None,
        partition: int | None = None,
    ) -> None:
        """Publish raw bytes (or a dict as JSON) to `topic` under the test prefix, retried as
        an adapter would while the broker refuses it for a while (a leader being elected
        after a restart): the services dedupe a copy that had landed."""
        payload = value if isinstance(value, bytes) else orjson.dumps(value)
        deadline = time.monotonic() + SEND_RETRY_S
        while True:
            try:
                await self.producer.send_and_wait(
                    self.prefix + topic,
                    payload,
                    key=key.encode() if key else None,
                    partition=partition,
                )
                return
            except KafkaError as e:
                retriable = e.retriable or isinstance(e, KafkaTimeoutError)
                if not retriable or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def _reader(self, topic: str) -> AIOKafkaConsumer:
        if topic not in self._readers:
            # No consumer group: every partition at once, no coordinator, no rebalance wait.
            reader = AIOKafkaConsumer(
                self.prefix + topic,
                bootstrap_servers=self.bootstrap,
                group_id=None,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await reader.start()
            while not reader.assignment():
                await reader.getmany(timeout_ms=100)
            self._readers[topic] = reader
            self.seen[topic] = []
        return self._readers[topic]

    async def read(
        self, topic: str, *, until: Callable[[list[ConsumerRecord]], bool], timeout: float = 30.0
    ) -> list[ConsumerRecord]:
        """Collect `topic`'s records until `until(records)` holds; fail at the deadline."""
        reader = await self._reader(topic)
        records = self.seen[topic]
        deadline = asyncio.get_running_loop().time() + timeout
        while not until(records):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"{topic}: condition not met in {timeout}s, got {len(records)}"
                )
            batch = await reader.getmany(timeout_ms=200)
            for messages in batch.values():
                records.extend(messages)
        return records

    async def events(self, topic: str, *, count: int, timeout: float = 30.0) -> list[dict]:
        """Wait for at least `count` events on `topic`; return them decoded."""
        records = await self.read(topic, until=lambda r: len(r) >= count, timeout=timeout)
        return [orjson.loads(r.value) for r in records]

    @staticmethod
    async def _reached(reader: AIOKafkaConsumer, ends: dict[Any, int]) -> bool:
        for tp, end in ends.items():
            if await reader.position(tp) < end:
                return False
        return True

    async def distinct(self, topic: str, *, count: int, timeout: float = 30.0) -> list[dict]:
        """Wait for `count` distinct event ids on `topic` (as a deduping consumer sees them)."""

        def unique(records: list[ConsumerRecord]) -> list[dict]:
            by_id = {}
            for record in records:
                event = orjson.loads(record.value)
                by_id.setdefault(event["event_id"], event)
            return list(by_id.values())

        records = await self.read(topic, until=lambda r: len(unique(r)) >= count, timeout=timeout)
        return unique(records)

    async def settle(self, topic: str, *, quiet: float = 1.0) -> list[ConsumerRecord]:
        """Read `topic` up to its current end, then until nothing new comes for `quiet` s."""
        reader = await self._reader(topic)
        ends = await reader.end_offsets(list(reader.assignment()))
        while not await self._reached(reader, ends):
            for messages in (await reader.getmany(timeout_ms=200)).values():
                self.seen[topic].extend(messages)
        while True:
            batch = await reader.getmany(timeout_ms=int(quiet * 1000))
            if not batch:
                return self.seen[topic]
            for messages in batch.values():
                self.seen[topic].extend(messages)


async def delete_topics(bootstrap: str, *, prefix: str) -> None:
    """Delete every topic whose name starts with `prefix` (a finished test's topics)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
