"""Property-based fuzz of every external event type against the five running services.

Hypothesis generates inputs that break each event's contract in one way: not JSON,
JSON that is not an object, invalid UTF-8, a required field missing, a field of the
wrong type, a string over its limit, a naive or malformed timestamp, a number out of
range, an unknown enum value, a ~1 MB message. They are published with a raw producer,
on the same partition as a valid event published behind them. Each must land on
`<topic>.dlq` once per consuming service with an `x-error` reason; no consumer may crash
or stall (every consumer group commits the whole topic), and the valid events behind
the bad ones are processed.
"""

import json
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.followup.app import FollowupSettings
from services.followup.app import create_app as followup_app
from services.intake.app import IntakeSettings
from services.intake.app import create_app as intake_app
from services.metrics.app import MetricsSettings
from services.metrics.app import create_app as metrics_app
from services.routing.app import RoutingSettings
from services.routing.app import create_app as routing_app
from services.survey.app import SurveySettings
from services.survey.app import create_app as survey_app
from shared.events import EVENT_MODELS, Event
from tests.conftest import eventually
from tests.faults.tools import caught_up, consumer_group, headers_of
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.faults

EXAMPLES_PER_TYPE = 60
"""Bad inputs generated per external event type."""

CONSUMERS = {
    "contact.received": ["intake"],
    "contract.signed": ["intake", "routing", "metrics"],
    "case.resolved": ["intake", "routing", "followup", "survey", "metrics"],
    "care.contact.completed": ["followup", "metrics"],
    "survey.answered": ["survey"],
}
"""Which services consume each external event type."""

SENDER = "zalo:fuzz-0001"
AT = "2026-11-23T09:15:00+07:00"


def envelope(event_type: str, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": AT,
        "producer": "fuzz",
        **payload,
    }


def valid(event_type: str, case_id: str, survey_id: str = "survey-unknown") -> dict[str, Any]:
    """A valid event of `event_type` about `case_id`."""
    payload: dict[str, dict[str, Any]] = {
        "contact.received": {
            "channel": "zalo",
            "sender_id": SENDER,
            "customer": {"name": "Trần Thị Bình", "phone": "0912 000 111"},
            "message": "Tôi muốn hỏi về tranh chấp đất đai với hàng xóm",
        },
        "contract.signed": {
            "case_id": case_id,
            "contract_id": f"ct-{uuid.uuid4().hex[:8]}",
            "amount_vnd": 5_000_000,
            "delivery_method": "office",
        },
        "case.resolved": {"case_id": case_id, "outcome": "advised"},
        "care.contact.completed": {
            "case_id": case_id,
            "agent_id": "agent-07",
            "outcome": "reached",
        },
        "survey.answered": {"case_id": case_id, "survey_id": survey_id, "nps": 9, "csat": 5},
    }
    return envelope(event_type, **payload[event_type])


def dump(value: Any) -> bytes:
    """JSON bytes; unlike orjson, big integers (beyond 64 bits) are allowed."""
    return json.dumps(value, ensure_ascii=False).encode()


def is_valid(model: type[Event], body: bytes) -> bool:
    try:
        model.model_validate_json(body)
    except (ValidationError, ValueError):
        return False
    return True


def _limit(model: type[Event], name: str) -> int:
    for meta in model.model_fields[name].metadata:
        if hasattr(meta, "max_length"):
            return meta.max_length
    return 100_000  # the envelope's str_max_length


def _string_fields(model: type[Event]) -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        text = str(field.annotation)
        if name != "event_type" and ("str" in text and "list" not in text):
            names.append(name)
    return names


def _enum_fields(model: type[Event]) -> list[str]:
    return [
        name
        for name, field in model.model_fields.items()
        if "enum" in str(field.annotation)
        or "Literal" in str(field.annotation)
        or name in {"legal_field"}
    ]


