"""Survey's handlers in memory (TestKafkaBroker, in-memory store): what they publish."""

from datetime import timedelta

import pytest
from faststream.kafka import KafkaMessage, TestKafkaBroker

from services.survey.app import SurveySettings
from services.survey.domain import EXPIRY, REMINDER, survey_id_for, timer_id
from services.survey.handlers import build_router
from shared import topics
from shared.clock import FakeClock
from shared.delivery import DeliveryGuard
from shared.events import Event
from shared.kafka import make_broker
from shared.logging import configure_logging
from shared.timers import Timer
from tests.unit.survey.factories import T0, answered, assigned, classified, resolved
from tests.unit.survey.memory_store import MemoryStore

OUTPUTS = (
    topics.SURVEY_REQUESTED,
    topics.SURVEY_REMINDED,
    topics.SURVEY_EXPIRED,
    topics.SURVEY_SCORED,
    topics.dlq(topics.SURVEY_ANSWERED),
)


class Harness:
    """Survey's router on an in-memory broker, with probes on every topic it writes."""

    def __init__(self) -> None:
        settings = SurveySettings(retry_backoff_s=0)
        self.store = MemoryStore()
        self.clock = FakeClock(T0)
        self.broker = make_broker(settings, configure_logging("survey"), DeliveryGuard(settings))
        routing = build_router(settings, self.store, clock=self.clock, policy=settings.policy())
        self.fire_timer = routing.fire_timer
        self.broker.include_router(routing.router)
        self.out: dict[str, list[dict]] = {topic: [] for topic in OUTPUTS}
        self.reasons: list[str] = []
        for topic in OUTPUTS:
            self.broker.subscriber(topic)(self._probe(topic))

    def _probe(self, topic: str):
        async def probe(body: dict, message: KafkaMessage) -> None:
            self.out[topic].append(body)
            if topic.endswith(".dlq"):
                self.reasons.append(message.headers["x-error"])

        probe.__name__ = f"probe_{topic.replace('.', '_')}"
        return probe

    async def send(self, *events: Event) -> None:
        for event in events:
            await self.broker.publish(event.to_bytes(), topic=event.event_type)

    async def fire(self, survey_id: str, kind: str) -> None:
        """Run the survey's timer of `kind` as the timer loop would when it falls due."""
        timer = self.store.timers.pending[timer_id(survey_id, kind)]
        await self.fire_timer(
            Timer(
                timer_id(survey_id, kind), timer["due_at"], kind, timer["payload"], timer["case_id"]
            )
        )

    @property
    def requested(self) -> list[dict]:
        return self.out[topics.SURVEY_REQUESTED]

    @property
    def scored(self) -> list[dict]:
        return self.out[topics.SURVEY_SCORED]


@pytest.fixture
async def survey():
    harness = Harness()
    async with TestKafkaBroker(harness.broker):
        yield harness


async def test_a_resolved_case_gets_a_survey_on_its_channel_with_its_deadlines(survey):
    resolution = resolved("case-1")
    await survey.send(classified("case-1"), assigned("case-1", "law-land-01"), resolution)
    [request] = survey.requested
    assert request["survey_id"] == survey_id_for("case-1")
    assert request["event_id"] != str(resolution.event_id)
    assert request["correlation_id"] == resolution.correlation_id
    assert (request["channel"], request["customer_id"]) == ("zalo", "cus-1")
    assert request["contact"]["phone"] == "+84912345678"
    assert (request["legal_field"], request["lawyer_id"]) == ("land", "law-land-01")
    assert request["occurred_at"] == "2026-11-23T03:00:00Z"
    assert request["expires_at"] == "2026-11-30T03:00:00Z"
    due = {t["kind"]: t["due_at"] for t in survey.store.timers.pending.values()}
    assert due == {REMINDER: T0 + timedelta(hours=24), EXPIRY: T0 + timedelta(days=7)}


async def test_the_resolution_is_kept_without_its_free_text_summary(survey):
    await survey.send(resolved("case-1"))
    assert "summary" not in survey.store.cases["case-1"]["resolution"]


async def test_a_resolution_before_the_case_is_known_is_surveyed_when_the_case_arrives(survey):
    resolution = resolved("case-1", lawyer_id="law-x")
    await survey.send(resolution)
    assert survey.requested == []
    await survey.send(classified("case-1"))
    [request] = survey.requested
    assert request["correlation_id"] == resolution.correlation_id
    assert request["lawyer_id"] == "law-x"
    await survey.send(classified("case-1"))  # a later contact on the case asks nothing again
    assert len(survey.requested) == 1


async def test_a_redelivered_or_repeated_resolution_sends_one_survey(survey):
    first = resolved("case-1")
    await survey.send(classified("case-1"), first, first, resolved("case-1"))
    assert len(survey.requested) == 1


async def test_a_customer_who_answered_last_week_gets_no_survey(survey):
    survey.store.answered("srv-old", "cus-1", at=T0 - timedelta(days=7))
    await survey.send(classified("case-1"), resolved("case-1"))
    assert survey.requested == []
    assert survey.store.surveys[survey_id_for("case-1")][0].skipped == "recently_answered"
    assert survey.store.timers.pending == {}


