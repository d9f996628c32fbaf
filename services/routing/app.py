"""Routing's settings and wiring: the one place that builds its clients."""

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import yaml
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from prometheus_client import Gauge

from services.routing import domain
from services.routing.handlers import PRODUCER, routing_runtime
from services.routing.state import ROSTER_KEY, Queue, Roster, Waiting
from services.routing.steps import RosterFileRead, RoutingStep
from shared import topics
from shared.events import CaseAssigned, CaseEscalated, FeeQuoted, RosterPerson
from shared.kafka import admin_client_options
from shared.mongo import make_mongo, service_db
from shared.runtime.inputs import prepare_inputs
from shared.runtime.spec import Publishes, specification_broker
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings

KEY = ROSTER_KEY.encode()
CONFIG_DIR = Path(__file__).resolve().parents[2] / "deploy" / "config"

OPEN_CASES = Gauge("lexcare_routing_open_cases", "Open cases a person holds.", ["person_id"])
WAITING_CASES = Gauge("lexcare_routing_waiting_cases", "Cases waiting for capacity or expert.")


class RoutingSettings(LexcareSettings):
    """Routing's settings (env prefix LEXCARE_)."""

    service_name: str = "routing"
    http_port: int = 8082
    roster_file: Path = CONFIG_DIR / "roster.yaml"
    """The roster loaded at start (new or edited entries are applied)."""
    fees_file: Path = CONFIG_DIR / "fees.yaml"
    """The fee schedule (read at start)."""
    queue_batch: int = 200
    """Waiting cases looked at each time capacity frees up."""


def read_yaml(path: Path) -> object:
    """A YAML config file's content."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def create_app(settings: RoutingSettings) -> AsgiFastStream:
    """Build routing: its rules on the stateful runtime, and the HTTP endpoints."""
    fees = domain.parse_fee_schedule(read_yaml(settings.fees_file))
    roster = domain.parse_roster(read_yaml(settings.roster_file))
    parts = plumbing(settings)
    runtime = routing_runtime(settings, parts.db, fees=fees, queue_batch=settings.queue_batch)

    async def hand_in_roster_file() -> None:
        """Put the file in the roster's partition before this start decides anything: its
        owner applies the new or edited entries first (the internal topic is created here if
        this is the first start)."""
        await prepare_inputs(settings, inputs=set(runtime.routes), internal=runtime.internal)
        producer = AIOKafkaProducer(**admin_client_options(settings), acks="all")
        await producer.start()
        try:
            topic = settings.topic(topics.ROUTING_DECIDE)
            await producer.send_and_wait(topic, roster_file_step(roster).to_bytes(), key=KEY)
        finally:
            await producer.stop()

    async def gauges() -> None:
        await runtime.observe()
        open_cases, waiting = workload(runtime.loaded_values())
        OPEN_CASES.clear()  # people who no longer hold a case drop out
        for person_id, count in open_cases.items():
            OPEN_CASES.labels(person_id).set(count)
        WAITING_CASES.set(waiting)

    return build_app(
        parts,
        on_startup=[hand_in_roster_file, runtime.start],
        on_shutdown=[runtime.stop],
        gauges=gauges,
    )


def roster_file_step(people: list[RosterPerson]) -> RoutingStep:
    """The roster file as read at this start, for the roster's owner (a fresh event each
    start: the owner applies only entries that changed since the last)."""
    read = RosterFileRead(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        producer=PRODUCER,
        people=people,
    )
    return RoutingStep.caused_by(read, producer=PRODUCER, input=read)


def workload(values: Iterable[object]) -> tuple[dict[str, int], int]:
    """Open cases per person and waiting cases, from the roster's partition if owned here
    (another instance owning it reports them: summed over instances, the totals hold)."""
    open_cases: dict[str, int] = {}
    waiting = 0
    for value in values:
        if isinstance(value, Roster):
            open_cases = {p: n for p, slots in value.held.items() if (n := len(slots))}
        elif isinstance(value, Waiting):
            waiting += 1
        elif isinstance(value, Queue):  # as stored before a key per waiting case
            waiting += len(value.entries)
    return open_cases, waiting


PUBLISHES: Publishes = (
    (
        topics.CASE_ASSIGNED,
        CaseAssigned,
        "Who handles a case; assignee null with no_expert/no_capacity when nobody.",
    ),
    (
        topics.FEE_QUOTED,
        FeeQuoted,
        "A new case's price per delivery method, recommendation and basis.",
    ),
    (
        topics.CASE_ESCALATED,
        CaseEscalated,
        "A breached case no other lawyer could take: for the managers, with the reason.",
    ),
)


def specification(settings: RoutingSettings) -> KafkaBroker:
    """What routing consumes and publishes, for its AsyncAPI document."""
    db = service_db(make_mongo(settings), settings)
    fees = domain.parse_fee_schedule(read_yaml(settings.fees_file))
    return specification_broker(settings, routing_runtime(settings, db, fees=fees), PUBLISHES)
