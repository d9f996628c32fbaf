"""Routing's Kafka handlers: parse → domain → store → publish."""

import structlog
from faststream.kafka import KafkaRouter

from services.routing.store import RoutingStore
from shared import topics
from shared.events import CaseClassified, CaseResolved, ContractSigned, Event, RosterUpdated
from shared.kafka import make_router, subscriber_options
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.routing")


def build_router(settings: LexcareSettings, store: RoutingStore) -> KafkaRouter:
    """Routing's subscribers and publishers."""
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

    @router.subscriber(topics.CONTRACT_SIGNED, **options)
    async def on_contract_signed(event: ContractSigned) -> None:
        await record(event)

    @router.subscriber(topics.ROSTER_UPDATED, **options)
    async def on_roster_updated(event: RosterUpdated) -> None:
        await record(event)

    return router
