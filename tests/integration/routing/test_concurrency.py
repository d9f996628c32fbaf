"""Two routing instances in one group never give a person more cases than their capacity:
whichever instance reads a case, the decision is made by the one owner of the roster."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.routing import domain
from services.routing.app import RoutingSettings, read_yaml, roster_file_step
from services.routing.handlers import routing_runtime
from services.routing.state import ROSTER_KEY
from shared.events import RosterPerson
from shared.kafka import ensure_topics
from shared.runtime import Runtime
from tests.conftest import eventually
from tests.integration.routing.conftest import everything_on, held, routing_state
from tests.kafka_tools import RawKafka
from tests.unit.routing.factories import classified, person

pytestmark = pytest.mark.integration

CASES = [f"case-{n:02d}" for n in range(16)]
PEOPLE = (person("law-a", capacity=3), person("law-b", capacity=3), person("law-c", capacity=2))
CAPACITY = {p.id: p.capacity for p in PEOPLE}


@pytest.fixture
async def two_instances(infra, routing_settings) -> AsyncIterator[Callable[..., Any]]:
    """Start two routing runtimes in one consumer group, the roster file handed in."""
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    started: list[Runtime[Any]] = []

    async def start(*people: RosterPerson, partitions: int) -> tuple[RoutingSettings, list]:
        settings = routing_settings(*people, partitions=partitions)
        fees = domain.parse_fee_schedule(read_yaml(settings.fees_file))
        await ensure_topics(settings)  # what the app does before its runtime starts
        for _ in range(2):
            runtime = routing_runtime(settings, client[settings.mongo_db], fees=fees)
            await runtime.start()  # the first creates routing.decide
            started.append(runtime)
            if len(started) == 1:
                async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
                    step = roster_file_step(list(people)).model_dump(mode="json")
                    await kafka.send("routing.decide", step, key=ROSTER_KEY)
        everything = set(range(partitions))
        await eventually(
            lambda: (
                all(r.partitions for r in started)
                and set().union(*(r.partitions for r in started)) == everything
            ),
            timeout=60,
        )
        return settings, started

    yield start
    for runtime in started:
        await runtime.stop()
    await client.close()


async def test_two_cases_classified_at_once_on_two_partitions_never_overbook_a_lawyer(
    infra, two_instances
):
    settings, (one, two) = await two_instances(person("law-1", capacity=1), partitions=2)
    assert not set(one.partitions) & set(two.partitions)  # each instance reads one partition
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        await asyncio.gather(
            kafka.send("case.classified", classified("c-left"), partition=0),
            kafka.send("case.classified", classified("c-right"), partition=1),
        )
        events = await kafka.events("case.assigned", count=2)
    assert Counter((e["assignee_id"], e["reason"]) for e in events) == Counter(
        [("law-1", "assigned"), (None, "no_capacity")]
    )
    db = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    try:
        stored = await routing_state(db[settings.mongo_db], settings)
    finally:
        await db.close()
    [(case_id, holder)] = held(stored).items()
    assert holder == "law-1"
    assert case_id in {e["case_id"] for e in events if e["assignee_id"]}


async def test_two_instances_share_the_partitions_and_keep_capacity(infra, two_instances):
    settings, _ = await two_instances(*PEOPLE, partitions=4)
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        for n, case_id in enumerate(CASES):
            await kafka.send("case.classified", classified(case_id, minute=n), partition=n % 4)
        await kafka.events("case.assigned", count=len(CASES))
    decoded = await everything_on(infra.kafka, settings.topic("case.assigned"))
    db = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    try:
        holder = held(await routing_state(db[settings.mongo_db], settings))
    finally:
        await db.close()
    per_person = Counter(holder.values())
    assert per_person == Counter(CAPACITY)  # every slot used, none twice
    for case_id in CASES:
        named = {e["assignee_id"] for e in decoded if e["case_id"] == case_id and e["assignee_id"]}
        assert named == ({holder[case_id]} if case_id in holder else set()), case_id
    assert len(decoded) == len(CASES)
