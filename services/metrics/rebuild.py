"""Replay: recompute every aggregate from the Kafka log and compare with the live values.

`python -m services.metrics rebuild` reads every input topic from its earliest offset up to
the end offsets seen at start, feeds the events to a fresh engine, writes the result into
fresh `rebuilt_*` collections and reports every KPI value that differs from the live ones.
It refuses to start when a partition no longer begins at offset 0: its first events were
deleted (retention, delete-records), and a replay without them would differ silently.
"""

from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from services.metrics.app import MetricsSettings, build_engine
from services.metrics.domain import entry_of
from services.metrics.engine import MetricsEngine
from services.metrics.handlers import CONSUMED
from services.metrics.kpis import kpi_value
from services.metrics.store import COMPARED, MetricsStore
from shared.clock import Clock
from shared.kafka import admin_client, admin_client_options, await_served
from shared.mongo import make_mongo, service_db

log = structlog.get_logger("lexcare.metrics")

REBUILT_PREFIX = "rebuilt_"


@dataclass(frozen=True)
class Difference:
    """One KPI value on which the live and the rebuilt collections disagree."""

    id: str
    live: dict[str, Any] | None
    rebuilt: dict[str, Any] | None


class LogTrimmed(Exception):
    """Replayed partitions whose head was deleted: their earliest offset is not 0."""

    def __init__(self, earliest: dict[TopicPartition, int]) -> None:
        self.earliest = earliest
        lines = [
            f"  {tp.topic} partition {tp.partition}: earliest offset {offset}, not 0"
            for tp, offset in sorted(earliest.items())
        ]
        super().__init__(
            "cannot rebuild: the log no longer holds every event; the KPIs replayed from it "
            "would differ from the live ones.\n"
            + "\n".join(lines)
            + "\nThe topics' history must be kept (retention.ms=-1): see docs/operations.md."
        )


@dataclass
class RebuildReport:
    """What a replay read and where it disagrees with the live values."""

    events: int = 0
    invalid: int = 0
    kpis: int = 0
    differences: list[Difference] = field(default_factory=list)


def compare(live: dict[str, dict], rebuilt: dict[str, dict]) -> list[Difference]:
    """Every KPI id whose compared fields differ (or that only one side has)."""
    differences = []
    for ident in sorted(live.keys() | rebuilt.keys()):
        a = {k: live[ident].get(k) for k in COMPARED} if ident in live else None
        b = {k: rebuilt[ident].get(k) for k in COMPARED} if ident in rebuilt else None
        if a != b:
            differences.append(Difference(ident, a, b))
    return differences


async def replay_log(settings: MetricsSettings, engine: MetricsEngine) -> tuple[int, int]:
    """Feed every event of the input topics, earliest first, to `engine`: (events, invalid)."""
    # Earliest as the default reset too: a position reset started by `assign` before the
    # seek below would otherwise jump to the end and the replay would read nothing.
    consumer = AIOKafkaConsumer(
        **admin_client_options(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        models = {settings.topic(m.TOPIC): m for m in CONSUMED}
        partitions = await _partitions(settings, list(models))
        consumer.assign(partitions)
        await _require_whole_log(consumer, partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        events = invalid = 0
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    try:
                        event = models[tp.topic].model_validate_json(record.value or b"")
                    except ValidationError:
                        invalid += 1  # the live consumer dead-lettered it
                        continue
                    events += 1
                    engine.ingest(entry_of(event))
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return events, invalid
    finally:
        await consumer.stop()


async def _require_whole_log(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    """Raise LogTrimmed when any partition's earliest offset is not 0."""
    earliest = await consumer.beginning_offsets(partitions)
    trimmed = {tp: offset for tp, offset in earliest.items() if offset > 0}
    if trimmed:
        raise LogTrimmed(trimmed)


async def _partitions(settings: MetricsSettings, topics: list[str]) -> list[TopicPartition]:
    """Every partition of `topics`, once the broker serves each of them.

    A metadata answer may leave out a topic for a moment (no leader yet, a busy broker):
    read then, the replay would silently skip its events.
    """
    async with admin_client(settings) as admin:
        described = await await_served(admin, topics)
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]


async def rebuild(settings: MetricsSettings, clock: Clock | None = None) -> RebuildReport:
    """Replay the log into fresh collections and compare them with the live ones."""
    engine = build_engine(settings, clock=clock)
    report = RebuildReport()
    report.events, report.invalid = await replay_log(settings, engine)
    entries, merges = engine.take_new()
    cells = engine.take_dirty_cells()
    mongo = make_mongo(settings)
    try:
        db = service_db(mongo, settings)
        fresh = MetricsStore(db, prefix=REBUILT_PREFIX)
        await fresh.drop()
        await fresh.add(entries=entries, merges=merges)
        await fresh.put_kpis(
            {k: kpi_value(k[0], engine.cells[k]) for k in cells if k in engine.cells}
        )
        rebuilt = await fresh.kpi_docs()
        report.kpis = len(rebuilt)
        report.differences = compare(await MetricsStore(db).kpi_docs(), rebuilt)
    finally:
        await mongo.close()
    log.info(
        "metrics_rebuilt",
        events=report.events,
        invalid=report.invalid,
        kpis=report.kpis,
        differences=len(report.differences),
    )
    return report
