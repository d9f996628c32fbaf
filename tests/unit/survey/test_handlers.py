"""Survey's rules in memory (no broker, no database): what they publish and keep, with
the case's, the survey id's and the customer's partitions apart as Kafka would put them."""

from datetime import timedelta

import pytest

from services.survey.app import SurveySettings
from services.survey.domain import (
    EXPIRY,
    REMINDER,
    CustomerSurveys,
    SurveyRecord,
    survey_id_for,
    timer_id,
)
from services.survey.handlers import survey_runtime
from shared import topics
from shared.clock import FakeClock
from shared.events import Event, SurveyAnswered
from tests.runtime_harness import NO_DATABASE, RuleHarness
from tests.unit.survey.factories import T0, answered, assigned, classified, resolved


class Harness(RuleHarness):
    """Survey's runtime rules over three in-memory partitions."""

    def __init__(self) -> None:
        settings = SurveySettings()
        clock = FakeClock(T0)
        self.links = settings.links()
        runtime = survey_runtime(
            settings, NO_DATABASE, clock=clock, policy=settings.policy(), links=self.links
        )
        super().__init__(runtime, clock)

    async def send(self, *events: Event, key: str | None = None) -> None:
        for event in events:  # answers keyed by survey id unless told, as an adapter may
            answer = isinstance(event, SurveyAnswered)
            super().send(event, key=key or (event.survey_id if answer else None))

    def answered(self, customer_id: str, *, at) -> None:
        """As if the customer answered another survey at `at`."""
        partition = self.partition_of(customer_id.encode())
        self.states[partition].put(f"customer/{customer_id}", CustomerSurveys(last_answered_at=at))

    def survey(self, case_id: str) -> SurveyRecord | None:
        return self.value(f"survey/{survey_id_for(case_id)}")

    def pending(self) -> dict:
        return {t.kind: t.due_at for t in self.timers()}

    @property
    def requested(self) -> list[dict]:
        return self.out[topics.SURVEY_REQUESTED]

    @property
    def scored(self) -> list[dict]:
        return self.out[topics.SURVEY_SCORED]

    @property
    def rejected(self) -> list[str]:
        return list(self.reasons.values())


@pytest.fixture
def survey():
    return Harness()


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
    assert survey.pending() == {REMINDER: T0 + timedelta(hours=24), EXPIRY: T0 + timedelta(days=7)}


async def test_the_survey_request_links_to_the_survey_page_with_a_sealed_token(survey):
    await survey.send(classified("case-1"), resolved("case-1"))
    [request] = survey.requested
    base, token = request["survey_url"].rsplit("/s/", 1)
    assert base == "http://127.0.0.1:8086"
    assert "srv-" not in token and "case-1" not in token
    claims = survey.links.open(token)
    assert claims is not None
    assert (claims.survey_id, claims.case_id, claims.channel) == (
        survey_id_for("case-1"),
        "case-1",
        "zalo",
    )
    assert claims.questions == ("nps", "csat", "ces")
    assert claims.expires_at.isoformat() == "2026-11-30T03:00:00+00:00"
    survey.advance(timedelta(hours=24))
    [reminder] = survey.out[topics.SURVEY_REMINDED]
    assert reminder["survey_url"] == request["survey_url"]


async def test_the_resolution_is_kept_without_its_free_text_summary(survey):
    await survey.send(resolved("case-1"))
    kept = survey.value("case/case-1")
    assert kept.resolution is not None
    assert "tư vấn" not in kept.model_dump_json()


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
    survey.answered("cus-1", at=T0 - timedelta(days=7))
    await survey.send(classified("case-1"), resolved("case-1"))
    assert survey.requested == []
    assert survey.survey("case-1").survey.skipped == "recently_answered"
    assert survey.timers() == []


async def test_a_customer_who_answered_two_months_ago_is_surveyed(survey):
    survey.answered("cus-1", at=T0 - timedelta(days=60))
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
    assert survey.timers() == []
    assert survey.survey("case-1").outcome.answer_event_id == str(answer.event_id)
    assert survey.value("customer/cus-1").last_answered_at == answer.occurred_at


