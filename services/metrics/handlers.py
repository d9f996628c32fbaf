"""Metrics' Kafka handlers: batches of events put on their cases' sheets, one checkpoint each."""

from collections.abc import Awaitable
from datetime import datetime
from typing import Any

import structlog
from faststream.kafka import KafkaRouter

from services.metrics.domain import entry_of
from services.metrics.engine import MetricsEngine
from services.metrics.kpis import UNITS, CellKey, KpiValue
from services.metrics.live import Checkpointer, Publish
from services.metrics.store import cell_id
from shared import topics
from shared.batching import BatchSubscriber
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
from shared.kafka import make_router
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
        unit=UNITS[kpi],
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

    # A batch's events are applied in memory (different cases at once: the KPI arithmetic
    # does not depend on arrival order), then the batch waits for one checkpoint holding
    # them all before its offsets are committed. Even a batch of duplicates waits: their
    # first delivery may not be checkpointed yet.
    subscribe = BatchSubscriber(router, settings, checkpointer.batch)

    @subscribe(topics.CASE_CLASSIFIED)
    async def on_case_classified(event: CaseClassified) -> None:
        await count(event)

    @subscribe(topics.CUSTOMER_MERGED)
    async def on_customer_merged(event: CustomerMerged) -> None:
        await count(event)

    @subscribe(topics.CASE_ASSIGNED)
    async def on_case_assigned(event: CaseAssigned) -> None:
        await count(event)

    @subscribe(topics.FEE_QUOTED)
    async def on_fee_quoted(event: FeeQuoted) -> None:
        await count(event)

    @subscribe(topics.CONTRACT_SIGNED)
    async def on_contract_signed(event: ContractSigned) -> None:
        await count(event)

    @subscribe(topics.CASE_RESOLVED)
    async def on_case_resolved(event: CaseResolved) -> None:
        await count(event)

    @subscribe(topics.CARE_CONTACT_COMPLETED)
    async def on_care_contact_completed(event: CareContactCompleted) -> None:
        await count(event)

    @subscribe(topics.SURVEY_REQUESTED)
    async def on_survey_requested(event: SurveyRequested) -> None:
        await count(event)

    @subscribe(topics.SURVEY_REMINDED)
    async def on_survey_reminded(event: SurveyReminded) -> None:
        await count(event)

    @subscribe(topics.SURVEY_EXPIRED)
    async def on_survey_expired(event: SurveyExpired) -> None:
        await count(event)

    @subscribe(topics.SURVEY_SCORED)
    async def on_survey_scored(event: SurveyScored) -> None:
        await count(event)

    return router, publish
