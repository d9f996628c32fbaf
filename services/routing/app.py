"""Routing's settings and wiring: the one place that builds its clients."""

import uuid
from pathlib import Path

import structlog
import yaml
from faststream.asgi import AsgiFastStream
from prometheus_client import Gauge

from services.routing import domain
from services.routing.handlers import build_router
from services.routing.store import RoutingStore, now_utc
from shared import topics
from shared.events import RosterPerson, RosterUpdated
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings

CONFIG_DIR = Path(__file__).resolve().parents[2] / "deploy" / "config"

log = structlog.get_logger("lexcare.routing")

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
    """Build routing: broker, database, handlers and HTTP endpoints."""
    fees = domain.parse_fee_schedule(read_yaml(settings.fees_file))
    roster = domain.parse_roster(read_yaml(settings.roster_file))
    parts = plumbing(settings)
    store = RoutingStore(parts.db)
    parts.broker.include_router(
        build_router(settings, store, fees, queue_batch=settings.queue_batch)
    )
    changed: list[RosterPerson] = []

    async def load_roster() -> None:
        """Apply new or edited roster file entries before consuming starts."""
        changes = domain.file_changes(roster, await store.file_fingerprints())
        await store.load_from_file(changes, at=now_utc())
        queue = await store.waiting_count()
        loads = await store.loads([p.id for p in changes])
        # Only changes with consequences are announced: cases to reassign or a queue to drain.
        changed[:] = [p for p in changes if (not p.active and p.id in loads) or queue]
        log.info("roster_loaded", people=len(roster), applied=len(changes))

    async def announce_roster_changes() -> None:
        """Publish consequential file changes as roster.updated: the handler reassigns."""
        for person in changed:
            event = RosterUpdated(
                event_id=uuid.uuid4(),
                event_type=topics.ROSTER_UPDATED,
                occurred_at=now_utc(),
                producer=settings.service_name,
                person=person,
            )
            await parts.broker.publish(
                event,
                topic=settings.topic(topics.ROSTER_UPDATED),
                key=event.partition_key(),
            )

    async def workload() -> None:
        """Refresh the workload gauges when /metrics is scraped."""
        OPEN_CASES.clear()  # people who no longer hold a case drop out
        for person_id, count in (await store.open_cases_by_person()).items():
            OPEN_CASES.labels(person_id).set(count)
        WAITING_CASES.set(await store.waiting_count())

    app = build_app(
        parts,
        on_startup=[store.prepare, load_roster],
        gauges=workload,
        forget=[store.processed.forget_before],
    )
    app.after_startup(announce_roster_changes)
    return app
