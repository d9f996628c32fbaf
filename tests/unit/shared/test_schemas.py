"""The published contracts in docs/ are exactly what the code accepts and produces."""

import json
from pathlib import Path

import pytest

from services.__main__ import SERVICES, asyncapi_document
from shared.events import EVENT_MODELS
from shared.schemas import event_schemas, render

DOCS = Path(__file__).resolve().parents[3] / "docs"


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_the_checked_in_json_schema_matches_the_model(event_type):
    checked_in = (DOCS / "schemas" / f"{event_type}.json").read_text(encoding="utf-8")
    assert checked_in == render(event_schemas()[event_type]), "run `make schemas`"


def test_every_event_field_is_described_for_adapters():
    for event_type, schema in event_schemas().items():
        for name, field in schema["properties"].items():
            assert field.get("description") or "$ref" in field or "allOf" in field, (
                f"{event_type}.{name} has no description"
            )


def test_every_service_has_an_asyncapi_document_naming_its_topics():
    for service in ("intake", "routing", "followup", "survey", "metrics"):
        document = json.loads((DOCS / "asyncapi" / f"{service}.json").read_text())
        assert document["asyncapi"].startswith("3.")
        addresses = {c["address"] for c in document["channels"].values()}
        assert addresses, service
        assert all(a in EVENT_MODELS or a.endswith(".dlq") for a in addresses), addresses


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_checked_in_asyncapi_document_matches_the_app(service):
    checked_in = json.loads((DOCS / "asyncapi" / f"{service}.json").read_text(encoding="utf-8"))
    assert checked_in == asyncapi_document(service), "run `make schemas`"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_asyncapi_message_is_one_event_not_a_batch(service):
    document = asyncapi_document(service)
    for name, message in document["components"]["messages"].items():
        ref = message["payload"].get("$ref", "")
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert schema.get("type") != "array", name
        assert "event_id" in schema.get("properties", {}), name
