"""Every environment variable a service reads is documented where ops engineers look."""

from pathlib import Path

import pytest

from services.desk.app import DeskSettings
from services.followup.app import FollowupSettings
from services.gateway.app import GatewaySettings
from services.intake.app import IntakeSettings
from services.metrics.app import MetricsSettings
from services.routing.app import RoutingSettings
from services.survey.app import SurveySettings
from tests.infra import ROOT

README = (ROOT / "README.md").read_text()
# Set by each service itself (its database, consumer groups and log name), not by ops.
INTERNAL = {"service_name"}


def documented(variable: str, service_doc: str) -> bool:
    """Listed in full, or as a `_SUFFIX` beside its sibling (`..._USERNAME` / `_PASSWORD`)."""
    suffix = "`_" + variable.rsplit("_", 1)[-1] + "`"
    sibling_prefix = variable.rsplit("_", 1)[0] + "_"
    in_suffix_form = any(suffix in line and sibling_prefix in line for line in README.splitlines())
    return variable in README or variable in service_doc or in_suffix_form


@pytest.mark.parametrize(
    ("service", "settings_class"),
    [
        ("intake", IntakeSettings),
        ("routing", RoutingSettings),
        ("followup", FollowupSettings),
        ("survey", SurveySettings),
        ("metrics", MetricsSettings),
        ("gateway", GatewaySettings),
        ("desk", DeskSettings),
    ],
)
def test_every_setting_is_in_the_readme_or_the_services_guide(service, settings_class):
    service_doc = Path(ROOT / "docs" / "services" / f"{service}.md").read_text()
    prefix = settings_class.model_config.get("env_prefix", "")
    missing = [
        f"{prefix}{name}".upper()
        for name in settings_class.model_fields
        if name not in INTERNAL and not documented(f"{prefix}{name}".upper(), service_doc)
    ]
    assert missing == []
