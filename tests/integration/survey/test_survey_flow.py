"""Survey over the real broker and database: request, remind, expire, score, reject."""

from datetime import timedelta

import httpx
import orjson
import pytest
from pymongo import AsyncMongoClient

from services.survey.app import SurveySettings, create_app
from services.survey.domain import survey_id_for
from shared.clock import FakeClock
from shared.events import Event, SurveyAnswered
from tests.conftest import eventually
from tests.kafka_tools import RawKafka
from tests.runtime_state import stored_state
from tests.unit.survey.factories import T0, answered, assigned, classified, resolved

pytestmark = pytest.mark.integration


@pytest.fixture
async def survey(infra, settings_for, run_app):
    """A running survey service on a fake clock, and a raw Kafka client in its namespace."""
    settings = settings_for(SurveySettings)
    clock = FakeClock(T0)
    await run_app(create_app(settings, clock=clock))
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        yield kafka, clock


class Stored:
    """Survey's state as its runtime stored it (what a restarted owner restores)."""

    def __init__(self, client: AsyncMongoClient, settings: SurveySettings) -> None:
        self.db = client[settings.mongo_db]
        self.partitions = settings.partitions

    async def value(self, key: str) -> dict | None:
        return ((await stored_state(self.db, self.partitions)).values).get(key)

    async def waiting_resolutions(self) -> int:
        values = ((await stored_state(self.db, self.partitions)).values).values()
        return sum(
            1 for v in values if v["kind"] == "case" and v["resolution"] and not v["context"]
        )


@pytest.fixture
async def store(infra, settings_for):
    """Survey's stored state, to look at decisions that publish nothing."""
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    yield Stored(client, settings_for(SurveySettings))
    await client.close()


async def send(kafka: RawKafka, event: Event) -> None:
    """Publish `event` as its producer would: its topic, keyed by case (answers by survey)."""
    key = event.survey_id if isinstance(event, SurveyAnswered) else event.partition_key().decode()
    await kafka.send(event.event_type, event.to_bytes(), key=key)


async def lawyer_of(store: Stored, case_id: str) -> str | None:
    """The lawyer survey has on record for the case, once its assignment was consumed."""
    return ((await store.value(f"case/{case_id}")) or {}).get("lawyer_id")


async def no_resolution_waits(store: Stored) -> bool:
    """True once no resolution waits for its case's context."""
    return await store.waiting_resolutions() == 0


def reasons(records) -> dict[str, str]:
    """The DLQ reason of each dead-lettered event, by its event id."""
    return {orjson.loads(r.value)["event_id"]: dict(r.headers)["x-error"].decode() for r in records}


async def test_a_resolved_case_is_surveyed_and_its_answer_scored_with_the_case_context(
    survey, store
):
    kafka, _ = survey
    await send(kafka, classified("case-1"))
    await send(kafka, assigned("case-1", "law-land-01"))
    # Topics are consumed independently: as in life, the case is assigned before it ends.
    await eventually(lambda: lawyer_of(store, "case-1"))
    resolution = resolved("case-1")
    await send(kafka, resolution)

    [request] = await kafka.distinct("survey.requested", count=1)
    assert request["case_id"] == "case-1"
    assert request["customer_id"] == "cus-1"
    assert request["channel"] == "zalo"
    assert request["contact"]["sender_id"] == "zalo:42"
    assert request["questions"] == ["nps", "csat", "ces"]
    assert request["correlation_id"] == resolution.correlation_id
    assert request["legal_field"] == "land"
    assert request["expires_at"].startswith("2026-11-30T03:00:00")

    answer = answered(request["survey_id"], nps=10, csat=5, comment="Rất hài lòng")
    await send(kafka, answer)
    [score] = await kafka.events("survey.scored", count=1)
    assert score["survey_id"] == request["survey_id"]
    assert (score["channel"], score["legal_field"], score["segment"]) == (
        "zalo",
        "land",
        "potential",
    )
    assert score["lawyer_id"] == "law-land-01"
    assert (score["nps"], score["csat"], score["ces"]) == (10, 5, None)
    assert score["correlation_id"] == answer.correlation_id


