"""The KPI board: the latest value of every KPI, read from `metrics.kpi` by every instance.

The totals live in one partition, owned by one instance at a time; the topic they publish
to is what BI tools read, so the HTTP API reads it too: every instance follows the
compacted topic from its start (no consumer group) and answers from the latest value of
each key. A value published as count 0 and value null is a cell that emptied: it leaves
the board. `rebuild` reads the board up to the topic's end to compare a replay with it.
"""

import asyncio
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import topics
from shared.background import Background
from shared.kafka import admin_client, admin_client_options, await_served
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.metrics")

ROW_FIELDS = (
    "kpi",
    "window",
    "period_start",
    "dimension",
    "dimension_value",
    "value",
    "unit",
    "numerator",
    "denominator",
    "count",
    "extra",
)
"""A KPI row as the API and the CSV give it (metrics.kpi without the envelope)."""


async def served_partitions(settings: LexcareSettings, names: list[str]) -> list[TopicPartition]:
    """Every partition of `names`, once the broker serves each of them.

    A metadata answer may leave out a topic for a moment (no leader yet, a busy broker):
    read then, a reader would silently skip its records.
    """
    async with admin_client(settings) as admin:
        described = await await_served(admin, names)
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]


class KpiBoard:
    """Follows metrics.kpi: `rows` holds the latest row of every KPI key."""

    def __init__(self, settings: LexcareSettings) -> None:
        self.settings = settings
        self.rows: dict[bytes, dict[str, Any]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._background = Background(self._follow, name="kpi-board")

    def take(self, key: bytes, value: bytes | None) -> None:
        """Apply one metrics.kpi record."""
        message = orjson.loads(value) if value else None
        if message is None or (message["count"] == 0 and message["value"] is None):
            self.rows.pop(key, None)
            return
        self.rows[key] = {name: message.get(name) for name in ROW_FIELDS}

    async def open(self) -> list[TopicPartition]:
        """Assign every partition of metrics.kpi from its start; return them."""
        self._consumer = AIOKafkaConsumer(
            **admin_client_options(self.settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await self._consumer.start()
        partitions = await served_partitions(
            self.settings, [self.settings.topic(topics.METRICS_KPI)]
        )
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        return partitions

    async def read_to_end(self) -> int:
        """Read up to the end offsets seen now (for a one-off comparison); return the rows."""
        partitions = await self.open()
        assert self._consumer is not None
        ends = await self._consumer.end_offsets(partitions)
        behind = {tp for tp in partitions if ends[tp] > 0}
        while behind:
            await self._poll()
            behind = {tp for tp in behind if await self._consumer.position(tp) < ends[tp]}
        return len(self.rows)

    async def start(self) -> None:
        """Follow the topic in the background."""
        await self.open()
        self._background.start()

    async def stop(self) -> None:
        """Stop following."""
        await self._background.stop()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def _poll(self) -> None:
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=500)
        for records in batch.values():
            for record in records:
                self.take(record.key, record.value)

    async def _follow(self) -> None:
        while True:
            try:
                await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a broker blip: the consumer reconnects, keep following
                log.warning("kpi_board_read_failed", error=f"{type(e).__name__}: {e}")
                await asyncio.sleep(self.settings.retry_backoff_s)
