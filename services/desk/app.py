"""Desk's settings and wiring: the one place that builds its clients."""

from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
import yaml
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from pydantic import Field, SecretStr
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import FileResponse, RedirectResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.desk import security
from services.desk.audit import AuditTrail
from services.desk.dashboard import MetricsClient
from services.desk.domain import Roster
from services.desk.handlers import ReadModel, desk_runtime
from services.desk.pages import Dashboard, Desk
from services.desk.staff import LoginLimiter, StaffAccount, load_staff
from shared import topics
from shared.clock import Clock, SystemClock
from shared.events import (
    CareContactCompleted,
    CaseReclassified,
    CaseResolved,
    ContractSigned,
    Event,
    RosterUpdated,
)
from shared.mongo import make_mongo, service_db
from shared.runtime.spec import Publishes, specification_broker
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.desk")
CONFIG_DIR = Path(__file__).resolve().parents[2] / "deploy" / "config"
STATIC = Path(__file__).parent / "static"
DEV_SESSION_SECRET = "lexcare-desk-dev-session-secret-not-for-production"
HEADERS = {
    # No script at all; styles from our own stylesheet; forms post only here.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


class DeskSettings(LexcareSettings):
    """Desk's settings (env prefix LEXCARE_); the session secret has a dev default only."""

    service_name: str = "desk"
    http_port: int = 8087
    staff_file: Path = CONFIG_DIR / "staff.yaml"
    """Staff accounts (id, name, role agent|lawyer|manager, argon2 password hash, active)."""
    roster_file: Path = CONFIG_DIR / "roster.yaml"
    """The roster routing starts from; the roster page shows it with run-time updates."""
    desk_session_secret: SecretStr = SecretStr(DEV_SESSION_SECRET)
    """Signs the session cookie; set a long random value in production."""
    desk_session_hours: float = Field(default=12.0, gt=0)
    """A session lasts this long after sign-in."""
    desk_secure_cookie: bool = False
    """Send the session cookie over HTTPS only (true behind TLS)."""
    desk_login_attempts: int = Field(default=5, ge=1)
    """Failed sign-ins per client address in the window before further ones are refused."""
    desk_login_window_s: float = Field(default=300.0, gt=0)
    metrics_url: str = "http://127.0.0.1:8085"
    """Base URL of metrics' HTTP API (GET /kpis) the dashboard reads."""
    metrics_timeout_s: float = Field(default=5.0, gt=0)

    def session_secret_is_default(self) -> bool:
        """True while the public development secret signs sessions."""
        return self.desk_session_secret.get_secret_value() == DEV_SESSION_SECRET


def read_roster(path: Path) -> Roster:
    """The roster file (an empty roster when there is none)."""
    if not path.exists():
        return Roster()
    return Roster.model_validate(yaml.safe_load(path.read_text()) or {})


def web_app(settings: DeskSettings, desk: Desk, dashboard: Dashboard) -> Starlette:
    """The desk's pages behind the signed session, with their security headers."""
    accounts = desk.accounts

    def page(roles: frozenset, handler: Any) -> Any:
        return security.guarded(accounts, roles, handler, refuse=desk.refuse)

    routes = [
        Route("/", lambda request: RedirectResponse("/queue", status_code=303)),
        Route("/desk.css", lambda request: FileResponse(STATIC / "desk.css")),
        Route("/login", desk.login_page, methods=["GET", "POST"]),
        Route("/logout", page(security.ALL_STAFF, desk.logout), methods=["POST"]),
        Route("/queue", page(security.ALL_STAFF, desk.queue)),
        Route("/search", page(security.ALL_STAFF, desk.search)),
        Route("/cases/{case_id}", page(security.ALL_STAFF, desk.case_page)),
        Route(
            "/cases/{case_id}/care/{request_id}",
            page(security.CARE, desk.record_care),
            methods=["POST"],
        ),
        Route(
            "/cases/{case_id}/contract", page(security.CARE, desk.record_contract), methods=["POST"]
        ),
        Route("/cases/{case_id}/resolve", page(security.RESOLVERS, desk.resolve), methods=["POST"]),
        Route(
            "/cases/{case_id}/reclassify", page(security.CARE, desk.reclassify), methods=["POST"]
        ),
        Route("/roster", page(security.MANAGERS, desk.roster_page)),
        Route("/roster", page(security.MANAGERS, desk.save_person), methods=["POST"]),
        Route(
            "/roster/{person_id}/deactivate",
            page(security.MANAGERS, desk.deactivate),
            methods=["POST"],
        ),
        Route("/audit", page(security.MANAGERS, desk.audit_page)),
        Route("/dashboard", page(security.MANAGERS, dashboard.page)),
        Route("/dashboard.csv", page(security.MANAGERS, dashboard.csv)),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=settings.desk_session_secret.get_secret_value(),
                session_cookie="lexcare_desk",
                max_age=int(settings.desk_session_hours * 3600),
                same_site="lax",
                https_only=settings.desk_secure_cookie,
            ),
        ],
    )


class SecurityHeaders:
    """ASGI middleware: every desk response carries `HEADERS`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(HEADERS)
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: DeskSettings, clock: Clock | None = None) -> AsgiFastStream:
    """Build the desk: its read model on the runtime, its pages, health and metrics."""
    clock = clock or SystemClock()
    parts = plumbing(settings)
    if settings.session_secret_is_default():
        log.warning("desk_session_secret_is_the_public_dev_default")
    staff = load_staff(settings.staff_file)
    runtime = desk_runtime(settings, parts.db, clock=clock)
    audit = AuditTrail(parts.db)
    metrics = MetricsClient(settings.metrics_url, timeout_s=settings.metrics_timeout_s)

    async def publish(event: Event) -> None:
        await parts.broker.publish(
            event.to_bytes(), topic=settings.topic(event.event_type), key=event.partition_key()
        )

    def accounts() -> dict[str, StaffAccount]:
        return staff

    desk = Desk(
        model=ReadModel(runtime),
        accounts=accounts,
        publish=publish,
        audit=audit,
        limiter=LoginLimiter(
            attempts=settings.desk_login_attempts,
            window=timedelta(seconds=settings.desk_login_window_s),
        ),
        clock=clock,
        zone=ZoneInfo(settings.timezone),
        roster_file=read_roster(settings.roster_file).people,
    )
    web = web_app(settings, desk, Dashboard(desk, metrics))
    return build_app(
        parts,
        on_startup=[audit.prepare, runtime.start],
        on_shutdown=[runtime.stop, metrics.close],
        gauges=runtime.observe,
        web=web,
    )


PUBLISHES: Publishes = (
    (topics.CARE_CONTACT_COMPLETED, CareContactCompleted, "A care contact's outcome, by staff."),
    (topics.CONTRACT_SIGNED, ContractSigned, "A contract staff recorded."),
    (topics.CASE_RESOLVED, CaseResolved, "A case staff resolved."),
    (topics.CASE_RECLASSIFIED, CaseReclassified, "A legal field staff corrected."),
    (topics.ROSTER_UPDATED, RosterUpdated, "A roster change a manager made."),
)


def specification(settings: DeskSettings) -> KafkaBroker:
    """What desk consumes and publishes, for its AsyncAPI document."""
    db = service_db(make_mongo(settings), settings)
    return specification_broker(
        settings, desk_runtime(settings, db, clock=SystemClock()), PUBLISHES
    )
