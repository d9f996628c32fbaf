"""Intake's Kafka handlers: parse → domain → store → publish."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from faststream.kafka import KafkaRouter

from services.intake import domain
from services.intake.store import CustomerState, IntakeStore
from shared import topics
from shared.batching import BatchSubscriber
from shared.delivery import Rejected
from shared.events import (
    CaseClassified,
    CaseResolved,
    ContactPoint,
    ContactReceived,
    ContractSigned,
    CustomerMerged,
    CustomerSegmentChanged,
    Segment,
    derived_event_id,
)
from shared.kafka import make_router
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.intake")

FAR_FUTURE = datetime.max.replace(tzinfo=ZoneInfo("UTC"))


def short_id(prefix: str, cause_id: Any, part: str) -> str:
    """A readable id derived from the event that creates the thing (stable on retries)."""
    return f"{prefix}-{derived_event_id(cause_id, part).hex[:12]}"


def build_router(
    settings: LexcareSettings,
    store: IntakeStore,
    *,
    lexicon: domain.Lexicon,
    policy: domain.IntakePolicy,
) -> KafkaRouter:
    """Intake's subscribers and publishers."""
    router = make_router(settings)
    subscribe = BatchSubscriber(router, settings, store.processed.batch)
    zone = ZoneInfo(settings.timezone)
    case_classified = router.publisher(
        topics.CASE_CLASSIFIED,
        schema=CaseClassified,
        description="A contact recorded on a case and classified (SPEC §2); key: case id.",
    )
    customer_merged = router.publisher(
        topics.CUSTOMER_MERGED,
        schema=CustomerMerged,
        description="A contact proved known customers to be one; key: surviving customer id.",
    )
    segment_changed = router.publisher(
        topics.CUSTOMER_SEGMENT_CHANGED,
        schema=CustomerSegmentChanged,
        description="A customer moved to another segment (e.g. became loyal); key: case id.",
    )

    async def resolve_identity(contact: domain.Contact, at: datetime) -> tuple[str, dict | None]:
        """The contact's customer (creating or merging customers): id and merge record."""
        keys = contact.identifier_keys
        owners = await store.owners_of(keys)
        roots = set(owners.values())
        if roots:
            target = domain.pick_survivor(await known(roots))
        else:
            target = short_id("cus", contact.contact_id, "customer")
            await store.record_customer_contact(target, contact, at)
        for key in keys:
            if key not in owners:
                roots.add(await store.claim_identifier(key, target))
        roots.add(target)
        if len(roots) == 1:
            return target, await store.recorded_merge(contact.contact_id)
        # A customer created just now for this contact lost a race for an identifier:
        # it folds into the customers that already hold identifiers.
        holders = roots - {short_id("cus", contact.contact_id, "customer")}
        survivor = domain.pick_survivor(await known(holders))
        others = sorted(roots - {survivor})
        merge = await store.merge_customers(survivor, others, contact_id=contact.contact_id)
        log.info("customers_merged", customer_id=survivor, merged_customer_ids=others)
        return survivor, merge

    async def announce_segment(
        cause: ContactReceived | ContractSigned,
        *,
        case_id: str,
        customer_id: str,
        previous: str,
        segment: str,
        contact: ContactPoint | None,
    ) -> None:
        """Publish customer.segment_changed for a change `cause` brought about."""
        changed = CustomerSegmentChanged.caused_by(
            cause,
            producer=settings.service_name,
            case_id=case_id,
            customer_id=customer_id,
            previous_segment=previous,
            segment=segment,
            contracts=await store.count_contracts(customer_id),
            contact=contact,
        )
        await segment_changed.publish(changed, key=changed.partition_key())
        log.info("segment_changed", customer_id=customer_id, previous=previous, segment=segment)

    async def known(customer_ids: set[str]) -> list[domain.KnownCustomer]:
        found = {c.customer_id: c for c in await store.known_customers(customer_ids)}
        return [found.get(i, domain.KnownCustomer(i, FAR_FUTURE)) for i in customer_ids]

    async def decide(
        event: ContactReceived, contact: domain.Contact, customer_id: str
    ) -> dict[str, Any]:
        """Classify, choose the case and compute the customer's view; store it once."""
        at = event.occurred_at
        before = await store.customer(customer_id)
        await store.record_customer_contact(customer_id, contact, at)
        after = await store.customer(customer_id)
        assert after is not None
        reading = domain.classify(
            message=contact.message,
            kind=contact.kind,
            form_field=contact.legal_field,
            lexicon=lexicon,
            threshold=policy.confidence_threshold,
        )
        attached = domain.case_to_attach(
            await store.open_cases(customer_id),
            legal_field=reading.legal_field,
            kind=contact.kind,
            field_is_known=reading.field_is_known,
            at=at,
            window=policy.attach_window,
            named_case_id=event.case_id,
        )
        case_doc = await store.case(attached.case_id) if attached else None
        all_cases = await store.count_cases(customer_id)
        decision = domain.decide_case(
            new_case_id=short_id("case", contact.contact_id, "case"),
            contact=contact,
            reading=reading,
            attached=attached,
            attached_is_dispute=bool(case_doc and case_doc.get("is_dispute")),
            profile=after.profile,
            case_documents=(case_doc or {}).get("documents", []),
            contracts=await store.count_contracts(customer_id),
            other_cases=all_cases - (1 if attached else 0),
            last_activity=before.last_activity_at if before else None,
            at=at,
            today=at.astimezone(zone).date(),
            policy=policy,
        )
        point = contact_point(contact, after)
        classified = {
            "case_id": decision.case_id,
            "customer_id": customer_id,
            "contact_id": contact.contact_id,
            "new_case": decision.new_case,
            "channel": contact.channel.value,
            "kind": contact.kind.value,
            "legal_field": decision.legal_field.value,
            "confidence": decision.confidence,
            "needs_triage": decision.needs_triage,
            "is_dispute": decision.is_dispute,
            "is_complaint": decision.is_complaint,
            "legal_aid": decision.legal_aid,
            "legal_aid_categories": [c.value for c in decision.legal_aid_categories],
            "segment": decision.segment.value,
            "age_band": decision.age_band.value if decision.age_band else None,
            "birthday": decision.birthday,
            "income_tier": decision.income_tier.value if decision.income_tier else None,
            "missing_items": decision.missing_items,
            "contact": point.model_dump(mode="json"),
        }
        return await store.record_contact(
            {
                "_id": contact.contact_id,
                "at": at,
                "classified": classified,
                "previous_segment": before.segment.value if before and before.segment else None,
            }
        )

    @subscribe(topics.CONTACT_RECEIVED)
    async def on_contact_received(event: ContactReceived) -> None:
        if await store.processed.seen(event.event_id):
            log.info("duplicate_skipped")
            return
        try:
            contact = domain.normalise_contact(event)
        except domain.Unreachable as e:
            raise Rejected(str(e)) from e
        customer_id, merge = await resolve_identity(contact, event.occurred_at)
        decision = await store.recorded_contact(contact.contact_id) or await decide(
            event, contact, customer_id
        )
        classified = decision["classified"]
        case_id = classified["case_id"]
        await store.put_contact_on_case(
            case_id=case_id,
            case_fields={
                "customer_id": classified["customer_id"],
                "legal_field": classified["legal_field"],
                "confidence": classified["confidence"],
                "needs_triage": classified["needs_triage"],
                "opened_at": decision["at"],
                "channel": classified["channel"],
                "contact": classified["contact"],
            },
            contact_id=contact.contact_id,
            documents=list(contact.documents),
        )
        if classified["is_dispute"]:
            await store.mark_dispute(case_id)
        await store.set_segment(classified["customer_id"], Segment(classified["segment"]))

        if merge is not None:
            merged = CustomerMerged.caused_by(
                event,
                producer=settings.service_name,
                case_id=case_id,
                customer_id=merge["survivor"],
                merged_customer_ids=merge["merged"],
                moved_case_ids=merge["moved_case_ids"],
            )
            await customer_merged.publish(merged, key=merged.partition_key())
        out = CaseClassified.caused_by(event, producer=settings.service_name, **classified)
        await case_classified.publish(out, key=out.partition_key())
        previous = decision.get("previous_segment")
        if previous and previous != classified["segment"]:
            await announce_segment(
                event,
                case_id=case_id,
                customer_id=classified["customer_id"],
                previous=previous,
                segment=classified["segment"],
                contact=out.contact,
            )
        await store.processed.mark(event.event_id, event_type=event.event_type)
        log.info(
            "case_classified",
            case_id=case_id,
            new_case=classified["new_case"],
            legal_field=classified["legal_field"],
            confidence=classified["confidence"],
            needs_triage=classified["needs_triage"],
            segment=classified["segment"],
        )

    @subscribe(topics.CASE_RESOLVED)
    async def on_case_resolved(event: CaseResolved) -> None:
        if await store.processed.seen(event.event_id):
            return
        if not await store.resolve_case(event.case_id, event.occurred_at):
            raise Rejected(f"unknown case {event.case_id}")
        await store.processed.mark(event.event_id, event_type=event.event_type)
        log.info("case_closed", outcome=event.outcome)

    @subscribe(topics.CONTRACT_SIGNED)
    async def on_contract_signed(event: ContractSigned) -> None:
        if await store.processed.seen(event.event_id):
            return
        case = await store.case(event.case_id)
        if case is None:
            raise Rejected(f"unknown case {event.case_id}")
        customer_id = await store.root_of(case["customer_id"])
        await store.record_contract(
            contract_id=event.contract_id,
            customer_id=customer_id,
            case_id=event.case_id,
            at=event.occurred_at,
        )
        contracts = await store.count_contracts(customer_id)
        customer = await store.customer(customer_id)
        previous = customer.segment if customer and customer.segment else Segment.NEW
        segment = domain.segment_for(
            contracts=contracts,
            other_cases=0,
            last_activity=None,
            at=event.occurred_at,
            policy=policy.segments,
        )
        change = f"{customer_id}:{segment.value}:{contracts}"
        owner = await store.segment_change(change)
        if owner is None and previous != segment:
            owner = await store.claim_segment_change(
                change, by=str(event.event_id), previous=previous.value
            )
        if owner is not None and owner["by"] == str(event.event_id):
            await store.set_segment(customer_id, segment)
            await announce_segment(
                event,
                case_id=event.case_id,
                customer_id=customer_id,
                previous=owner["previous"],
                segment=segment,
                contact=stored_contact_point(case),
            )
        await store.processed.mark(event.event_id, event_type=event.event_type)

    return router


def contact_point(contact: domain.Contact, customer: CustomerState) -> ContactPoint:
    """How to reach the customer: the contact's own channel and details, else known ones."""
    profile = customer.profile
    return ContactPoint(
        channel=contact.channel,
        sender_id=contact.sender_id,
        name=contact.name or profile.name,
        phone=contact.phone or next(iter(profile.phones), None),
        email=contact.email or next(iter(profile.emails), None),
    )


def stored_contact_point(case: dict[str, Any]) -> ContactPoint | None:
    """The contact point stored on a case, if any."""
    return ContactPoint.model_validate(case["contact"]) if case.get("contact") else None
