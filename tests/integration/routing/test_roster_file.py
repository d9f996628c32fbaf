"""The roster file at start: edits applied, run-time changes kept, deactivation reassigns."""

import pytest

from services.routing.app import create_app
from tests.conftest import eventually
from tests.integration.routing.conftest import latest_assignment, outcome, routing_state
from tests.kafka_tools import RawKafka
from tests.unit.routing.factories import classified, person, roster_updated, roster_yaml

pytestmark = pytest.mark.integration


async def test_a_restart_applies_file_edits_and_keeps_run_time_changes(
    infra, routing_settings, run_app, database
):
    settings = routing_settings(person("law-1", capacity=3), person("law-2", capacity=3))
    db = database(settings)
    first = await run_app(create_app(settings))
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        await kafka.send("case.classified", classified("c-1"), partition=0)
        [assigned] = await kafka.events("case.assigned", count=1)
        assert assigned["assignee_id"] == "law-1"
        # Run time: law-2 now also does family cases.
        family_too = person("law-2", capacity=3, legal_fields=["land", "family"])
        await kafka.send("roster.updated", roster_updated(family_too), key="law-2")

        async def knows_family() -> bool:
            roster = (await routing_state(db, settings)).values["roster"]
            return "family" in roster["people"]["law-2"]["legal_fields"]

        await eventually(knows_family)
        await first.stop()

        # The file now deactivates law-1; law-2's entry is unchanged in the file.
        settings.roster_file.write_text(
            roster_yaml(person("law-1", capacity=3, active=False), person("law-2", capacity=3))
        )
        await run_app(create_app(settings))

        moved = await latest_assignment(kafka, count=2)
        assert outcome(moved) == ("c-1", "law-2", "reassigned")
        assert moved["previous_assignee_id"] == "law-1"
        roster = (await routing_state(db, settings)).values["roster"]
        assert "family" in roster["people"]["law-2"]["legal_fields"]
