"""Replay: recompute every aggregate from the Kafka log and compare with the live values.

`python -m services.metrics rebuild` reads every input topic from its earliest offset up to
the end offsets seen at start, feeds the events to a fresh in-memory engine (the reference
computation, services.metrics.engine) and reports every KPI value that differs from the
live ones: the latest of each key on `metrics.kpi`, as BI tools read them.
It refuses to start when a partition no longer begins at offset 0: its first events were
deleted (retention, delete-records), and a replay without them would differ silently.
"""

from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from services.metrics.app import MetricsSettings, build_engine
from services.metrics.board import KpiBoard, served_partitions
from services.metrics.domain import entry_of
from services.metrics.engine import MetricsEngine
from services.metrics.handlers import CONSUMED
from services.metrics.kpis import cell_row
from services.metrics.state import cell_id
from shared.clock import Clock
from shared.kafka import admin_client_options

log = structlog.get_logger("lexcare.metrics")

COMPARED = ("value", "numerator", "denominator", "count", "extra")
"""Fields the live and the rebuilt values must agree on (updated_at is when, not what)."""


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
        partitions = await served_partitions(settings, list(models))
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


async def rebuild(settings: MetricsSettings, clock: Clock | None = None) -> RebuildReport:
    """Replay the log into a fresh engine and compare its values with the live ones."""
    engine = build_engine(settings, clock=clock)
    report = RebuildReport()
    report.events, report.invalid = await replay_log(settings, engine)
    engine.refresh_crr()
    rebuilt = {cell_id(key): cell_row(key, cell) for key, cell in engine.cells.items()}
    board = KpiBoard(settings)
    try:
        await board.read_to_end()
    finally:
        await board.stop()
    live = {key.decode(): row for key, row in board.rows.items()}
    report.kpis = len(rebuilt)
    report.differences = compare(live, rebuilt)
    log.info(
        "metrics_rebuilt",
        events=report.events,
        invalid=report.invalid,
        kpis=report.kpis,
        differences=len(report.differences),
    )
    return report
