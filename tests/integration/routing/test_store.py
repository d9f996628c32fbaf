"""Capacity slots on the real database: many claims at the same moment."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from services.routing.store import RoutingStore
from tests.unit.routing.factories import person

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(infra, database, routing_settings):
    settings = routing_settings(person("unused"))
    routing = RoutingStore(database(settings))
    await routing.prepare()
    return routing


async def test_forty_simultaneous_claims_on_capacity_five_give_exactly_five_slots(store):
    lawyer = person("law-1", capacity=5)

    async def claim(n: int):
        return await store.claim_first_free(
            [lawyer], {}, case_id=f"case-{n}", cause=str(uuid.uuid4()), at=NOW
        )

    claims = await asyncio.gather(*(claim(n) for n in range(40)))
    won = [c for c in claims if c is not None]
    assert len(won) == 5
    assert sorted(c.slot for c in won) == [0, 1, 2, 3, 4]
    assert await store.open_cases_of("law-1") == 5


async def test_one_case_claimed_at_once_by_many_handlers_holds_one_slot(store):
    people = [person("law-1", capacity=10), person("law-2", capacity=10)]
    causes = [str(uuid.uuid4()) for _ in range(20)]

    async def claim(n: int):
        # Half rank law-1 first, half law-2: the case must still end up with one slot.
        ranked = people if n % 2 else people[::-1]
        return await store.claim_first_free(ranked, {}, case_id="case-x", cause=causes[n], at=NOW)

    claims = await asyncio.gather(*(claim(n) for n in range(20)))
    assert len({(c.person_id, c.slot, c.cause) for c in claims}) == 1  # everyone sees the winner
    assert await store.slots.count_documents({"case_id": "case-x"}) == 1


async def test_slots_held_above_a_lowered_capacity_block_new_claims(store):
    before = person("law-1", capacity=4)
    for n in range(4):
        await store.claim_first_free([before], {}, case_id=f"c-{n}", cause="x", at=NOW)
    await store.release("c-0")  # slots 1, 2, 3 still held
    after = person("law-1", capacity=2)
    # A stale view that believes slot 0 is free must not push the load to 4 > 2.
    assert await store.claim_first_free([after], {}, case_id="c-new", cause="y", at=NOW) is None
    assert await store.open_cases_of("law-1") == 3


async def test_a_claim_after_the_case_was_resolved_is_seen(store):
    await store.resolve("c-1", outcome="advised", lawyer_id=None, at=NOW)
    await store.resolve("c-1", outcome="won", lawyer_id=None, at=NOW)  # repeat changes nothing
    assert await store.is_resolved("c-1")
    assert (await store.resolutions.find_one({"_id": "c-1"}))["outcome"] == "advised"
    assert not await store.is_resolved("c-2")
