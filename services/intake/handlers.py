"""Intake's Kafka handlers: parse → domain → store → publish."""

import structlog
from faststream.kafka import KafkaRouter

from services.intake import domain
from services.intake.store import IntakeStore
from shared import topics
from shared.delivery import Rejected
from shared.events import CaseClassified, ContactPoint, ContactReceived, Segment, derived_event_id
from shared.kafka import make_router, subscriber_options
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.intake")


def build_router(settings: LexcareSettings, store: IntakeStore) -> KafkaRouter:
    """Intake's subscribers and publishers."""
    router = make_router(settings)
    case_classified = router.publisher(
        topics.CASE_CLASSIFIED, schema=CaseClassified, description="A contact, classified."
    )

    @router.subscriber(topics.CONTACT_RECEIVED, **subscriber_options(settings))
    async def on_contact_received(event: ContactReceived) -> None:
        if await store.processed.seen(event.event_id):
            log.info("duplicate_skipped")
            return
        try:
            domain.ensure_reachable(event)
        except domain.Unreachable as e:
            raise Rejected(str(e)) from e
        decision = domain.classify(event)
        case_id = f"case-{derived_event_id(event.event_id, 'case').hex[:12]}"
        customer_id = f"cus-{derived_event_id(event.event_id, 'customer').hex[:12]}"
        await store.record_contact(
            str(event.event_id), case_id, {"channel": event.channel, "at": event.occurred_at}
        )
        classified = CaseClassified.caused_by(
            event,
            producer=settings.service_name,
            case_id=case_id,
            customer_id=customer_id,
            contact_id=str(event.event_id),
            new_case=True,
            channel=event.channel,
            kind=event.kind,
            legal_field=decision.legal_field,
            confidence=decision.confidence,
            needs_triage=decision.needs_triage,
            is_dispute=False,
            is_complaint=False,
            legal_aid=False,
            segment=Segment.NEW,
            contact=ContactPoint(
                channel=event.channel,
                sender_id=event.sender_id,
                name=event.customer.name,
                phone=event.customer.phone,
                email=event.customer.email,
            ),
        )
        await case_classified.publish(classified, key=classified.partition_key())
        await store.processed.mark(event.event_id, event_type=event.event_type)
        log.info("case_classified", case_id=case_id, legal_field=decision.legal_field)

    return router