async def test_a_resolution_that_arrives_before_the_case_is_known_waits_for_its_context(
    survey, store
):
    kafka, _ = survey
    resolution = resolved("case-early", lawyer_id="law-fam-02")
    await send(kafka, resolution)
    await eventually(lambda: store.waiting_resolutions())
    await send(kafka, classified("case-early", legal_field="family", channel="facebook"))

    [request] = await kafka.distinct("survey.requested", count=1)
    assert request["case_id"] == "case-early"
    assert request["channel"] == "facebook"
    assert request["lawyer_id"] == "law-fam-02"
    assert request["correlation_id"] == resolution.correlation_id
    # The decision is recorded right after the request is published.
    await eventually(lambda: no_resolution_waits(store))


async def test_one_reminder_after_a_day_then_expiry_after_a_week_then_answers_are_late(survey):
    kafka, clock = survey
    await send(kafka, classified("case-2"))
    await send(kafka, resolved("case-2"))
    [request] = await kafka.distinct("survey.requested", count=1)

    clock.advance(timedelta(hours=24))
    [reminder] = await kafka.events("survey.reminded", count=1)
    assert reminder["survey_id"] == request["survey_id"]
    assert reminder["contact"]["sender_id"] == "zalo:42"

    clock.advance(timedelta(days=6))
    [expiry] = await kafka.events("survey.expired", count=1)
    assert expiry["survey_id"] == request["survey_id"]
    assert (expiry["channel"], expiry["legal_field"]) == ("zalo", "land")
    assert len(kafka.seen["survey.reminded"]) == 1

    in_time_but_seen_after_expiry = answered(request["survey_id"], at=T0 + timedelta(days=6))
    await send(kafka, in_time_but_seen_after_expiry)
    late = answered(request["survey_id"], at=T0 + timedelta(days=8))
    await send(kafka, late)
    dead = await kafka.read("survey.answered.dlq", until=lambda r: len(r) >= 2)
    assert reasons(dead) == {
        str(in_time_but_seen_after_expiry.event_id): (
            f"Rejected: survey {request['survey_id']} expired at 2026-11-30T03:00:00+00:00"
        ),
        str(late.event_id): (
            "Rejected: late answer: given at 2026-12-01T03:00:00+00:00, "
            f"survey {request['survey_id']} expired at 2026-11-30T03:00:00+00:00"
        ),
    }


async def test_an_answered_survey_is_neither_reminded_nor_expired(survey):
    kafka, clock = survey
    for case_id in ("case-3", "case-4"):
        await send(kafka, classified(case_id, customer_id=f"cus-{case_id}"))
        await send(kafka, resolved(case_id))
    requests = await kafka.distinct("survey.requested", count=2)  # a resend keeps its id
    [answered_case] = [r for r in requests if r["case_id"] == "case-3"]
    await send(kafka, answered(answered_case["survey_id"]))
    await kafka.events("survey.scored", count=1)

    clock.advance(timedelta(days=8))
    # Both surveys' timers fall due together: once case-4's expiry is out, case-3's would be.
    await kafka.events("survey.expired", count=1)
    reminders = await kafka.settle("survey.reminded", quiet=0.5)
    expiries = await kafka.settle("survey.expired", quiet=0.5)
    assert [orjson.loads(r.value)["case_id"] for r in reminders] == ["case-4"]
    assert [orjson.loads(r.value)["case_id"] for r in expiries] == ["case-4"]


async def test_duplicate_unknown_late_and_out_of_range_answers_are_rejected_with_reasons(survey):
    kafka, _ = survey
    await send(kafka, classified("case-5"))
    await send(kafka, resolved("case-5"))
    [request] = await kafka.distinct("survey.requested", count=1)
    survey_id = request["survey_id"]

    first = answered(survey_id, nps=3)
    await send(kafka, first)
    await send(kafka, first)  # redelivered: a no-op
    second = answered(survey_id, nps=10)
    await send(kafka, second)
    stranger = answered("srv-nobody-asked")
    await send(kafka, stranger)
    late = answered(survey_id, at=T0 + timedelta(days=7, seconds=1))
    await send(kafka, late)
    out_of_range = {**answered(survey_id).model_dump(mode="json"), "nps": 11}
    await kafka.send("survey.answered", out_of_range, key=survey_id)

    dead = await kafka.read("survey.answered.dlq", until=lambda r: len(r) >= 4)
    why = reasons(dead)
    assert why[str(second.event_id)] == (
        f"Rejected: survey {survey_id} already answered "
        f"(event {first.event_id} at 2026-11-23T05:00:00+00:00)"
    )
    assert why[str(stranger.event_id)] == (
        "Rejected: unknown survey: srv-nobody-asked was never requested"
    )
    assert why[str(late.event_id)].startswith(
        "Rejected: late answer: given at 2026-11-30T03:00:01+00:00"
    )
    assert why[out_of_range["event_id"]] == (
        "invalid event: nps: Input should be less than or equal to 10"
    )
    scores = await kafka.settle("survey.scored", quiet=0.5)
    assert [orjson.loads(r.value)["nps"] for r in scores] == [3]


