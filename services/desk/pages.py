"""The desk's pages and actions: sign-in, today's queue, a case, search, the roster.

Every action publishes an existing external event stamped with the signed-in person's id
(from the session, never from the form) and leaves an audit record. An action's event id
is derived from the form's one-time `action` value, so a double submit is one event.
"""

import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import structlog
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from services.desk import security, wording
from services.desk.audit import AuditRecord, AuditTrail
from services.desk.dashboard import (
    DIMENSIONS,
    WINDOWS,
    Filters,
    MetricsClient,
    MetricsUnavailable,
    dashboard_charts,
)
from services.desk.domain import CaseRecord, current_roster, matches, todays_queue
from services.desk.handlers import ReadModel
from services.desk.staff import LoginLimiter, StaffAccount, check_password
from shared.clock import Clock
from shared.delivery import TRANSIENT_ERRORS
from shared.events import (
    CareContactCompleted,
    CaseReclassified,
    CaseResolved,
    ContractSigned,
    Event,
    RosterPerson,
    RosterUpdated,
    derived_event_id,
)
from shared.events.enums import CareOutcome, DeliveryMethod, LegalField, ResolutionOutcome

log = structlog.get_logger("lexcare.desk")
PRODUCER = "desk"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.globals |= {"w": wording, "windows": WINDOWS, "dimensions": DIMENSIONS, "utc": UTC}
SEARCH_LIMIT = 50
QUEUE_LIMIT = 100
"""Contacts one queue page lists (the first ones in queue order); the page says how many more."""
BUSY = "Hệ thống đang bận nên chưa ghi nhận được. Vui lòng thử lại sau ít phút."


