"""A corrected field over the real broker: routing re-quotes the case and hands it to a
lawyer of the new field when its holder does not know it."""

import pytest

from services.routing.app import create_app
from tests.integration.routing.conftest import held, latest_assignment, outcome, routing_state
from tests.kafka_tools import RawKafka
from tests.unit.routing.factories import classified, person

pytestmark = pytest.mark.integration


async def test_a_corrected_case_goes_to_a_lawyer_of_its_new_field(
    infra, routing_settings, run_app, database
):
    settings = routing_settings(
        person("law-family", legal_fields=["family"]), person("law-labor", legal_fields=["labor"])
    )
    await run_app(create_app(settings))
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        await kafka.send("case.classified", classified("c-1", "family"))
        assert outcome(await latest_assignment(kafka, count=1)) == ("c-1", "law-family", "assigned")

        fixed = classified("c-1", "labor", new_case=False, correction=True, minute=5)
        await kafka.send("case.classified", fixed)
        moved = await latest_assignment(kafka, count=2)
        assert outcome(moved) == ("c-1", "law-labor", "reassigned")
        assert (moved["previous_assignee_id"], moved["legal_field"]) == ("law-family", "labor")
        quotes = await kafka.events("fee.quoted", count=2)
        assert [q["legal_field"] for q in quotes] == ["family", "labor"]
        assert held(await routing_state(database(settings), settings)) == {"c-1": "law-labor"}
