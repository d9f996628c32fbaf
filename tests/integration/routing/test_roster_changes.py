"""Roster changes at run time (roster.updated), over the real Kafka and database."""

import pytest

from services.routing.app import create_app
from tests.integration.routing.conftest import held, latest_assignment, outcome, routing_state
from tests.kafka_tools import RawKafka
from tests.unit.routing.factories import classified, person, roster_updated

pytestmark = pytest.mark.integration


async def test_people_added_edited_and_deactivated_at_run_time_reroute_cases(
    infra, routing_settings, run_app, database
):
    settings = routing_settings(person("law-1", capacity=1))
    await run_app(create_app(settings))
    db = database(settings)
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        no_expert = classified("c-ip", "intellectual_property")
        await kafka.send("case.classified", no_expert, partition=0)
        await kafka.send("case.classified", classified("c-1", minute=1), partition=0)
        await kafka.send("case.classified", classified("c-2", minute=2), partition=0)
        first = await kafka.events("case.assigned", count=3)
        # Keyed by case, the assignments are on several partitions: read in any order.
        assert sorted((e["case_id"], e["assignee_id"], e["reason"]) for e in first) == [
            ("c-1", "law-1", "assigned"),
            ("c-2", None, "no_capacity"),
            ("c-ip", None, "no_expert"),
        ]

        # Added: an IP lawyer takes the case that waited for an expert.
        ip_lawyer = person("law-ip", legal_fields=["intellectual_property"])
        await kafka.send("roster.updated", roster_updated(ip_lawyer), key="law-ip")
        added = await latest_assignment(kafka, count=4)
        assert outcome(added) == ("c-ip", "law-ip", "assigned")

        # Added: a second land lawyer with one slot takes the case waiting for capacity.
        await kafka.send("roster.updated", roster_updated(person("law-2", capacity=1)))
        second = await latest_assignment(kafka, count=5)
        assert (second["case_id"], second["assignee_id"]) == ("c-2", "law-2")

        # Deactivated: law-1's case has nowhere to go (law-2 is full) and waits.
        gone = person("law-1", capacity=1, active=False)
        await kafka.send("roster.updated", roster_updated(gone), key="law-1")
        orphan = await latest_assignment(kafka, count=6)
        assert outcome(orphan) == ("c-1", None, "no_capacity")
        assert orphan["previous_assignee_id"] == "law-1"
        assert "law-1" not in held(await routing_state(db, settings)).values()

        # Edited: law-2 gets more capacity and takes over law-1's case.
        await kafka.send("roster.updated", roster_updated(person("law-2", capacity=3)))
        taken = await latest_assignment(kafka, count=7)
        assert outcome(taken) == ("c-1", "law-2", "reassigned")
        assert taken["previous_assignee_id"] == "law-1"

        # The deactivated person gets no new case.
        await kafka.send("case.classified", classified("c-3", minute=3), partition=0)
        new = await latest_assignment(kafka, count=8)
        assert (new["case_id"], new["assignee_id"]) == ("c-3", "law-2")


async def test_deactivating_a_person_hands_their_cases_to_a_free_colleague(
    infra, routing_settings, run_app
):
    settings = routing_settings(
        person("law-1", capacity=2, years_experience=20), person("law-2", capacity=2)
    )
    await run_app(create_app(settings))
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        await kafka.send("case.classified", classified("c-1"), partition=0)
        [assigned] = await kafka.events("case.assigned", count=1)
        assert assigned["assignee_id"] == "law-1"

        gone = person("law-1", capacity=2, years_experience=20, active=False)
        await kafka.send("roster.updated", roster_updated(gone), key="law-1")
        moved = await latest_assignment(kafka, count=2)
        assert outcome(moved) == ("c-1", "law-2", "reassigned")
        assert moved["previous_assignee_id"] == "law-1"
