"""Survey's rules without a broker or a database: fatigue, deadlines, answer validation."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.survey import domain
from services.survey.domain import ANSWERED, EXPIRED, Outcome, SurveyPolicy
from tests.unit.survey.factories import T0, answered

CONTEXT = {
    "customer_id": "cus-1",
    "channel": "zalo",
    "legal_field": "land",
    "segment": "potential",
    "contact": {"channel": "zalo", "sender_id": "zalo:42"},
}


def plan(*, last_answered_at=None, policy: SurveyPolicy | None = None) -> domain.Survey:
    return domain.plan_survey(
        case_id="case-1",
        context=CONTEXT,
        lawyer_id="law-land-01",
        now=T0,
        last_answered_at=last_answered_at,
        policy=policy or SurveyPolicy(),
    )


SURVEY = plan()


def test_a_case_has_one_survey_id_and_cases_never_share_one():
    assert domain.survey_id_for("case-1") == domain.survey_id_for("case-1")
    assert domain.survey_id_for("case-1") != domain.survey_id_for("case-2")
    assert SURVEY.survey_id == domain.survey_id_for("case-1")


def test_a_survey_is_reminded_after_a_day_and_expires_after_a_week():
    assert SURVEY.requested_at == T0
    assert SURVEY.remind_at == T0 + timedelta(hours=24)
    assert SURVEY.expires_at == T0 + timedelta(days=7)
    assert SURVEY.questions == ("nps", "csat", "ces")
    assert SURVEY.skipped is None
    assert (SURVEY.channel, SURVEY.legal_field, SURVEY.segment) == ("zalo", "land", "potential")


def test_reminder_expiry_and_questions_follow_the_policy():
    policy = SurveyPolicy(
        reminder_after=timedelta(hours=2), expires_after=timedelta(days=3), questions=("nps",)
    )
    survey = plan(policy=policy)
    assert survey.remind_at == T0 + timedelta(hours=2)
    assert survey.expires_at == T0 + timedelta(days=3)
    assert survey.questions == ("nps",)


@pytest.mark.parametrize(
    ("answered_ago", "skipped"),
    [
        (None, None),
        (timedelta(days=1), "recently_answered"),
        (timedelta(days=29, hours=23), "recently_answered"),
        (timedelta(days=30), None),
        (timedelta(days=400), None),
    ],
)
def test_a_customer_who_answered_in_the_last_30_days_is_not_surveyed(answered_ago, skipped):
    last = None if answered_ago is None else T0 - answered_ago
    assert plan(last_answered_at=last).skipped == skipped


def test_the_fatigue_window_is_configurable_and_zero_always_asks():
    yesterday = T0 - timedelta(days=1)
    never_tired = SurveyPolicy(fatigue_window=timedelta(0))
    assert plan(last_answered_at=yesterday, policy=never_tired).skipped is None
    assert not domain.recently_answered(yesterday, now=T0, window=timedelta(0))
    assert domain.recently_answered(yesterday, now=T0, window=timedelta(days=2))
    assert not domain.recently_answered(yesterday, now=T0, window=timedelta(hours=12))


def test_the_survey_is_about_the_lawyer_who_resolved_the_case_else_the_one_assigned():
    assert domain.handling_lawyer(resolved_by="law-a", assigned="law-b") == "law-a"
    assert domain.handling_lawyer(resolved_by=None, assigned="law-b") == "law-b"
    assert domain.handling_lawyer(resolved_by=None, assigned=None) is None


def test_a_full_answer_in_time_is_valid():
    assert (
        domain.answer_problem(answered(SURVEY.survey_id, nps=9, csat=4, ces=2), SURVEY, None)
        is None
    )


def test_a_partial_answer_with_only_nps_is_valid():
    assert domain.answer_problem(answered(SURVEY.survey_id, nps=0), SURVEY, None) is None


def test_an_answer_to_an_unknown_survey_is_rejected():
    problem = domain.answer_problem(answered("srv-x"), None, None)
    assert problem == "unknown survey: srv-x was never requested"


def test_an_answer_to_a_survey_skipped_for_fatigue_is_rejected():
    skipped = plan(last_answered_at=T0 - timedelta(days=2))
    problem = domain.answer_problem(answered(skipped.survey_id), skipped, None)
    assert problem == f"unknown survey: {skipped.survey_id} was not sent (recently_answered)"


def test_a_score_the_survey_did_not_ask_for_is_rejected():
    nps_only = plan(policy=SurveyPolicy(questions=("nps",)))
    problem = domain.answer_problem(answered(nps_only.survey_id, nps=9, ces=3), nps_only, None)
    assert problem == f"score not asked by survey {nps_only.survey_id}: ces"


def test_an_answer_given_after_the_expiry_is_rejected_as_late():
    late = answered(SURVEY.survey_id, at=SURVEY.expires_at + timedelta(seconds=1))
    problem = domain.answer_problem(late, SURVEY, None)
    assert problem == (
        "late answer: given at 2026-11-30T03:00:01+00:00, "
        f"survey {SURVEY.survey_id} expired at 2026-11-30T03:00:00+00:00"
    )


def test_an_answer_given_at_the_expiry_moment_is_still_in_time():
    assert (
        domain.answer_problem(answered(SURVEY.survey_id, at=SURVEY.expires_at), SURVEY, None)
        is None
    )


def test_an_answer_to_an_expired_survey_is_rejected_even_if_given_before_the_expiry():
    expired = Outcome(SURVEY.survey_id, EXPIRED, at=SURVEY.expires_at)
    problem = domain.answer_problem(answered(SURVEY.survey_id), SURVEY, expired)
    assert problem == f"survey {SURVEY.survey_id} expired at 2026-11-30T03:00:00+00:00"


def test_a_second_answer_to_an_answered_survey_is_rejected():
    first = answered(SURVEY.survey_id)
    held = Outcome(
        SURVEY.survey_id, ANSWERED, at=first.occurred_at, answer_event_id=str(first.event_id)
    )
    problem = domain.answer_problem(answered(SURVEY.survey_id, nps=1), SURVEY, held)
    assert problem == (
        f"survey {SURVEY.survey_id} already answered "
        f"(event {first.event_id} at 2026-11-23T05:00:00+00:00)"
    )


def test_the_answer_that_answered_the_survey_is_still_valid_when_seen_again():
    first = answered(SURVEY.survey_id)
    held = Outcome(
        SURVEY.survey_id, ANSWERED, at=first.occurred_at, answer_event_id=str(first.event_id)
    )
    assert domain.answer_problem(first, SURVEY, held) is None


@pytest.mark.parametrize(
    ("scores", "field"),
    [
        ({"nps": 11}, "nps"),
        ({"nps": -1}, "nps"),
        ({"csat": 0}, "csat"),
        ({"csat": 6}, "csat"),
        ({"ces": 0}, "ces"),
        ({"ces": 8}, "ces"),
    ],
)
def test_a_score_out_of_range_is_invalid(scores, field):
    with pytest.raises(ValidationError) as error:
        answered(SURVEY.survey_id, **scores)
    assert error.value.errors()[0]["loc"] == (field,)


def test_an_answer_without_any_score_is_invalid():
    with pytest.raises(ValidationError, match="at least one of nps, csat, ces"):
        answered(SURVEY.survey_id, comment="no scores")


def test_the_score_bounds_are_valid():
    for scores in ({"nps": 0}, {"nps": 10}, {"csat": 1}, {"csat": 5}, {"ces": 1}, {"ces": 7}):
        assert domain.answer_problem(answered(SURVEY.survey_id, **scores), SURVEY, None) is None