NOT_AWARE_TIMES = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),  # naive
    st.sampled_from(
        [
            "2026-11-23T09:15:00",
            "2026-11-23 09:15",
            "2026-11-23T09:15:00+25:00",
            "2026-11-23T09:15:00 Asia/Ho_Chi_Minh",
            "2026-11-23T09:15:00 ICT",
            "2026-13-45T09:15:00+07:00",
            "23/11/2026 09:15",
            "hôm qua",
            "",
        ]
    ),
)

RANGES = {
    "nps": (0, 10),
    "csat": (1, 5),
    "ces": (1, 7),
    "amount_vnd": (0, 10_000_000_000_000),
    "schema_version": (1, 2**31),
}


@st.composite
def bad_input(draw: st.DrawFn, event_type: str, base: dict[str, Any]) -> tuple[str, bytes]:
    """One input breaking `event_type`'s contract, with the name of the way it breaks it."""
    model = EVENT_MODELS[event_type]
    event = {**base, "event_id": str(uuid.uuid4())}
    how = draw(
        st.sampled_from(
            [
                "not_json",
                "not_an_object",
                "invalid_utf8",
                "missing_field",
                "wrong_type",
                "huge_string",
                "bad_time",
                "out_of_range",
                "unknown_enum",
                "one_megabyte",
            ]
        )
    )
    if how == "not_json":
        body = draw(st.binary(max_size=300))
        try:
            orjson.loads(body)
            assume(False)
        except orjson.JSONDecodeError:
            pass
        return how, body
    if how == "not_an_object":
        value = draw(
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(allow_nan=False),
                st.text(max_size=50),
                st.lists(st.integers(), max_size=5),
                st.just([event]),
            )
        )
        return how, dump(value)
    if how == "invalid_utf8":
        field = draw(st.sampled_from(_string_fields(model)))
        junk = draw(st.binary(min_size=1, max_size=20).map(lambda b: b"\xff\xfe" + b))
        marker = "@@INVALID@@"
        body = dump({**event, field: marker}).replace(marker.encode(), junk)
        return how, body
    if how == "missing_field":
        required = [n for n, f in model.model_fields.items() if f.is_required()]
        event.pop(draw(st.sampled_from(required)))
    elif how == "wrong_type":
        field = draw(st.sampled_from([n for n in model.model_fields if n != "customer"]))
        event[field] = draw(st.sampled_from([[1, 2], {"x": [1]}, [None]]))
    elif how == "huge_string":
        field = draw(st.sampled_from(_string_fields(model)))
        event[field] = "ữ" * (_limit(model, field) + draw(st.integers(1, 3000)))
    elif how == "bad_time":
        event["occurred_at"] = draw(NOT_AWARE_TIMES)
    elif how == "out_of_range":
        field = draw(st.sampled_from([n for n in RANGES if n in model.model_fields]))
        low, high = RANGES[field]
        below, above = st.integers(max_value=low - 1), st.integers(min_value=high + 1)
        event[field] = draw(st.one_of(below, above))
    elif how == "unknown_enum":
        field = draw(st.sampled_from(_enum_fields(model)))
        event[field] = draw(st.text(max_size=30))
    else:  # one_megabyte: a text field far over its limit, near Kafka's 1 MB ceiling
        field = draw(st.sampled_from(_string_fields(model)))
        event[field] = "a" * draw(st.integers(900_000, 1_040_000))
    body = dump(event)
    assume(not is_valid(model, body))
    return how, body


def generate(event_type: str, base: dict[str, Any], count: int) -> list[tuple[str, bytes]]:
    """`count` bad inputs of `event_type`, reproducible (derandomized)."""
    found: list[tuple[str, bytes]] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(bad_input(event_type, base))
    def collect(case: tuple[str, bytes]) -> None:
        found.append(case)

    collect()
    return found


