"""Every external event delivered twice, and every third case's staff events out of
order (resolution before contract and care report): the KPIs equal the input's, as in a
clean run; one case per contact; one survey per case."""

import asyncio

import pytest

from shared import topics
from tests.conftest import eventually
from tests.faults.test_crash_under_stream import Story, by_id, mismatches, react
from tests.faults.tools import pipeline
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.faults

CONTACTS = 40


@pytest.mark.timeout(900)  # a deadline for slow shared machines, not a timing check
async def test_duplicated_and_reordered_external_events_change_no_kpi(infra, namespace, tmp_path):
    prefix = f"{namespace}."
    story = Story(CONTACTS)
    services = pipeline(
        kafka=infra.kafka, mongo_url=infra.mongo_url, namespace=namespace, logs=tmp_path
    )
    stop = asyncio.Event()
    try:
        for service in services.values():
            service.start()
        await asyncio.gather(*(s.wait_ready(timeout=90) for s in services.values()))
        async with RawKafka(infra.kafka, prefix) as kafka:
            reactor = asyncio.create_task(react(infra, prefix, kafka, story, stop, twice=True))
            for contact in story.contacts:
                for _ in range(2):
                    await kafka.send("contact.received", contact, key=contact["sender_id"])
            await kafka.distinct("survey.scored", count=CONTACTS, timeout=180)
            port = services["metrics"].port
            expected = story.expected()
            await eventually(lambda: not mismatches(port, expected), timeout=90, interval=1)
            stop.set()
            await reactor
            classified = await kafka.settle("case.classified", quiet=1.0)
            requested = await kafka.settle("survey.requested", quiet=0.5)
            scored = await kafka.settle("survey.scored", quiet=0.5)
            kpi_wrong = mismatches(port, expected)
            dead = {t: await kafka.settle(f"{t}.dlq", quiet=0.2) for t in topics.EVENT_TOPICS}
    finally:
        stop.set()
        for service in services.values():
            await service.terminate()

    assert kpi_wrong == {}
    assert all(len(ids) == 1 for ids in by_id(classified, "contact_id").values())
    assert len(by_id(classified, "contact_id")) == CONTACTS
    per_survey = by_id(requested, "survey_id")
    assert len(per_survey) == CONTACTS and all(len(i) == 1 for i in per_survey.values())
    assert len(by_id(scored, "survey_id")) == CONTACTS
    # A second answer to an already answered survey is a duplicate (same event id): skipped.
    assert {t: len(r) for t, r in dead.items() if r} == {}