async def test_a_customer_who_answered_recently_is_not_surveyed_again(survey, store):
    kafka, _ = survey
    await send(kafka, classified("case-6", customer_id="cus-6"))
    await send(kafka, resolved("case-6"))
    [request] = await kafka.distinct("survey.requested", count=1)
    await send(kafka, answered(request["survey_id"]))
    await kafka.events("survey.scored", count=1)

    await send(kafka, classified("case-7", customer_id="cus-6"))
    await send(kafka, resolved("case-7"))
    decision = await eventually(lambda: store.value(f"survey/{survey_id_for('case-7')}"))
    assert decision["survey"]["skipped"] == "recently_answered"
    assert len(await kafka.settle("survey.requested", quiet=0.5)) == 1


async def test_a_reminder_due_while_survey_was_down_goes_out_after_the_restart(
    infra, settings_for, run_app
):
    settings = settings_for(SurveySettings)
    clock = FakeClock(T0)
    first = await run_app(create_app(settings, clock=clock))
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        await send(kafka, classified("case-9"))
        await send(kafka, resolved("case-9"))
        [request] = await kafka.distinct("survey.requested", count=1)
        await first.stop()

        clock.advance(timedelta(hours=30))
        await run_app(create_app(settings, clock=clock))
        [reminder] = await kafka.events("survey.reminded", count=1)
        assert reminder["survey_id"] == request["survey_id"]
        assert reminder["occurred_at"] == "2026-11-24T03:00:00Z"


async def test_surveys_waiting_for_their_answer_leave_memory_and_come_back_when_needed(
    infra, settings_for, run_app
):
    """One value per partition in memory: the surveys sent leave it (each waits for days)
    and come back from the cold store when an answer or a timer needs them."""
    settings = settings_for(SurveySettings, runtime_max_keys=1, runtime_keep_recent_s=0)
    clock = FakeClock(T0)
    app = create_app(settings, clock=clock)
    await run_app(app)
    transport = httpx.ASGITransport(app=app)
    async with (
        RawKafka(infra.kafka, settings.topic_prefix) as kafka,
        httpx.AsyncClient(transport=transport, base_url="http://survey") as http,
    ):
        cases = [f"case-wait-{n}" for n in range(6)]
        for n, case_id in enumerate(cases):
            await send(kafka, classified(case_id, customer_id=f"cus-wait-{n}"))
            await send(kafka, resolved(case_id))
        requests = await kafka.distinct("survey.requested", count=len(cases))

        async def keys_in_memory() -> float:
            text = (await http.get("/metrics")).text
            [line] = [x for x in text.splitlines() if x.startswith("lexcare_runtime_keys_in")]
            return float(line.split()[-1])

        # Six surveys waiting, and at most one value per partition left in memory.
        await eventually(lambda: keys_in_memory_at_most(keys_in_memory, settings.partitions))
        answered_ids = [r["survey_id"] for r in requests[:3]]
        for survey_id in answered_ids:
            await send(kafka, answered(survey_id, nps=8))
        scores = await kafka.distinct("survey.scored", count=3)
        assert sorted(s["survey_id"] for s in scores) == sorted(answered_ids)
        assert {(s["legal_field"], s["channel"], s["nps"]) for s in scores} == {("land", "zalo", 8)}
        clock.advance(timedelta(days=8))
        expired = await kafka.distinct("survey.expired", count=3)
        waiting = {r["survey_id"] for r in requests[3:]}
        assert {e["survey_id"] for e in expired} == waiting
        assert len(await kafka.settle("survey.reminded")) == 3
        assert len(await kafka.settle("survey.scored")) == 3


async def keys_in_memory_at_most(read, most: int) -> bool:
    return await read() <= most
