"""Bad input never blocks metrics: it goes to the dead-letter topic and counting goes on."""

import pytest

from services.metrics.app import MetricsSettings, create_app
from tests.integration.metrics import scenario as s
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.integration


async def test_an_invalid_classification_is_dead_lettered_and_the_next_one_counts(
    infra, settings_for, run_app
):
    settings = settings_for(MetricsSettings, publish_interval_s=0.2)
    await run_app(create_app(settings))
    good = s.classified(
        "case-1", "cus-1", "2026-11-23T09:00:00+07:00", channel="website", legal_field="land"
    )
    bad = {**good, "event_id": "not-a-uuid", "channel": "fax"}
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        await kafka.send("case.classified", bad, key="case-1")
        await kafka.send("case.classified", good, key="case-1")

        [dead] = await kafka.read("case.classified.dlq", until=lambda r: len(r) >= 1)
        headers = dict(dead.headers)
        assert headers["x-consumer"].decode() == settings.consumer_group
        assert b"channel" in headers["x-error"]

        def counted(records: list) -> bool:
            return any(
                b'"kpi":"tft"' in r.value
                and b'"dimension_value":"website"' in r.value
                and b'"count":1' in r.value
                for r in records
            )

        await kafka.read("metrics.kpi", until=counted)
