"""Followup's Kafka handlers: parse → domain → store → publish."""

import structlog
from faststream.kafka import KafkaRouter

from services.followup.store import FollowupStore
from shared import topics
from shared.events import (
    CareContactCompleted,
    CaseClassified,
    CaseResolved,
    CustomerSegmentChanged,
    Event,
)
from shared.kafka import make_router, subscriber_options
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.followup")


def build_router(settings: LexcareSettings, store: FollowupStore) -> KafkaRouter:
    """Followup's subscribers and publishers."""
    router = make_router(settings)
    options = subscriber_options(settings)

    async def record(event: Event) -> None:
        if await store.processed.seen(event.event_id):
            return
        await store.processed.mark(event.event_id, event_type=event.event_type)
        log.info("event_recorded", event_type=event.event_type)

    @router.subscriber(topics.CASE_CLASSIFIED, **options)
    async def on_case_classified(event: CaseClassified) -> None:
        await record(event)

    @router.subscriber(topics.CASE_RESOLVED, **options)
    async def on_case_resolved(event: CaseResolved) -> None:
        await record(event)

    @router.subscriber(topics.CARE_CONTACT_COMPLETED, **options)
    async def on_care_contact_completed(event: CareContactCompleted) -> None:
        await record(event)

    @router.subscriber(topics.CUSTOMER_SEGMENT_CHANGED, **options)
    async def on_customer_segment_changed(event: CustomerSegmentChanged) -> None:
        await record(event)

    return router
