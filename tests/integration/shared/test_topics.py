"""ensure_topics over the real broker: replayed topics keep their whole history."""

from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from structlog.testing import capture_logs

from shared import topics
from shared.kafka import ensure_topics
from shared.settings import LexcareSettings
from tests.conftest import eventually

pytestmark = pytest.mark.integration

WEEK_MS = str(7 * 24 * 3600 * 1000)


@pytest.fixture
async def admin(infra) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=infra.kafka)
    await client.start()
    yield client
    await client.close()


TOPIC_OVERRIDE = 1
"""DescribeConfigs' config_source of a value set on the topic itself."""


async def topic_entries(admin: AIOKafkaAdminClient, topic: str) -> dict[str, dict]:
    """The effective configuration entries of `topic` (topic overrides and broker defaults)."""

    async def described() -> dict[str, dict]:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, None)]
        )
        [resource] = response.to_object()["resources"]
        return {e["config_names"]: e for e in resource["config_entries"]}

    # A topic just created may be unknown to the broker's metadata for a moment.
    return await eventually(described, timeout=10)


async def topic_config(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    """The effective configuration values of `topic`."""
    return {k: e["config_value"] for k, e in (await topic_entries(admin, topic)).items()}


async def test_replayed_topics_are_created_keeping_everything_and_metrics_kpi_compacted(
    settings_for, admin
):
    settings = settings_for(LexcareSettings)
    assert await ensure_topics(settings) == []

    for name in topics.REPLAYED_TOPICS:
        config = await topic_config(admin, settings.topic(name))
        assert (config["retention.ms"], config["retention.bytes"]) == ("-1", "-1"), name
        assert config["cleanup.policy"] == "delete", name
    kpi = await topic_config(admin, settings.topic(topics.METRICS_KPI))
    assert kpi["cleanup.policy"] == "compact"


async def test_dead_letter_topics_keep_the_brokers_default_retention(settings_for, admin):
    settings = settings_for(LexcareSettings)
    await ensure_topics(settings)

    for name in topics.EVENT_TOPICS:
        entries = await topic_entries(admin, settings.topic(topics.dlq(name)))
        assert entries["retention.ms"]["config_source"] != TOPIC_OVERRIDE, name


async def test_an_existing_replayed_topic_with_a_finite_retention_is_reported_not_altered(
    settings_for, admin
):
    settings = settings_for(LexcareSettings)
    trimmed = settings.topic(topics.CASE_RESOLVED)
    await admin.create_topics([NewTopic(trimmed, 1, 1, topic_configs={"retention.ms": WEEK_MS})])
    await topic_entries(admin, trimmed)

    with capture_logs() as logs:
        assert await ensure_topics(settings) == [trimmed]

    [warning] = [e for e in logs if e["event"] == "topic_retention_finite"]
    assert warning["log_level"] == "warning"
    assert warning["topic"] == trimmed and warning["retention_ms"] == WEEK_MS
    assert f"--entity-name {trimmed} --add-config retention.ms=-1" in warning["fix"]
    assert (await topic_config(admin, trimmed))["retention.ms"] == WEEK_MS
