"""The runtime's input topics: its internal ones created, all of them served and co-partitioned."""

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.kafka import admin_client, await_served, create_missing_topics
from shared.settings import LexcareSettings
from shared.topics import dlq

SERVED_TIMEOUT_S = 30.0


async def prepare_inputs(
    settings: LexcareSettings, *, inputs: set[str], internal: set[str]
) -> dict[str, int]:
    """Create the missing `internal` topics, wait until every input is served, return counts.

    A topic created a moment ago is not served yet, and a consumer that subscribes before
    every partition has a leader waits for its next metadata refresh (minutes); the counts
    are the partition count of each of `inputs` (prefixed names, internal ones included).
    """
    async with admin_client(settings) as admin:
        if internal:
            await _create_internal(admin, settings, inputs=inputs, internal=internal)
        names = sorted(inputs | {dlq(t) for t in internal})
        described = await await_served(admin, names, timeout_s=SERVED_TIMEOUT_S)
        counts = {t["topic"]: len(t["partitions"]) for t in described}
        return {t: n for t, n in counts.items() if t in inputs}


async def _create_internal(
    admin: AIOKafkaAdminClient,
    settings: LexcareSettings,
    *,
    inputs: set[str],
    internal: set[str],
) -> None:
    """Create the missing internal topics (and their dead letters) co-partitioned with the
    other inputs."""
    others = sorted(inputs - internal)
    counts = {len(t["partitions"]) for t in await admin.describe_topics(others)}
    count = max(counts - {0}, default=settings.partitions)
    names = sorted(internal | {dlq(t) for t in internal})
    await create_missing_topics(
        admin, [NewTopic(t, count, settings.replication_factor) for t in names]
    )


def check_copartitioned(counts: dict[str, int]) -> None:
    """Refuse input topics whose partition counts differ: a key would have two owners."""
    if len(set(counts.values())) > 1:
        raise RuntimeError(f"input topics must have one partition count: {counts}")