@dataclass
class Desk:
    """The pages' collaborators: read model, accounts, publisher, audit trail, clock."""

    model: ReadModel
    accounts: Callable[[], Mapping[str, StaffAccount]]
    publish: Callable[[Event], Awaitable[None]]
    audit: AuditTrail
    limiter: LoginLimiter
    clock: Clock
    zone: ZoneInfo
    roster_file: list[RosterPerson]
    done: OrderedDict[str, None] = field(default_factory=OrderedDict)
    """Care requests recorded here lately: off the queue before their event comes back."""

    # Rendering

    def render(
        self,
        request: Request,
        template: str,
        account: StaffAccount | None,
        status: int = 200,
        **context: Any,
    ) -> Response:
        """A page of the desk, with the session's CSRF token and the signed-in person."""
        context |= {
            "me": account,
            "csrf": security.csrf_token(request),
            "notice": NOTICES.get(request.query_params.get("ok", "")),
        }
        return TEMPLATES.TemplateResponse(request, template, context, status_code=status)

    def refuse(self, request: Request, account: StaffAccount | None, status: int) -> Response:
        """The refusal page: 401 not signed in, 403 not allowed or a bad CSRF token."""
        log.warning(
            "desk_refused",
            status=status,
            path=request.url.path,
            person_id=account.id if account else None,
        )
        return self.render(request, "refused.html", account, status, status_code=status)

    def local(self, moment: datetime) -> str:
        """A moment as staff read it: 09:30 01/12/2026."""
        return moment.astimezone(self.zone).strftime("%H:%M %d/%m/%Y")

    # Sign-in

    async def login_page(self, request: Request) -> Response:
        """The sign-in form (GET) or a sign-in (POST: rate-limited per address)."""
        if request.method == "GET":
            return self.render(request, "login.html", None, next=_next(request))
        form = {k: str(v) for k, v in (await request.form()).items()}
        if not security.csrf_matches(request, form):
            return self.refuse(request, None, 403)
        address, now = security.client_address(request), self.clock.now()
        if self.limiter.blocked(address, now):
            await self.audit_action(None, request, "sign_in_refused", detail="rate_limited")
            return self.render(
                request, "login.html", None, 429, error=TOO_MANY, next=_next(request)
            )
        account = check_password(self.accounts(), form.get("login", ""), form.get("password", ""))
        if account is None:
            self.limiter.failed(address, now)
            await self.audit_action(None, request, "sign_in_failed")
            return self.render(
                request, "login.html", None, 401, error=BAD_LOGIN, next=_next(request)
            )
        self.limiter.succeeded(address)
        security.sign_in(request, account)
        await self.audit_action(account, request, "sign_in")
        return RedirectResponse(_safe_next(form.get("next", "")), status_code=303)

    async def logout(self, request: Request, account: StaffAccount) -> Response:
        """Sign out."""
        await self.audit_action(account, request, "sign_out")
        security.sign_out(request)
        return RedirectResponse("/login", status_code=303)

    # Today's queue

    async def queue(self, request: Request, account: StaffAccount) -> Response:
        """Care contacts due today and overdue, mine first."""
        now = self.clock.now()
        end_of_day = datetime.combine(now.astimezone(self.zone).date(), time.max, self.zone)
        items = [
            item
            for item in todays_queue(
                self.model.cases(), person_id=account.id, now=now, until=end_of_day
            )
            if item.task.request_id not in self.done
        ]
        return self.render(
            request,
            "queue.html",
            account,
            items=items[:QUEUE_LIMIT],
            more=max(len(items) - QUEUE_LIMIT, 0),
            local=self.local,
            action=_action_id(),
        )

    async def record_care(self, request: Request, account: StaffAccount) -> Response:
        """One click: the outcome of a care contact → care.contact.completed."""
        form = await _form(request)
        case = await self.model.case(request.path_params["case_id"])
        request_id = request.path_params["request_id"]
        task = (
            next((t for t in case.open_tasks if t.request_id == request_id), None) if case else None
        )
        if case is None or task is None:
            return self.render(request, "refused.html", account, 404, status_code=404)
        try:
            event = CareContactCompleted(
                event_id=_event_id(form, "care.contact.completed"),
                occurred_at=self.clock.now(),
                producer=PRODUCER,
                correlation_id=task.correlation_id or case.correlation_id,
                case_id=case.case_id,
                request_id=request_id,
                agent_id=account.id,
                outcome=CareOutcome(form.get("outcome", "")),
                note=form.get("note", "").strip() or None,
            )
        except ValueError:
            return self.render(request, "refused.html", account, 400, status_code=400)
        if not await self._publish(event):
            return self.render(request, "refused.html", account, 503, status_code=503, error=BUSY)
        self._done(request_id)
        await self.audit_action(
            account, request, "care_recorded", event=event, detail=event.outcome
        )
        back = form.get("back", "")
        target = f"/cases/{case.case_id}" if back == "case" else "/queue"
        return RedirectResponse(f"{target}?ok=care", status_code=303)

    # A case

    async def case_page(self, request: Request, account: StaffAccount) -> Response:
        """A case's timeline and the actions on it."""
        case = await self.model.case(request.path_params["case_id"])
        if case is None:
            return self.render(request, "refused.html", account, 404, status_code=404)
        return self.render(
            request,
            "case.html",
            account,
            case=case,
            local=self.local,
            action=_action_id(),
            can_resolve=account.role in security.RESOLVERS,
            tasks=[t for t in case.open_tasks if t.request_id not in self.done],
        )

    async def record_contract(self, request: Request, account: StaffAccount) -> Response:
        """A contract signed on the case → contract.signed."""
        form = await _form(request)
        case = await self.model.case(request.path_params["case_id"])
        if case is None:
            return self.render(request, "refused.html", account, 404, status_code=404)
        try:
            event = ContractSigned(
                event_id=_event_id(form, "contract.signed"),
                occurred_at=self.clock.now(),
                producer=PRODUCER,
                correlation_id=case.correlation_id,
                case_id=case.case_id,
                contract_id=form.get("contract_id", "").strip(),
                amount_vnd=int(form.get("amount_vnd", "").replace(".", "").replace(" ", "")),
                delivery_method=DeliveryMethod(form.get("delivery_method", "")),
                recorded_by=account.id,
            )
        except (ValueError, ValidationError):
            return self._case_error(request, account, case, BAD_CONTRACT)
        return await self._case_action(request, account, case, event, "contract_recorded")

    async def resolve(self, request: Request, account: StaffAccount) -> Response:
        """The case's end → case.resolved (by a lawyer, or a manager for the holder)."""
        form = await _form(request)
        case = await self.model.case(request.path_params["case_id"])
        if case is None:
            return self.render(request, "refused.html", account, 404, status_code=404)
        lawyer = account.id if account.role == "lawyer" else case.assignee_id
        try:
            event = CaseResolved(
                event_id=_event_id(form, "case.resolved"),
                occurred_at=self.clock.now(),
                producer=PRODUCER,
                correlation_id=case.correlation_id,
                case_id=case.case_id,
                lawyer_id=lawyer,
                outcome=ResolutionOutcome(form.get("outcome", "")),
                summary=form.get("summary", "").strip() or None,
                recorded_by=account.id,
            )
        except (ValueError, ValidationError):
            return self._case_error(request, account, case, BAD_RESOLUTION)
        return await self._case_action(request, account, case, event, "case_resolved")

    async def reclassify(self, request: Request, account: StaffAccount) -> Response:
        """Correct the case's legal field → case.reclassified (intake reclassifies the case)."""
        form = await _form(request)
        case = await self.model.case(request.path_params["case_id"])
        if case is None:
            return self.render(request, "refused.html", account, 404, status_code=404)
        try:
            field = LegalField(form.get("legal_field", ""))
            if field == case.legal_field:
                raise ValueError("the same field")
            event = CaseReclassified(
                event_id=_event_id(form, "case.reclassified"),
                occurred_at=self.clock.now(),
                producer=PRODUCER,
                correlation_id=case.correlation_id,
                case_id=case.case_id,
                legal_field=field,
                agent_id=account.id,
                reason=form.get("reason", "").strip(),
            )
        except (ValueError, ValidationError):
            return self._case_error(request, account, case, BAD_FIELD)
        return await self._case_action(request, account, case, event, "case_reclassified")

    async def _case_action(
        self, request: Request, account: StaffAccount, case: CaseRecord, event: Event, action: str
    ) -> Response:
        if not await self._publish(event):
            return self._case_error(request, account, case, BUSY, 503)
        await self.audit_action(account, request, action, event=event)
        return RedirectResponse(f"/cases/{case.case_id}?ok={action}", status_code=303)

    def _case_error(
        self,
        request: Request,
        account: StaffAccount,
        case: CaseRecord,
        error: str,
        status: int = 400,
    ) -> Response:
        return self.render(
            request,
            "case.html",
            account,
            status,
            case=case,
            local=self.local,
            action=_action_id(),
            can_resolve=account.role in security.RESOLVERS,
            tasks=list(case.open_tasks),
            error=error,
        )

    async def search(self, request: Request, account: StaffAccount) -> Response:
        """Cases by id, or their customer's phone, e-mail or name."""
        query = request.query_params.get("q", "")[:200]
        exact = await self.model.case(query.strip()) if query.strip() else None
        if exact is not None:
            return RedirectResponse(f"/cases/{exact.case_id}", status_code=303)
        found = [c for c in self.model.cases() if matches(c, query)][:SEARCH_LIMIT]
        return self.render(request, "search.html", account, query=query, found=found)

    # The roster

    def roster(self) -> list[RosterPerson]:
        """The roster file overlaid with the run-time updates."""
        return current_roster(self.roster_file, self.model.people())

    async def roster_page(self, request: Request, account: StaffAccount) -> Response:
        """Everyone on the roster, a form to add and one to edit each person."""
        return self.render(
            request, "roster.html", account, people=self.roster(), action=_action_id()
        )

    async def save_person(self, request: Request, account: StaffAccount) -> Response:
        """Add or edit a person → roster.updated (the full new record)."""
        form = await _form(request)
        fields = [f for f in form.get("legal_fields", "").split(",") if f]
        try:
            person = RosterPerson(
                id=form.get("id", "").strip(),
                name=form.get("name", "").strip(),
                role=form.get("role", ""),
                legal_fields=fields,
                years_experience=int(form.get("years_experience", "0") or 0),
                capacity=int(form.get("capacity", "0") or 0),
                active=form.get("active") == "on",
            )
        except (ValueError, ValidationError):
            return self.render(
                request,
                "roster.html",
                account,
                400,
                people=self.roster(),
                action=_action_id(),
                error=BAD_PERSON,
            )
        return await self._roster_change(request, account, form, person, "roster_saved")

    async def deactivate(self, request: Request, account: StaffAccount) -> Response:
        """Deactivate a person: no new cases, open ones reassigned → roster.updated."""
        form = await _form(request)
        person = next((p for p in self.roster() if p.id == request.path_params["person_id"]), None)
        if person is None:
            return self.render(request, "refused.html", account, 404, status_code=404)
        changed = person.model_copy(update={"active": False})
        return await self._roster_change(request, account, form, changed, "roster_deactivated")

    async def _roster_change(
        self,
        request: Request,
        account: StaffAccount,
        form: Mapping[str, str],
        person: RosterPerson,
        action: str,
    ) -> Response:
        event = RosterUpdated(
            event_id=_event_id(form, "roster.updated"),
            occurred_at=self.clock.now(),
            producer=PRODUCER,
            person=person,
            recorded_by=account.id,
        )
        if not await self._publish(event):
            return self.render(request, "refused.html", account, 503, status_code=503, error=BUSY)
        await self.audit_action(account, request, action, event=event, detail=person.id)
        return RedirectResponse(f"/roster?ok={action}", status_code=303)

    async def audit_page(self, request: Request, account: StaffAccount) -> Response:
        """The newest audit records: who did what, when."""
        records = await self.audit.latest()
        return self.render(request, "audit.html", account, records=records, local=self.local)

    # Plumbing

    async def _publish(self, event: Event) -> bool:
        try:
            await self.publish(event)
        except TRANSIENT_ERRORS as error:
            log.warning("desk_action_not_published", error=type(error).__name__)
            return False
        return True

    async def audit_action(
        self,
        account: StaffAccount | None,
        request: Request,
        action: str,
        *,
        event: Event | None = None,
        detail: str | None = None,
    ) -> None:
        await self.audit.record(
            AuditRecord(
                at=self.clock.now(),
                person_id=account.id if account else "anonymous",
                role=account.role if account else "none",
                action=action,
                address=security.client_address(request),
                case_id=event.case_id if event else None,
                event_id=str(event.event_id) if event else None,
                detail=detail,
            )
        )

    def _done(self, request_id: str) -> None:
        self.done[request_id] = None
        while len(self.done) > 10_000:
            self.done.popitem(last=False)


