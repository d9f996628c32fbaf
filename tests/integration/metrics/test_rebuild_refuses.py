"""A rebuild refuses to start over a log that lost its head — over the real broker.

The full log's case (the rebuild proceeds and equals live) is test_replay.py's.
"""

import asyncio
import os
import sys

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from services.metrics.app import MetricsSettings
from services.metrics.rebuild import LogTrimmed, rebuild
from shared import topics
from shared.kafka import ensure_topics
from tests.infra import ROOT
from tests.integration.metrics import scenario as s
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.integration

REFUSED = 3
"""`python -m services.metrics rebuild`'s exit status when it refuses to start."""


async def trimmed_log(settings: MetricsSettings, infra) -> TopicPartition:
    """Three events on case.resolved's partition 1, the first two deleted; that partition."""
    await ensure_topics(settings)
    resolved = TopicPartition(settings.topic(topics.CASE_RESOLVED), 1)
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        for n in range(3):
            event = s.resolved(f"case-{n}", "2026-11-02T10:00:00+07:00", "law-1")
            await kafka.send(topics.CASE_RESOLVED, event, partition=resolved.partition)
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka)
    await admin.start()
    try:
        await admin.delete_records({resolved: RecordsToDelete(before_offset=2)})
    finally:
        await admin.close()
    return resolved


async def test_a_rebuild_over_a_topic_whose_head_was_deleted_refuses_naming_it(infra, settings_for):
    settings = settings_for(MetricsSettings)
    resolved = await trimmed_log(settings, infra)

    with pytest.raises(LogTrimmed) as refused:
        await rebuild(settings)

    assert refused.value.earliest == {resolved: 2}
    assert f"{resolved.topic} partition 1: earliest offset 2, not 0" in str(refused.value)


async def test_the_rebuild_command_exits_non_zero_with_the_message(infra, settings_for, namespace):
    settings = settings_for(MetricsSettings)
    resolved = await trimmed_log(settings, infra)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LEXCARE_KAFKA": infra.kafka,
        "LEXCARE_MONGO_URL": infra.mongo_url,
        "LEXCARE_TOPIC_PREFIX": settings.topic_prefix,
        "LEXCARE_MONGO_DB_PREFIX": namespace,
        "LEXCARE_PARTITIONS": str(settings.partitions),
    }

    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.metrics",
        "rebuild",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(command.communicate(), timeout=120)

    assert command.returncode == REFUSED, (out, err)
    assert f"{resolved.topic} partition 1: earliest offset 2, not 0" in err.decode()
    assert "cannot rebuild" in err.decode()
    assert b"replayed" not in out
