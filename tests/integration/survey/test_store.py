"""Survey's store over the real database: what must hold when handlers race."""

import asyncio
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from services.survey.app import SurveySettings
from services.survey.domain import ANSWERED, EXPIRED, Outcome
from services.survey.store import SurveyStore

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(infra, settings_for):
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    store = SurveyStore(client[settings_for(SurveySettings).mongo_db])
    await store.prepare()
    yield store
    await client.close()


async def test_handlers_creating_one_case_at_once_both_keep_what_they_learnt(store):
    cases = [f"case-{i}" for i in range(20)]
    await asyncio.gather(
        *(store.remember_context(c, {"customer_id": "cus-1"}) for c in cases),
        *(store.remember_resolution(c, {"event_id": c}) for c in cases),
        *(store.remember_lawyer(c, "law-1") for c in cases),
    )
    for case_id in cases:
        case = await store.case(case_id)
        assert case["context"] == {"customer_id": "cus-1"}
        assert case["resolution"] == {"event_id": case_id}
        assert case["assigned_lawyer_id"] == "law-1"
    assert await store.waiting_resolutions() == 20
    await asyncio.gather(*(store.mark_survey_decided(c) for c in cases))
    assert await store.waiting_resolutions() == 0


async def test_an_answer_and_the_expiry_racing_for_one_survey_end_it_once(store):
    at = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    claims = [
        *(Outcome(f"srv-{i}", ANSWERED, at=at, answer_event_id=f"answer-{i}") for i in range(20)),
        *(Outcome(f"srv-{i}", EXPIRED, at=at) for i in range(20)),
    ]
    holding = await asyncio.gather(*(store.claim_outcome(c, customer_id="cus-1") for c in claims))
    for i in range(20):
        answer, expiry = holding[i], holding[20 + i]
        assert answer == expiry  # both sides see the same winner
        assert answer == await store.outcome(f"srv-{i}")
