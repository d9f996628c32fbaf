"""Metrics' Kafka handlers: parse → record on the case's sheet → wait for the checkpoint."""

from collections.abc import Awaitable
from datetime import datetime
from typing import Any

import structlog
from faststream.kafka import KafkaRouter

from services.metrics.domain import entry_of
from services.metrics.engine import MetricsEngine
from services.metrics.kpis import CellKey, KpiValue
from services.metrics.live import Checkpointer, Publish
from services.metrics.store import cell_id
from shared import topics
from shared.events import (
    CareContactCompleted,
    CaseAssigned,
    CaseClassified,
    CaseResolved,
    ContractSigned,
    CustomerMerged,
    Event,
    FeeQuoted,
    KpiDimension,
    KpiUpdated,
    KpiWindow,
    SurveyExpired,
    SurveyReminded,
    SurveyRequested,
    SurveyScored,
    derived_event_id,
)
from shared.kafka import make_router, subscriber_options
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.metrics")

CONSUMED: tuple[type[Event], ...] = (
    CaseClassified,
    CustomerMerged,
    CaseAssigned,
    FeeQuoted,
    ContractSigned,
    CaseResolved,
    CareContactCompleted,
    SurveyRequested,
    SurveyReminded,
    SurveyExpired,
    SurveyScored,
)
"""Every event type the KPIs are computed from."""


def kpi_event(key: CellKey, value: KpiValue | None, *, producer: str, now: datetime) -> KpiUpdated:
    """The metrics.kpi message for one cell (a vanished cell reads as count 0, value null)."""
    kpi, window, start, dimension, dimension_value = key
    figures = value or KpiValue(None, 0.0, 0.0, 0, {})
    ident = cell_id(key)
    version = repr((figures.numerator, figures.denominator, figures.count, figures.extra))
    return KpiUpdated(
        event_id=derived_event_id(ident, version),
        correlation_id=ident,
        occurred_at=now,
        producer=producer,
        kpi=kpi,
        window=KpiWindow(window),
        period_start=start,
        dimension=KpiDimension(dimension),
        dimension_value=dimension_value,
        value=figures.value,
        numerator=figures.numerator,
        denominator=figures.denominator,
        count=figures.count,
        extra=figures.extra,
        updated_at=now,
    )


def build_router(
    settings: LexcareSettings,
    engine: MetricsEngine,
    checkpointer: Checkpointer,
    *,
    workers: int = 1,
) -> tuple[KafkaRouter, Publish]:
    """Metrics' subscribers, and the function that sends one KPI value to metrics.kpi."""
    router = make_router(settings)
    kpi_topic = router.publisher(
        topics.METRICS_KPI,
        schema=KpiUpdated,
        description="KPI values per window, period and dimension (compacted, no personal data).",
    )

    async def publish(key: CellKey, value: KpiValue | None, now: datetime) -> Awaitable[Any]:
        message = kpi_event(key, value, producer=settings.service_name, now=now)
        return await kpi_topic.publish(message, key=message.partition_key(), no_confirm=True)

    async def count(event: Event) -> None:
        entry = entry_of(event)
        await checkpointer.ensure_sheet(entry)
        if not engine.ingest(entry):
            log.debug("nothing_new", event_type=event.event_type)
        # Even a duplicate waits: its first delivery may not be checkpointed yet.
        await checkpointer.durable()

    subscribe = router.subscriber
    # Handlers of different partitions run at once and share one checkpoint; the KPI
    # arithmetic does not depend on arrival order, so concurrency changes no value.
    options = {**subscriber_options(settings), "max_workers": max(1, workers)}

    @subscribe(topics.CASE_CLASSIFIED, **options)
    async def on_case_classified(event: CaseClassified) -> None:
        await count(event)

    @subscribe(topics.CUSTOMER_MERGED, **options)
    async def on_customer_merged(event: CustomerMerged) -> None:
        await count(event)

    @subscribe(topics.CASE_ASSIGNED, **options)
    async def on_case_assigned(event: CaseAssigned) -> None:
        await count(event)

    @subscribe(topics.FEE_QUOTED, **options)
    async def on_fee_quoted(event: FeeQuoted) -> None:
        await count(event)

    @subscribe(topics.CONTRACT_SIGNED, **options)
    async def on_contract_signed(event: ContractSigned) -> None:
        await count(event)

    @subscribe(topics.CASE_RESOLVED, **options)
    async def on_case_resolved(event: CaseResolved) -> None:
        await count(event)

    @subscribe(topics.CARE_CONTACT_COMPLETED, **options)
    async def on_care_contact_completed(event: CareContactCompleted) -> None:
        await count(event)

    @subscribe(topics.SURVEY_REQUESTED, **options)
    async def on_survey_requested(event: SurveyRequested) -> None:
        await count(event)

    @subscribe(topics.SURVEY_REMINDED, **options)
    async def on_survey_reminded(event: SurveyReminded) -> None:
        await count(event)

    @subscribe(topics.SURVEY_EXPIRED, **options)
    async def on_survey_expired(event: SurveyExpired) -> None:
        await count(event)

    @subscribe(topics.SURVEY_SCORED, **options)
    async def on_survey_scored(event: SurveyScored) -> None:
        await count(event)

    return router, publish
