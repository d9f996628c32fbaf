"""The benchmark's load generator, pass-through and table (no broker, no timing)."""

import orjson
import phonenumbers
import pytest

from bench.baseline import relay
from bench.generator import (
    CHANNELS,
    ContactFactory,
    answer_for_survey,
    contact_key,
    lifecycle_for_case,
    load_corpus,
    schedule,
)
from bench.pipeline import percentile
from bench.report import render_table, rows_from
from shared.events import (
    CareContactCompleted,
    CaseResolved,
    ContactReceived,
    ContractSigned,
    SurveyAnswered,
)

MODELS = {
    "contract.signed": ContractSigned,
    "case.resolved": CaseResolved,
    "care.contact.completed": CareContactCompleted,
}


@pytest.fixture(scope="module")
def factory() -> ContactFactory:
    return ContactFactory("t1", tuple(load_corpus()))


def test_contacts_are_valid_events_on_every_channel_with_corpus_messages(factory):
    corpus = set(load_corpus())
    contacts = [factory.contact(i) for i in range(60)]

    events = [ContactReceived.model_validate(c) for c in contacts]

    assert {e.channel for e in events} == set(CHANNELS)
    assert all(e.message in corpus for e in events)
    assert {e.kind for e in events} == {"inquiry", "complaint"}


def test_every_contact_is_a_new_person_with_unique_valid_identifiers(factory):
    contacts = [factory.contact(i) for i in range(5000)]
    phones = [c["customer"]["phone"] for c in contacts if "phone" in c["customer"]]
    emails = [c["customer"]["email"] for c in contacts if "email" in c["customer"]]
    senders = [c["sender_id"] for c in contacts if c["sender_id"]]
    normalised = [
        phonenumbers.format_number(phonenumbers.parse(p, "VN"), phonenumbers.PhoneNumberFormat.E164)
        for p in phones
    ]

    assert len(set(normalised)) == len(phones) > 1000
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(p, "VN")) for p in phones[:200])
    assert len(set(emails)) == len(emails) > 1000
    assert len(set(senders)) == len(senders) > 1000
    assert len({c["event_id"] for c in contacts}) == 5000


def test_contacts_are_keyed_by_sender_id_else_event_id(factory):
    zalo, phone = factory.contact(1), factory.contact(3)

    assert contact_key(zalo) == zalo["sender_id"].encode()
    assert contact_key(phone) == phone["event_id"].encode()


def classified(case_id: str, *, new_case: bool = True) -> dict:
    return {
        "case_id": case_id,
        "new_case": new_case,
        "correlation_id": "corr-1",
        "channel": "zalo",
    }


def test_a_new_cases_life_cycle_is_valid_and_stable_per_case():
    cases = [f"case-{i:04d}" for i in range(400)]

    lives = [lifecycle_for_case(classified(c)) for c in cases]
    again = [[t for t, _ in lifecycle_for_case(classified(c))] for c in cases]

    for life in lives:
        for topic, event in life:
            MODELS[topic].model_validate(event)
    assert [[t for t, _ in life] for life in lives] == again
    counts = {t: sum(t in [x for x, _ in life] for life in lives) for t in MODELS}
    assert 120 < counts["contract.signed"] < 280
    assert 200 < counts["case.resolved"] < 360
    assert 160 < counts["care.contact.completed"] < 320


def test_an_attached_contact_starts_no_life_cycle():
    assert lifecycle_for_case(classified("case-1", new_case=False)) == []


def test_most_surveys_are_answered_with_valid_scores():
    requests = [{"survey_id": f"srv-{i}", "case_id": f"case-{i}"} for i in range(200)]

    answers = [answer_for_survey(r) for r in requests]

    given = [a for a in answers if a is not None]
    assert 120 < len(given) < 190
    for topic, event in given:
        assert topic == "survey.answered"
        SurveyAnswered.model_validate(event)


def test_a_fixed_rate_spreads_send_times_and_no_rate_sends_at_once():
    assert list(schedule(4.0, 3, 10.0)) == [10.0, 10.25, 10.5]
    assert list(schedule(None, 3, 10.0)) == [10.0, 10.0, 10.0]


def test_the_pass_through_relays_the_same_json(factory):
    contact = orjson.dumps(factory.contact(5))

    assert orjson.loads(relay(contact)) == orjson.loads(contact)


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) is None


def test_the_table_gives_throughputs_as_ratios_of_the_baseline():
    results = {
        "baseline": {"per_second": 1000.0},
        "alone": [
            {
                "service": "intake",
                "per_second": 50.0,
                "drained": True,
                "handled": 10,
                "events": 10,
                "rss_mib": 60.0,
                "documents": 40,
            }
        ],
    }

    rows = rows_from(results)
    table = render_table(rows)

    intake = next(r for r in rows if r["name"] == "intake")
    assert intake["ratio"] == pytest.approx(0.05)
    assert all(r["ratio"] is None for r in rows if r["unit"] in ("MiB", "docs"))
    assert "0.0500" in table


def test_the_gateway_phase_gives_webhook_requests_per_second_and_its_p99():
    results = {
        "baseline": {"per_second": 1000.0},
        "gateway": {"requests": 2000, "contacts": 2000, "requests_per_s": 250.0, "p99_ms": 300.0},
    }

    rows = [r for r in rows_from(results) if r["section"] == "gateway"]

    assert [(r["name"], r["value"], r["unit"]) for r in rows] == [
        ("webhook → contact.received", 250.0, "requests/s"),
        ("webhook → contact.received p99", 300.0, "ms"),
    ]
    assert rows[0]["ratio"] == pytest.approx(0.25) and rows[1]["ratio"] is None
    short = {**results["gateway"], "contacts": 1999}
    assert rows_from({"gateway": short})[0]["name"] == (
        "webhook → contact.received (1999/2000 arrived)"
    )


def test_the_desk_phase_gives_each_pages_p95_at_its_read_models_size():
    page = {"p50_ms": 1.0, "p95_ms": 2.0, "max_ms": 3.0}
    results = {"desk": {"cases": 100_000, "queue": page, "case": page, "search_phone": page}}

    rows = [r for r in rows_from(results) if r["section"] == "desk"]

    assert [(r["name"], r["value"], r["unit"]) for r in rows] == [
        ("queue page p95 @100000 cases", 2.0, "ms"),
        ("case page p95 @100000 cases", 2.0, "ms"),
        ("search_phone page p95 @100000 cases", 2.0, "ms"),
    ]
