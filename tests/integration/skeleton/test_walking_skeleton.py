"""The walking skeleton over the real broker and database: contact in, classification out."""

import uuid

import pytest

from services.intake.app import IntakeSettings
from services.intake.app import create_app as create_intake
from services.metrics.app import MetricsSettings
from services.metrics.app import create_app as create_metrics
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.integration


def contact(**overrides: object) -> dict:
    """A valid contact.received as a channel adapter would publish it."""
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": "contact.received",
        "schema_version": 1,
        "occurred_at": "2026-11-23T09:15:00+07:00",
        "producer": "zalo-adapter",
        "channel": "zalo",
        "sender_id": "zalo:100200300",
        "kind": "inquiry",
        "customer": {"name": "Nguyễn Văn An", "phone": "0912 345 678"},
        "message": "Tôi muốn hỏi về tranh chấp đất đai",
        "legal_field": "land",
        "an_unknown_field": "ignored, never fatal",
    }
    event.update(overrides)
    return event


async def test_a_contact_from_a_plain_client_is_classified_and_counted(
    infra, namespace, settings_for, run_app
):
    intake_settings = settings_for(IntakeSettings)
    await run_app(create_intake(intake_settings))
    await run_app(create_metrics(settings_for(MetricsSettings)))
    async with RawKafka(infra.kafka, intake_settings.topic_prefix) as kafka:
        sent = contact()
        await kafka.send("contact.received", sent, key=sent["sender_id"])

        [classified] = await kafka.events("case.classified", count=1)
        assert classified["correlation_id"] == sent["event_id"]
        assert classified["legal_field"] == "land"
        assert classified["channel"] == "zalo"
        assert classified["case_id"]

        kpis = await kafka.events("metrics.kpi", count=1)
        tft = [k for k in kpis if k["kpi"] == "tft" and k["dimension_value"] == "zalo"]
        assert tft[-1]["value"] == 1
        assert tft[-1]["count"] == 1


async def test_a_malformed_contact_goes_to_the_dlq_and_the_consumer_keeps_going(
    infra, settings_for, run_app
):
    settings = settings_for(IntakeSettings)
    await run_app(create_intake(settings))
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        await kafka.send("contact.received", b"{not json", key="k", partition=0)
        await kafka.send("contact.received", contact(channel="fax"), key="k", partition=0)
        unreachable = contact(sender_id=None, customer={"name": "An"})
        await kafka.send("contact.received", unreachable, key="k", partition=0)
        good = contact()
        await kafka.send("contact.received", good, key="k", partition=0)

        dead = await kafka.read("contact.received.dlq", until=lambda r: len(r) >= 3)
        reasons = [dict(r.headers)["x-error"].decode() for r in dead]
        assert dead[0].value == b"{not json"
        assert reasons[0].startswith("not valid JSON")
        assert "channel" in reasons[1]
        assert "no way to reach the customer" in reasons[2]
        consumer = settings.consumer_group.encode()
        assert consumer.startswith(b"lexcare-") and consumer.endswith(b"intake")
        assert all(dict(r.headers)["x-consumer"] == consumer for r in dead)

        [classified] = await kafka.events("case.classified", count=1)
        assert classified["correlation_id"] == good["event_id"]