async def test_a_lawyer_assigned_after_the_survey_went_out_is_on_the_score(survey):
    await survey.send(classified("case-1"), resolved("case-1"), assigned("case-1", "law-late"))
    await survey.send(answered(survey_id_for("case-1")))
    assert survey.scored[0]["lawyer_id"] == "law-late"


async def test_the_same_answer_redelivered_is_scored_once_and_not_rejected(survey):
    await survey.send(classified("case-1"), resolved("case-1"))
    answer = answered(survey_id_for("case-1"))
    await survey.send(answer, answer)
    assert len(survey.scored) == 1
    assert survey.rejected == []


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
    survey.send_raw(
        topics.SURVEY_ANSWERED, {**answered(survey_id).model_dump(mode="json"), "nps": None}
    )
    assert len(survey.scored) == 1
    assert survey.rejected == [
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
    survey.advance(timedelta(hours=24))
    [reminder] = survey.out[topics.SURVEY_REMINDED]
    assert (reminder["survey_id"], reminder["channel"]) == (survey_id, "zalo")
    assert reminder["occurred_at"] == "2026-11-24T03:00:00Z"
    assert reminder["contact"]["sender_id"] == "zalo:42"

    survey.advance(timedelta(days=6))
    [expiry] = survey.out[topics.SURVEY_EXPIRED]
    assert (expiry["survey_id"], expiry["legal_field"]) == (survey_id, "land")
    assert expiry["occurred_at"] == "2026-11-30T03:00:00Z"

    await survey.send(answered(survey_id, at=T0 + timedelta(days=1)))
    assert survey.scored == []
    assert survey.rejected == [f"Rejected: survey {survey_id} expired at 2026-11-30T03:00:00+00:00"]


async def test_a_timer_fired_again_after_a_crash_publishes_the_same_event_id():
    expiries = []
    for _ in range(2):  # the same case, as a restarted owner replays it
        survey = Harness()
        await survey.send(classified("case-1"), resolved("case-1"))
        survey.advance(timedelta(days=7))
        [expiry] = survey.out[topics.SURVEY_EXPIRED]
        expiries.append(expiry["event_id"])
    assert expiries[0] == expiries[1]


async def test_an_answered_survey_whose_timers_still_fire_is_neither_reminded_nor_expired(survey):
    await survey.send(classified("case-1"), resolved("case-1"))
    survey_id = survey_id_for("case-1")
    pending = [(state, dict(state.timers)) for state in survey.states]
    await survey.send(answered(survey_id))
    for state, timers in pending:  # as if the cancel were lost
        state.timers.update(timers)
    assert len(survey.timers()) == 2
    survey.advance(timedelta(days=8))
    assert survey.out[topics.SURVEY_REMINDED] == []
    assert survey.out[topics.SURVEY_EXPIRED] == []
    assert len(survey.scored) == 1


async def test_the_survey_lives_with_its_customer_and_answers_find_it_by_survey_id(survey):
    await survey.send(classified("case-1", customer_id="cus-1"), resolved("case-1"))
    survey_id = survey_id_for("case-1")
    owner = survey.partition_of(b"cus-1")
    assert f"survey/{survey_id}" in survey.states[owner].values
    assert f"link/{survey_id}" in survey.states[survey.partition_of(survey_id.encode())].values
    assert sorted(survey.states[owner].timers) == [
        timer_id(survey_id, EXPIRY),
        timer_id(survey_id, REMINDER),
    ]
    await survey.send(answered(survey_id))  # keyed by survey id
    await survey.send(answered(survey_id_for("case-1"), nps=3), key="case-1")
    assert len(survey.scored) == 1
    assert len(survey.rejected) == 1


async def test_two_cases_of_one_customer_resolved_together_survey_once_when_one_is_answered(
    survey,
):
    for case_id in ("case-a", "case-b"):
        await survey.send(classified(case_id, customer_id="cus-9"))
    await survey.send(resolved("case-a"))
    await survey.send(answered(survey_id_for("case-a")))
    await survey.send(resolved("case-b"))
    assert [r["case_id"] for r in survey.requested] == ["case-a"]
    assert survey.survey("case-b").survey.skipped == "recently_answered"
