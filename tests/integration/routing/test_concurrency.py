"""Two routing instances at once never give a person more cases than their capacity."""

from collections import Counter

import pytest
from prometheus_client import REGISTRY

from services.routing.app import RoutingSettings, create_app
from tests.conftest import eventually
from tests.integration.routing.conftest import everything_on
from tests.kafka_tools import RawKafka
from tests.unit.routing.factories import classified, person

pytestmark = pytest.mark.integration

CASES = [f"case-{n:02d}" for n in range(16)]
PEOPLE = (person("law-a", capacity=3), person("law-b", capacity=3), person("law-c", capacity=2))
CAPACITY = {p.id: p.capacity for p in PEOPLE}


class RivalSettings(RoutingSettings):
    """A second routing deployment with its own consumer group, on the same database."""

    @property
    def consumer_group(self) -> str:
        return "lexcare-routing-rival"


def partitions(app, topic: str) -> set[int]:
    """Partitions of `topic` the app's consumers are assigned now."""
    return {
        tp.partition
        for subscriber in app.broker.subscribers
        if getattr(subscriber, "consumer", None) is not None
        for tp in subscriber.consumer.assignment()
        if tp.topic == topic
    }


async def assert_capacity_kept(infra, settings, db) -> None:
    """Slots within capacity, one slot per case, and the published story agrees."""
    slots = await db["slots"].find({}).to_list(None)
    per_person = Counter(s["person_id"] for s in slots)
    assert all(per_person[p] <= cap for p, cap in CAPACITY.items()), per_person
    assert sum(per_person.values()) == sum(CAPACITY.values())  # every slot used, none twice
    assert len({s["case_id"] for s in slots}) == len(slots)

    decoded = await everything_on(infra.kafka, settings.topic("case.assigned"))
    for case_id in CASES:
        named = {e["assignee_id"] for e in decoded if e["case_id"] == case_id and e["assignee_id"]}
        assert len(named) <= 1, (case_id, named)  # never two people for one case
    holder = {s["case_id"]: s["person_id"] for s in slots}
    for case_id, person_id in holder.items():
        named = {e["assignee_id"] for e in decoded if e["case_id"] == case_id and e["assignee_id"]}
        assert named == {person_id}


def conflicts() -> float:
    """Slot claims lost to a concurrent claim so far (lexcare_routing_slot_conflicts_total)."""
    return REGISTRY.get_sample_value("lexcare_routing_slot_conflicts_total") or 0.0


async def all_cases_routed(db) -> bool:
    states = await db["cases"].distinct("state")
    done = await db["cases"].count_documents({"state": {"$in": ["assigned", "waiting"]}})
    return done == len(CASES) and set(states) <= {"assigned", "waiting"}


async def test_two_instances_in_one_group_share_the_partitions_and_keep_capacity(
    infra, routing_settings, run_app, database
):
    settings = routing_settings(*PEOPLE, partitions=4)
    one = await run_app(create_app(settings))
    two = await run_app(create_app(settings))
    topic = settings.topic("case.classified")
    await eventually(
        lambda: (
            partitions(one.app, topic)
            and partitions(two.app, topic)
            and partitions(one.app, topic) | partitions(two.app, topic) == {0, 1, 2, 3}
        )
    )
    db = database(settings)
    before = conflicts()
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        for n, case_id in enumerate(CASES):
            await kafka.send("case.classified", classified(case_id, minute=n), partition=n % 4)
        await eventually(lambda: all_cases_routed(db))
        await assert_capacity_kept(infra, settings, db)
        print("slot conflicts", conflicts() - before)


async def test_two_instances_racing_on_every_event_never_exceed_capacity(
    infra, routing_settings, settings_for, run_app, database
):
    # Separate groups: both instances handle every event at the same moment, the harshest
    # race (a rebalance that hands a partition over mid-event looks like this too).
    settings = routing_settings(*PEOPLE)
    rival = RivalSettings(**settings.model_dump())
    one = await run_app(create_app(settings))
    two = await run_app(create_app(rival))
    topic = settings.topic("case.classified")
    await eventually(
        lambda: partitions(one.app, topic) == {0, 1} and partitions(two.app, topic) == {0, 1}
    )
    db = database(settings)
    before = conflicts()
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        for n, case_id in enumerate(CASES):
            await kafka.send("case.classified", classified(case_id, minute=n), key=case_id)
        await eventually(lambda: all_cases_routed(db))
        await assert_capacity_kept(infra, settings, db)
        print("slot conflicts", conflicts() - before)