async def _form(request: Request) -> dict[str, str]:
    """The posted form as text (checked boxes of `legal_fields` joined by commas)."""
    form = await request.form()
    values = {key: str(value) for key, value in form.items()}
    values["legal_fields"] = ",".join(str(v) for v in form.getlist("legal_fields"))
    return values


def _action_id() -> str:
    return secrets.token_urlsafe(16)


def _event_id(form: Mapping[str, str], topic: str) -> Any:
    """The action's event id: derived from the form's one-time value (a double submit is one
    event), a fresh one when the form has none."""
    action = form.get("action", "")[:100] or secrets.token_urlsafe(16)
    return derived_event_id(action, topic, PRODUCER)


def _next(request: Request) -> str:
    return _safe_next(request.query_params.get("next", ""))


def _safe_next(target: str) -> str:
    """A local path to go to after sign-in (never another site)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/queue"


BAD_LOGIN = "Tên đăng nhập hoặc mật khẩu không đúng."
TOO_MANY = "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau ít phút."
BAD_CONTRACT = "Vui lòng nhập số hợp đồng, giá trị (đồng) và hình thức tư vấn hợp lệ."
BAD_RESOLUTION = "Vui lòng chọn kết quả giải quyết."
BAD_FIELD = "Vui lòng chọn một lĩnh vực khác lĩnh vực hiện tại (lý do tối đa 2.000 ký tự)."
BAD_PERSON = "Thông tin nhân sự chưa hợp lệ: cần mã, họ tên, vai trò và ít nhất một lĩnh vực."
NOTICES = {
    "care": "Đã ghi nhận kết quả liên hệ.",
    "contract_recorded": "Đã ghi nhận hợp đồng.",
    "case_resolved": "Đã ghi nhận kết thúc vụ việc.",
    "case_reclassified": "Đã gửi lĩnh vực mới; vụ việc sẽ được phân loại lại trong giây lát.",
    "roster_saved": "Đã lưu thông tin nhân sự.",
    "roster_deactivated": "Đã ngừng phân công cho nhân sự này.",
}


@dataclass
class Dashboard:
    """The managers' KPI pages: charts and metrics' own CSV."""

    desk: Desk
    metrics: MetricsClient

    async def page(self, request: Request, account: StaffAccount) -> Response:
        """The charts with the numbers behind them, under the chosen filters."""
        filters = Filters.from_query(request.query_params)
        try:
            charts = await dashboard_charts(self.metrics, filters)
        except MetricsUnavailable as error:
            log.warning("metrics_unavailable", error=str(error))
            return self.desk.render(
                request,
                "dashboard.html",
                account,
                503,
                filters=filters,
                charts=[],
                csv_query=urlencode(filters.params(())),
                error=METRICS_DOWN,
            )
        return self.desk.render(
            request,
            "dashboard.html",
            account,
            filters=filters,
            charts=charts,
            csv_query=urlencode({k: v for k, v in filters.params(()).items() if k != "kpi"}),
        )

    async def csv(self, request: Request, account: StaffAccount) -> Response:
        """Metrics' CSV of the filtered rows (every KPI)."""
        params = {k: v for k, v in Filters.from_query(request.query_params).params(()).items()}
        params.pop("kpi", None)
        try:
            body = await self.metrics.csv(params)
        except MetricsUnavailable:
            return Response(METRICS_DOWN, 503, media_type="text/plain; charset=utf-8")
        await self.desk.audit_action(account, request, "kpis_exported")
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="lexcare-kpi.csv"'},
        )


METRICS_DOWN = "Chưa đọc được số liệu từ dịch vụ metrics. Vui lòng thử lại sau ít phút."
