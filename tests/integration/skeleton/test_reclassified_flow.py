"""Staff's correction through the whole system over the real broker and database: intake
republishes the case, routing hands it to a lawyer of the new field, metrics counts it."""

import pytest

from services.intake.app import IntakeSettings
from services.intake.app import create_app as create_intake
from services.metrics.app import MetricsSettings
from services.metrics.app import create_app as create_metrics
from services.routing.app import RoutingSettings
from services.routing.app import create_app as create_routing
from tests.integration.intake.test_intake_flow import contact, staff_event
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.integration


@pytest.mark.timeout(240)
async def test_a_corrected_case_goes_to_a_lawyer_of_its_new_field_and_counts_once(
    infra, settings_for, run_app
):
    intake_settings = settings_for(IntakeSettings)
    await run_app(create_intake(intake_settings))
    await run_app(create_routing(settings_for(RoutingSettings)))
    await run_app(create_metrics(settings_for(MetricsSettings, publish_interval_s=0.2)))
    async with RawKafka(infra.kafka, intake_settings.topic_prefix) as kafka:
        sent = contact(message="Tôi muốn hỏi về lấn chiếm ranh giới đất", legal_field="land")
        await kafka.send("contact.received", sent, key=sent["sender_id"])
        [opened] = await kafka.events("case.classified", count=1)
        [first] = await kafka.events("case.assigned", count=1)
        assert first["legal_field"] == "land" and first["assignee_id"].startswith("law-")

        correction = staff_event(
            "case.reclassified",
            case_id=opened["case_id"],
            legal_field="criminal",
            agent_id="care-03",
            reason="the neighbour threatened him with a knife",
        )
        await kafka.send("case.reclassified", correction, key=opened["case_id"])
        again = (await kafka.events("case.classified", count=2))[1]
        assert again["correction"] is True and again["legal_field"] == "criminal"
        reassigned = (await kafka.events("case.assigned", count=2))[1]
        # No land lawyer of the roster knows criminal law: the case changes hands.
        assert reassigned["legal_field"] == "criminal"
        assert reassigned["assignee_id"] in {"law-criminal-01", "law-criminal-02"}
        assert reassigned["previous_assignee_id"] == first["assignee_id"]

        def counted(records: list) -> bool:
            rows = [r.value for r in records]
            return any(
                b'"kpi":"reclassification_rate"' in v
                and b'"window":"all"' in v
                and b'"dimension":"all"' in v
                and b'"value":1.0' in v
                for v in rows
            )

        await kafka.read("metrics.kpi", until=counted, timeout=60)
        tft = await kafka.settle("metrics.kpi", quiet=1.0)
    latest = {r.key: r.value for r in tft}
    # The correction is not a contact: one contact counted, in the case's new field.
    assert b'"value":1.0' in latest[b"tft|all|all|all|all"]
    assert b"tft|all|all|legal_field|criminal" in latest
    assert b'"count":0' in latest.get(b"tft|all|all|legal_field|land", b'"count":0')
