"""deploy/docker-compose.yml validates with a real compose client and says what ops need.

`docker compose config` (or Debian's `docker-compose`, installed by `make tools`) parses,
validates against the compose schema and interpolates the file; no Docker engine is needed.
The Dockerfile cannot be built here (no engine): its final stage is checked as text.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.desk.app import DeskSettings
from services.followup.app import FollowupSettings
from services.gateway.app import GatewaySettings
from services.intake.app import IntakeSettings
from services.metrics.app import MetricsSettings
from services.metrics.handlers import CONSUMED
from services.routing.app import RoutingSettings
from services.survey.app import SurveySettings
from shared import topics
from shared.kafka import KEEP_FOREVER, ensure_topics, topic_configs
from shared.settings import LexcareSettings
from tests.infra import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
SERVICES = {
    "intake": IntakeSettings,
    "routing": RoutingSettings,
    "followup": FollowupSettings,
    "survey": SurveySettings,
    "metrics": MetricsSettings,
    "gateway": GatewaySettings,
    "desk": DeskSettings,
}
SINGLE_INSTANCE = {"desk"}
"""Services without a replica: the desk's pages read the partitions one instance owns."""
# Not deployment configuration: the service's fixed name.
NOT_DEPLOYMENT = {"service_name"}


def compose_client() -> list[str] | None:
    """`docker compose` (v2 plugin) when it works, else `docker-compose` (v1), else None."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


CLIENT = compose_client()
pytestmark = pytest.mark.skipif(
    CLIENT is None,
    reason="no docker compose client (make tools installs Debian's docker-compose)",
)


def compose(*args: str, env_file: Path | None = ENV_EXAMPLE) -> subprocess.CompletedProcess:
    """Run the compose client on deploy/docker-compose.yml from a neutral directory."""
    options = ["--env-file", str(env_file)] if env_file else []
    return subprocess.run(
        [*CLIENT, *options, "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT / "tests",
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home())},
    )


def rendered(*profile: str) -> dict[str, Any]:
    """The interpolated, validated configuration."""
    result = compose(*profile, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def env_example_variables() -> set[str]:
    """The variables deploy/.env.example sets."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z_]+=", line)}


def started_by_default(config: dict[str, Any]) -> set[str]:
    """Services `up` starts without --profile (compose v1 lists profiled ones in config)."""
    return {name for name, service in config["services"].items() if not service.get("profiles")}


def test_the_base_file_validates_and_runs_kafka_mongo_topics_and_the_seven_services():
    config = rendered()
    assert started_by_default(config) == {"kafka", "mongo", "topics", *SERVICES}
    assert config["services"]["kafka"]["image"] == "apache/kafka:4.1.1"
    assert config["services"]["mongo"]["image"].startswith("mongo:")
    assert set(config["volumes"]) == {"kafka-data", "mongo-data"}