async def test_bad_input_of_every_external_type_is_dead_lettered_and_valid_events_behind_it_pass(
    infra, settings_for, run_app, namespace
):
    # Generated before the services start: hypothesis is CPU-bound and would starve the
    # in-process consumers' heartbeats. The case id is filled in once intake made it.
    placeholder = "case-PLACEHOLDER"
    generated = {t: generate(t, valid(t, placeholder), EXAMPLES_PER_TYPE) for t in CONSUMERS}
    apps = {
        "intake": intake_app(settings_for(IntakeSettings)),
        "routing": routing_app(settings_for(RoutingSettings)),
        "followup": followup_app(settings_for(FollowupSettings)),
        "survey": survey_app(settings_for(SurveySettings)),
        "metrics": metrics_app(settings_for(MetricsSettings, publish_interval_s=0.2)),
    }
    for app in apps.values():
        await run_app(app)
    prefix = f"{namespace}."
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka, acks="all", max_request_size=1_100_000
    )
    await producer.start()
    sent: dict[str, list[tuple[str, bytes, int, int]]] = {t: [] for t in CONSUMERS}

    async def publish(topic: str, body: bytes, key: str) -> tuple[int, int]:
        meta = await producer.send_and_wait(prefix + topic, body, key=key.encode())
        return meta.partition, meta.offset

    try:
        async with RawKafka(infra.kafka, prefix) as kafka:
            opening = valid("contact.received", "")
            await publish("contact.received", orjson.dumps(opening), SENDER)
            [classified] = await kafka.events("case.classified", count=1, timeout=60)
            case_id = classified["case_id"]

            for topic in CONSUMERS:
                key = SENDER if topic == "contact.received" else case_id
                for how, raw in generated[topic]:
                    body = raw.replace(placeholder.encode(), case_id.encode())
                    partition, offset = await publish(topic, body, key)
                    sent[topic].append((how, body, partition, offset))

            # Valid events behind the bad ones, on the same partitions.
            contact = valid("contact.received", "")
            await publish("contact.received", orjson.dumps(contact), SENDER)
            contract = valid("contract.signed", case_id)
            await publish("contract.signed", orjson.dumps(contract), case_id)
            care = valid("care.contact.completed", case_id)
            await publish("care.contact.completed", orjson.dumps(care), case_id)
            resolved = valid("case.resolved", case_id)
            await publish("case.resolved", orjson.dumps(resolved), case_id)
            await kafka.read(
                "case.classified",
                until=lambda rs: any(contact["event_id"].encode() in r.value for r in rs),
                timeout=60,
            )
            [requested] = await kafka.events("survey.requested", count=1, timeout=60)
            answer = valid("survey.answered", case_id, requested["survey_id"])
            await publish("survey.answered", orjson.dumps(answer), case_id)
            [scored] = await kafka.events("survey.scored", count=1, timeout=60)
            assert scored["survey_id"] == requested["survey_id"]

            for topic, services in CONSUMERS.items():
                for service in services:
                    group = consumer_group(prefix, service, topic)
                    await eventually(
                        lambda g=group, t=topic: caught_up(infra.kafka, g, prefix + t),
                        timeout=90,
                        interval=0.5,
                    )
            dead = {t: await kafka.settle(f"{t}.dlq", quiet=1.0) for t in CONSUMERS}
    finally:
        await producer.stop()

    tried = Counter(how for inputs in sent.values() for how, *_ in inputs)
    print(f"\nfuzz inputs tried: {sum(tried.values())} {dict(tried)}")
    print({t: len(records) for t, records in dead.items()}, "dead letters per topic")
    valid_ids = {e["event_id"] for e in (contact, contract, care, resolved, answer)}
    for topic, services in CONSUMERS.items():
        expected = Counter(
            (str(p), str(o), f"lexcare-{prefix}{s}") for _, _, p, o in sent[topic] for s in services
        )
        got: Counter = Counter()
        for record in dead[topic]:
            headers = headers_of(record)
            assert headers.get("x-error"), f"{topic} dead letter without a reason"
            where = (headers["x-original-partition"], headers["x-original-offset"])
            got[(*where, headers["x-consumer"])] += 1
            assert not any(i.encode() in record.value[:200] for i in valid_ids)
        missing = set(expected) - set(got)
        assert not missing, f"{topic}: {len(missing)} not dead-lettered: {sorted(missing)[:5]}"
        assert set(got) == set(expected), f"{topic}: unexpected dead letters"
    assert sum(tried.values()) == EXAMPLES_PER_TYPE * len(CONSUMERS)
