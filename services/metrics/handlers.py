"""Metrics' Kafka handlers: parse → count → publish KPI values."""

from datetime import UTC, datetime

import structlog
from faststream.kafka import KafkaRouter

from services.metrics.store import MetricsStore
from shared import topics
from shared.events import CaseClassified, KpiDimension, KpiUpdated, KpiWindow, derived_event_id
from shared.kafka import make_router, subscriber_options
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.metrics")


def build_router(settings: LexcareSettings, store: MetricsStore) -> KafkaRouter:
    """Metrics' subscribers and the metrics.kpi publisher."""
    router = make_router(settings)
    kpi = router.publisher(topics.METRICS_KPI, schema=KpiUpdated, description="KPI values.")

    @router.subscriber(topics.CASE_CLASSIFIED, **subscriber_options(settings))
    async def on_case_classified(event: CaseClassified) -> None:
        await store.add_fact(
            str(event.event_id),
            {"kind": "contact", "channel": str(event.channel), "at": event.occurred_at},
        )
        count = await store.count(kind="contact", channel=str(event.channel))
        now = datetime.now(UTC)
        value = KpiUpdated(
            event_id=derived_event_id(event.event_id, "tft"),
            correlation_id=event.correlation_id,
            occurred_at=now,
            producer=settings.service_name,
            kpi="tft",
            window=KpiWindow.ALL,
            period_start=None,
            dimension=KpiDimension.CHANNEL,
            dimension_value=str(event.channel),
            value=float(count),
            numerator=float(count),
            denominator=1.0,
            count=count,
            updated_at=now,
        )
        await kpi.publish(value, key=value.partition_key())
        log.info("kpi_updated", kpi="tft", channel=str(event.channel), value=count)

    return router