def test_every_service_is_built_from_the_one_dockerfile_listens_on_all_interfaces_and_is_limited():
    config = rendered()
    for name in [*SERVICES, "topics"]:
        service = config["services"][name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert Path(service["build"]["context"]) == ROOT, name
        assert service["environment"]["LEXCARE_HTTP_HOST"] == "0.0.0.0", name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        assert (
            service["volumes"][0]["target"] == "/app/deploy/config"
            if isinstance(service["volumes"][0], dict)
            else service["volumes"][0].endswith(":/app/deploy/config:ro")
        )
    for name in SERVICES:
        service = config["services"][name]
        assert service["command"] == [f"services.{name}"]
        assert service["restart"] == "unless-stopped"
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["mongo"]["condition"] == "service_healthy"
        assert [p["target"] if isinstance(p, dict) else p for p in service["ports"]]
    assert config["services"]["topics"]["restart"] == "no"


def test_mongo_has_authentication_and_the_services_log_in_with_their_own_user():
    config = rendered()
    mongo = config["services"]["mongo"]["environment"]
    assert mongo["MONGO_INITDB_ROOT_PASSWORD"] == "change-me-root"
    for name in SERVICES:
        url = config["services"][name]["environment"]["LEXCARE_MONGO_URL"]
        assert url == "mongodb://lexcare:change-me-app@mongo:27017/?authSource=admin"


def test_without_an_env_file_the_missing_secret_is_named():
    result = compose("config", env_file=None)
    assert result.returncode != 0
    assert "MONGO_ROOT_PASSWORD" in result.stderr or "MONGO_APP_PASSWORD" in result.stderr


def test_the_replicas_profile_adds_a_second_instance_of_each_service_in_the_same_group():
    config = rendered("--profile", "replicas")
    assert not {f"{name}-replica" for name in SINGLE_INSTANCE} & set(config["services"])
    for name in set(SERVICES) - SINGLE_INSTANCE:
        main, replica = config["services"][name], config["services"][f"{name}-replica"]
        # Same command and settings: same service name, so the same consumer group.
        assert replica["command"] == main["command"]
        assert replica["environment"] == main["environment"]
        assert "ports" not in replica, "replicas publish no host port, so they can scale"
        assert replica["profiles"] == ["replicas"]
    assert not {f"{name}-replica" for name in SERVICES} & started_by_default(rendered())


def test_every_shared_setting_is_configurable_from_the_env_file():
    config = rendered()
    example = env_example_variables()
    for name in SERVICES:
        environment = config["services"][name]["environment"]
        for field in set(LexcareSettings.model_fields) - NOT_DEPLOYMENT:
            variable = f"LEXCARE_{field.upper()}"
            assert variable in environment, f"{name}: {variable} missing from docker-compose.yml"
            # Fixed in the compose file: the HTTP listener, and the MongoDB URL (built
            # from the MONGO_APP_* and MONGO_HOST variables).
            if field not in {"http_host", "http_port", "mongo_url"}:
                assert variable in example, f"{variable} is not documented in .env.example"


def test_every_variable_the_compose_file_passes_is_a_setting_of_that_service():
    """A renamed or misspelt setting would be ignored silently by pydantic-settings."""
    config = rendered()
    for name, settings_class in SERVICES.items():
        fields = {f"LEXCARE_{field.upper()}" for field in settings_class.model_fields}
        passed = {v for v in config["services"][name]["environment"] if v.startswith("LEXCARE_")}
        assert passed <= fields, f"{name}: not settings of {name}: {sorted(passed - fields)}"


def test_every_variable_of_the_env_example_is_read_by_the_compose_file():
    compose_text = COMPOSE.read_text()
    unused = {v for v in env_example_variables() if f"${{{v}" not in compose_text}
    assert unused <= {"COMPOSE_PROJECT_NAME"}, f".env.example sets unused variables: {unused}"


def test_the_image_runs_unprivileged_with_a_healthcheck_and_no_build_tools():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    final_stage = dockerfile.split("\nFROM ")[-1]
    assert final_stage.startswith("python:${PYTHON_VERSION}-slim")
    assert re.search(r"^USER lexcare", final_stage, re.M)
    assert "HEALTHCHECK" in final_stage and "/healthz" in final_stage
    assert "uv" not in re.findall(r"COPY --from=(\S+)", final_stage)
    assert not re.search(r"apt-get install|pip install|uv sync", final_stage)
    assert "uv sync --frozen --no-dev" in dockerfile


def test_the_tls_override_shown_in_the_operations_guide_validates(tmp_path):
    guide = (ROOT / "docs" / "operations.md").read_text()
    override = next(
        block
        for block in re.findall(r"```yaml\n(.*?)```", guide, flags=re.S)
        if "docker-compose.secure.yml" in block
    )
    path = tmp_path / "docker-compose.secure.yml"
    path.write_text(override)
    result = compose("-f", str(path), "config")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    for name in [*SERVICES, "topics"]:
        mounts = config["services"][name]["volumes"]
        text = json.dumps(mounts)
        assert "/run/secrets/kafka" in text and "/app/deploy/config" in text, name


def test_the_topics_job_creates_the_replayed_topics_keeping_their_whole_history():
    config = rendered()
    job = config["services"]["topics"]
    script = " ".join(job["command"])
    # The job runs the services' own topic creation, which gives every replayed topic
    # retention.ms=-1 and retention.bytes=-1 (checked over a real broker in
    # tests/integration/shared/test_topics.py).
    assert job["entrypoint"] == ["python", "-c"]
    assert f"from shared.kafka import {ensure_topics.__name__}" in script
    assert "asyncio.run(ensure_topics(LexcareSettings()))" in script
    assert {m.TOPIC for m in CONSUMED} <= set(topics.REPLAYED_TOPICS), "metrics replays them"
    for name in topics.REPLAYED_TOPICS:
        assert topic_configs(name) == KEEP_FOREVER, name


def test_the_broker_keeps_offsets_of_idle_groups_a_year_and_dead_letters_a_week():
    kafka = rendered()["services"]["kafka"]["environment"]
    # Topics keep everything: a group whose offsets expired would replay all history.
    assert int(kafka["KAFKA_OFFSETS_RETENTION_MINUTES"]) >= 365 * 24 * 60
    assert int(kafka["KAFKA_LOG_RETENTION_HOURS"]) == 168