async def test_a_customer_who_answered_two_months_ago_is_surveyed(survey):
    survey.store.answered("srv-old", "cus-1", at=T0 - timedelta(days=60))
    await survey.send(classified("case-1"), resolved("case-1"))
    assert len(survey.requested) == 1


async def test_an_answer_is_scored_with_the_case_context_and_stops_the_timers(survey):
    await survey.send(classified("case-1"), assigned("case-1"), resolved("case-1"))
    answer = answered(survey_id_for("case-1"), nps=8, ces=3)
    await survey.send(answer)
    [score] = survey.scored
    assert (score["case_id"], score["customer_id"], score["segment"]) == (
        "case-1",
        "cus-1",
        "potential",
    )
    assert (score["channel"], score["legal_field"], score["lawyer_id"]) == (
        "zalo",
        "land",
        "law-land-01",
    )
    assert (score["nps"], score["csat"], score["ces"]) == (8, None, 3)
    assert score["correlation_id"] == answer.correlation_id
    assert survey.store.timers.pending == {}
    assert survey.store.timers.cancelled == {
        timer_id(survey_id_for("case-1"), REMINDER),
        timer_id(survey_id_for("case-1"), EXPIRY),
    }


async def test_a_lawyer_assigned_after_the_survey_went_out_is_on_the_score(survey):
    await survey.send(classified("case-1"), resolved("case-1"), assigned("case-1", "law-late"))
    await survey.send(answered(survey_id_for("case-1")))
    assert survey.scored[0]["lawyer_id"] == "law-late"


async def test_the_same_answer_redelivered_is_scored_once_and_not_rejected(survey):
    await survey.send(classified("case-1"), resolved("case-1"))
    answer = answered(survey_id_for("case-1"))
    await survey.send(answer, answer)
    assert len(survey.scored) == 1
    assert survey.reasons == []


async def test_invalid_answers_go_to_the_dead_letter_topic_with_their_reason(survey):
    await survey.send(classified("case-1"), resolved("case-1"))
    survey_id = survey_id_for("case-1")
    first = answered(survey_id)
    await survey.send(
        first,
        answered(survey_id, nps=2),
        answered("srv-unknown"),
        answered(survey_id, at=T0 + timedelta(days=8)),
    )
    await survey.broker.publish(
        {**answered(survey_id).model_dump(mode="json"), "nps": None}, topic=topics.SURVEY_ANSWERED
    )
    assert len(survey.scored) == 1
    assert survey.reasons == [
        f"Rejected: survey {survey_id} already answered "
        f"(event {first.event_id} at 2026-11-23T05:00:00+00:00)",
        "Rejected: unknown survey: srv-unknown was never requested",
        f"Rejected: late answer: given at 2026-12-01T03:00:00+00:00, survey {survey_id} "
        "expired at 2026-11-30T03:00:00+00:00",
        "invalid event: <root>: Value error, a survey answer needs at least one of nps, csat, ces",
    ]


async def test_an_unanswered_survey_is_reminded_once_then_expires(survey):
    await survey.send(classified("case-1"), resolved("case-1"))
    survey_id = survey_id_for("case-1")
    await survey.fire(survey_id, REMINDER)
    [reminder] = survey.out[topics.SURVEY_REMINDED]
    assert (reminder["survey_id"], reminder["channel"]) == (survey_id, "zalo")
    assert reminder["occurred_at"] == "2026-11-24T03:00:00Z"
    assert reminder["contact"]["sender_id"] == "zalo:42"

    await survey.fire(survey_id, EXPIRY)
    [expiry] = survey.out[topics.SURVEY_EXPIRED]
    assert (expiry["survey_id"], expiry["legal_field"]) == (survey_id, "land")
    assert expiry["occurred_at"] == "2026-11-30T03:00:00Z"

    await survey.send(answered(survey_id, at=T0 + timedelta(days=1)))
    assert survey.scored == []
    assert survey.reasons == [f"Rejected: survey {survey_id} expired at 2026-11-30T03:00:00+00:00"]


async def test_a_timer_fired_twice_publishes_the_same_event_id(survey):
    await survey.send(classified("case-1"), resolved("case-1"))
    survey_id = survey_id_for("case-1")
    await survey.fire(survey_id, EXPIRY)
    await survey.fire(survey_id, EXPIRY)
    first, again = survey.out[topics.SURVEY_EXPIRED]
    assert first["event_id"] == again["event_id"]


async def test_an_answered_survey_whose_timers_still_fire_is_neither_reminded_nor_expired(survey):
    await survey.send(classified("case-1"), resolved("case-1"))
    survey_id = survey_id_for("case-1")
    timers = dict(survey.store.timers.pending)
    await survey.send(answered(survey_id))
    survey.store.timers.pending = timers  # as if the cancel lost a race with the timer loop
    await survey.fire(survey_id, REMINDER)
    await survey.fire(survey_id, EXPIRY)
    assert survey.out[topics.SURVEY_REMINDED] == []
    assert survey.out[topics.SURVEY_EXPIRED] == []
    assert len(survey.scored) == 1
