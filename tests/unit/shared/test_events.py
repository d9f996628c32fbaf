"""Event contracts: envelope rules, derived ids, tolerance of unknown fields."""

import uuid

import pytest
from pydantic import ValidationError

from shared.events import (
    EVENT_MODELS,
    CaseAssigned,
    ContactReceived,
    KpiUpdated,
    SurveyAnswered,
)

ENVELOPE = {"occurred_at": "2026-11-23T09:15:00+07:00", "producer": "zalo-adapter"}


def contact(**fields: object) -> ContactReceived:
    return ContactReceived.model_validate(
        {"event_id": str(uuid.uuid4()), "channel": "zalo", "sender_id": "z1", **ENVELOPE, **fields}
    )


def test_every_event_type_is_its_topic_name():
    for event_type, model in EVENT_MODELS.items():
        assert event_type == model.TOPIC
        assert model.model_fields["event_type"].default == event_type


def test_correlation_id_defaults_to_the_event_id():
    event = contact()
    assert event.correlation_id == str(event.event_id)


def test_unknown_fields_are_ignored_not_fatal():
    assert contact(brand_new_field={"x": 1}).channel == "zalo"


@pytest.mark.parametrize("missing", ["event_id", "occurred_at", "producer"])
def test_an_envelope_without_its_required_fields_is_invalid(missing):
    data = {"event_id": str(uuid.uuid4()), "channel": "zalo", **ENVELOPE}
    del data[missing]
    with pytest.raises(ValidationError):
        ContactReceived.model_validate(data)


def test_occurred_at_must_carry_an_offset():
    with pytest.raises(ValidationError):
        contact(occurred_at="2026-11-23T09:15:00")


def test_an_event_caused_by_another_keeps_its_correlation_and_gets_a_repeatable_id():
    cause = contact(correlation_id="story-1")
    fields = {
        "case_id": "case-1",
        "assignee_id": None,
        "reason": "no_expert",
        "legal_field": "land",
        "producer": "routing",
    }
    first = CaseAssigned.caused_by(cause, **fields)
    again = CaseAssigned.caused_by(cause, **fields)
    other = CaseAssigned.caused_by(cause, discriminator="second", **fields)
    assert first.correlation_id == "story-1"
    assert first.event_id == again.event_id != other.event_id
    assert first.occurred_at == cause.occurred_at
    assert first.partition_key() == b"case-1"


def test_a_contact_without_a_case_is_keyed_by_its_sender():
    assert contact(sender_id="zalo-9").partition_key() == b"zalo-9"


@pytest.mark.parametrize(
    "scores", [{}, {"nps": 11}, {"csat": 0}, {"ces": 8}, {"nps": -1}, {"nps": "ten"}]
)
def test_a_survey_answer_needs_a_score_in_range(scores):
    with pytest.raises(ValidationError):
        SurveyAnswered.model_validate(
            {"event_id": str(uuid.uuid4()), "survey_id": "s1", **ENVELOPE, **scores}
        )


def test_a_partial_survey_answer_is_valid():
    answer = SurveyAnswered.model_validate(
        {"event_id": str(uuid.uuid4()), "survey_id": "s1", "nps": 9, **ENVELOPE}
    )
    assert (answer.nps, answer.csat, answer.ces) == (9, None, None)


def test_kpi_messages_are_keyed_for_compaction():
    kpi = KpiUpdated.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            **ENVELOPE,
            "kpi": "nps",
            "window": "month",
            "period_start": "2026-11-01",
            "dimension": "channel",
            "dimension_value": "zalo",
            "value": 40.0,
            "unit": "percent",
            "numerator": 4,
            "denominator": 10,
            "count": 10,
            "updated_at": "2026-11-23T09:15:00+07:00",
        }
    )
    assert kpi.partition_key() == b"nps|month|2026-11-01|channel|zalo"
    assert kpi.unit == "percent"
