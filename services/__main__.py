"""python -m services asyncapi [DIR]: one AsyncAPI document per service in DIR/asyncapi/."""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from services.desk.app import DeskSettings
from services.desk.app import create_app as create_desk
from services.desk.app import specification as desk_specification
from services.followup.app import FollowupSettings
from services.followup.app import create_app as create_followup
from services.followup.app import specification as followup_specification
from services.gateway.app import GatewaySettings
from services.gateway.app import create_app as create_gateway
from services.intake.app import IntakeSettings
from services.intake.app import create_app as create_intake
from services.intake.app import specification as intake_specification
from services.metrics.app import MetricsSettings
from services.metrics.app import create_app as create_metrics
from services.metrics.app import specification as metrics_specification
from services.routing.app import RoutingSettings
from services.routing.app import create_app as create_routing
from services.routing.app import specification as routing_specification
from services.survey.app import SurveySettings
from services.survey.app import create_app as create_survey
from services.survey.app import specification as survey_specification

SERVICES: dict[str, tuple[Callable[[Any], Any], type]] = {
    "intake": (create_intake, IntakeSettings),
    "routing": (create_routing, RoutingSettings),
    "followup": (create_followup, FollowupSettings),
    "survey": (create_survey, SurveySettings),
    "metrics": (create_metrics, MetricsSettings),
    "gateway": (create_gateway, GatewaySettings),
    "desk": (create_desk, DeskSettings),
}

SPECIFICATIONS: dict[str, Callable[[Any], Any]] = {
    "routing": routing_specification,
    "intake": intake_specification,
    "survey": survey_specification,
    "followup": followup_specification,
    "metrics": metrics_specification,
    "desk": desk_specification,
}
"""Services on the stateful runtime: the broker that declares what their runtime consumes."""

DESCRIPTION = (
    "Part of lexcare, the customer-care backbone of a Vietnamese law firm. Topics equal "
    "event types; every message is a JSON event with the envelope event_id, event_type, "
    "schema_version, occurred_at, producer, correlation_id, case_id; the Kafka key is the "
    "case id. Dead letters go to <topic>.dlq with headers x-error and x-consumer."
)


def asyncapi_document(service: str) -> dict[str, Any]:
    """AsyncAPI 3.0 of the topics `service` consumes and publishes (brokers not contacted)."""
    create, settings_class = SERVICES[service]
    # The documented server is the default one, whatever this shell's LEXCARE_KAFKA says.
    settings = settings_class(kafka=settings_class.model_fields["kafka"].default)
    if service in SPECIFICATIONS:
        brokers = [SPECIFICATIONS[service](settings)]
    else:
        brokers = create(settings).brokers
    spec = AsyncAPI(*brokers, title=f"lexcare {service}", version="1", description=DESCRIPTION)
    return one_event_per_message(spec.to_specification().to_jsonable())


def one_event_per_message(document: dict[str, Any]) -> dict[str, Any]:
    """Document each message as the one event it carries.

    Services consume in batches (shared.batching), so FastStream describes a subscriber's
    payload as an array of events; on the wire every Kafka message is one event.
    """
    schemas = document.get("components", {}).get("schemas", {})
    arrays = {
        f"#/components/schemas/{name}": schema["items"]
        for name, schema in schemas.items()
        if schema.get("type") == "array" and "$ref" in schema.get("items", {})
    }
    for message in document.get("components", {}).get("messages", {}).values():
        payload = message.get("payload", {})
        if payload.get("$ref") in arrays:
            message["payload"] = arrays[payload["$ref"]]
    for ref in arrays:
        del schemas[ref.rsplit("/", 1)[1]]
    return document


if __name__ == "__main__":
    if sys.argv[1:2] != ["asyncapi"]:
        sys.exit(__doc__)
    target = Path(sys.argv[2] if len(sys.argv) > 2 else "docs") / "asyncapi"
    target.mkdir(parents=True, exist_ok=True)
    for name in SERVICES:
        document = asyncapi_document(name)
        (target / f"{name}.json").write_text(
            json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        )
    print(f"wrote {len(SERVICES)} AsyncAPI documents to {target}")
