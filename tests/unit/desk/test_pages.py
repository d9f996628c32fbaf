"""The desk's pages over an in-memory read model: sign-in, CSRF, roles, actions' events."""

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from structlog.testing import capture_logs

from services.desk.app import DeskSettings, web_app
from services.desk.audit import AuditTrail
from services.desk.dashboard import MetricsClient
from services.desk.pages import Dashboard, Desk
from services.desk.staff import LoginLimiter
from shared.clock import FakeClock
from shared.events import Event
from tests.unit.desk.factories import PASSWORDS, T0, assigned, classified, requested, staff
from tests.unit.desk.test_handlers import harness, read_model


class MemoryCollection:
    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []

    async def insert_one(self, doc: dict[str, Any]) -> None:
        self.docs.append(doc)

    def find(self, *args: Any) -> "MemoryCursor":
        return MemoryCursor(list(reversed(self.docs)))


class MemoryCursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def sort(self, *args: Any) -> "MemoryCursor":
        return self

    def limit(self, n: int) -> "MemoryCursor":
        return MemoryCursor(self.docs[:n])

    async def to_list(self, length: None) -> list[dict[str, Any]]:
        return self.docs


class MemoryDb(dict):
    def __missing__(self, name: str) -> MemoryCollection:
        self[name] = MemoryCollection()
        return self[name]


class Stack:
    def __init__(self) -> None:
        h = harness()
        h.send(classified("case-1"), assigned("case-1"), requested("case-1", due_at=T0))
        self.published: list[Event] = []
        self.db = MemoryDb()

        async def publish(event: Event) -> None:
            self.published.append(event)

        self.accounts = staff()
        desk = Desk(
            model=read_model(h),
            accounts=lambda: self.accounts,
            publish=publish,
            audit=AuditTrail(self.db),
            limiter=LoginLimiter(attempts=3, window=timedelta(minutes=5)),
            clock=FakeClock(T0 + timedelta(minutes=30)),
            zone=ZoneInfo("Asia/Ho_Chi_Minh"),
            roster_file=[],
        )
        settings = DeskSettings(metrics_url="http://127.0.0.1:9")
        metrics = MetricsClient(settings.metrics_url, timeout_s=1)
        app = web_app(settings, desk, Dashboard(desk, metrics))
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://desk.test"
        )

    async def csrf(self, path: str) -> str:
        page = await self.client.get(path)
        return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

    async def sign_in(self, login: str) -> None:
        reply = await self.client.post(
            "/login",
            data={"csrf": await self.csrf("/login"), "login": login, "password": PASSWORDS[login]},
        )
        assert reply.status_code == 303

    @property
    def audit(self) -> list[dict[str, Any]]:
        return self.db["audit"].docs


@pytest.fixture
def stack() -> Stack:
    return Stack()


async def test_pages_need_a_session_and_send_the_security_headers(stack):
    reply = await stack.client.get("/queue")
    assert reply.status_code == 303 and reply.headers["location"] == "/login?next=/queue"
    login = await stack.client.get("/login")
    assert "script-src" not in login.headers["content-security-policy"]
    assert "default-src 'none'" in login.headers["content-security-policy"]
    assert login.headers["x-frame-options"] == "DENY"


async def test_the_session_cookie_is_signed_httponly_and_samesite(stack):
    await stack.sign_in("agent-01")
    cookie = (
        next(h for h in await stack.client.get("/queue").headers.get_list("set-cookie") or [""])
        if False
        else None
    )
    reply = await stack.client.post(
        "/login",
        data={
            "csrf": await stack.csrf("/login"),
            "login": "agent-01",
            "password": PASSWORDS["agent-01"],
        },
        follow_redirects=False,
    )
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "lexcare_desk=" in cookie


async def test_an_agent_sees_the_due_contact_and_one_click_publishes_it_as_theirs(stack):
    await stack.sign_in("agent-01")
    queue = await stack.client.get("/queue")
    assert "Nguyễn Văn An" in queue.text and "+84912345678" in queue.text
    action = re.search(r'name="action" value="([^"]+)"', queue.text).group(1)
    form = {
        "csrf": await stack.csrf("/queue"),
        "action": action,
        "outcome": "reached",
        "note": "ok",
    }
    form["agent_id"] = "mgr-01"  # a forged actor in the form is ignored
    reply = await stack.client.post("/cases/case-1/care/req-1", data=form)
    assert reply.status_code == 303
    again = await stack.client.post("/cases/case-1/care/req-1", data=form)
    assert again.status_code == 303
    first, second = stack.published
    assert first.event_id == second.event_id  # a double submit is one event
    assert (first.agent_id, first.outcome, first.request_id) == ("agent-01", "reached", "req-1")
    assert first.correlation_id == "corr-case-1"
    assert "Nguyễn Văn An" not in (await stack.client.get("/queue")).text  # off the queue at once
    assert [a["action"] for a in stack.audit] == ["sign_in", "care_recorded", "care_recorded"]
    assert stack.audit[1]["person_id"] == "agent-01"


async def test_a_forged_csrf_token_is_refused_and_nothing_is_published(stack):
    await stack.sign_in("agent-01")
    reply = await stack.client.post(
        "/cases/case-1/care/req-1", data={"csrf": "forged", "outcome": "reached"}
    )
    assert reply.status_code == 403
    missing = await stack.client.post("/cases/case-1/care/req-1", data={"outcome": "reached"})
    assert missing.status_code == 403
    assert stack.published == []


async def test_roles_are_checked_on_the_server_for_pages_and_actions(stack):
    await stack.sign_in("agent-01")
    assert (await stack.client.get("/roster")).status_code == 403
    assert (await stack.client.get("/dashboard")).status_code == 403
    csrf = await stack.csrf("/queue")
    resolve = await stack.client.post(
        "/cases/case-1/resolve", data={"csrf": csrf, "outcome": "advised"}
    )
    assert resolve.status_code == 403
    deactivate = await stack.client.post("/roster/law-land-01/deactivate", data={"csrf": csrf})
    assert deactivate.status_code == 403
    assert stack.published == []


async def test_a_lawyer_resolves_and_a_manager_deactivates_as_themselves(stack):
    await stack.sign_in("law-land-01")
    csrf = await stack.csrf("/cases/case-1")
    form = {"csrf": csrf, "outcome": "settled", "action": "a1", "lawyer_id": "law-x"}
    assert (await stack.client.post("/cases/case-1/resolve", data=form)).status_code == 303
    [resolved] = stack.published
    assert (resolved.lawyer_id, resolved.recorded_by, resolved.outcome) == (
        "law-land-01",
        "law-land-01",
        "settled",
    )
    await stack.client.post("/logout", data={"csrf": csrf})
    await stack.sign_in("mgr-01")
    form = {
        "csrf": await stack.csrf("/roster"),
        "action": "a2",
        "id": "law-new-02",
        "name": "Đỗ Thị Lan",
        "role": "lawyer",
        "legal_fields": ["family", "land"],
        "years_experience": "4",
        "capacity": "5",
        "active": "on",
    }
    assert (await stack.client.post("/roster", data=form)).status_code == 303
    added = stack.published[-1]
    assert added.person.legal_fields == ["family", "land"] and added.recorded_by == "mgr-01"


async def test_a_deactivated_account_is_out_at_its_next_click(stack):
    await stack.sign_in("agent-01")
    stack.accounts["agent-01"] = stack.accounts["agent-01"].model_copy(update={"active": False})
    assert (await stack.client.get("/queue")).status_code == 303


async def test_sign_in_is_rate_limited_per_address(stack):
    for _ in range(3):
        form = {"csrf": await stack.csrf("/login"), "login": "agent-01", "password": "sai"}
        assert (await stack.client.post("/login", data=form)).status_code == 401
    form = {
        "csrf": await stack.csrf("/login"),
        "login": "agent-01",
        "password": PASSWORDS["agent-01"],
    }
    assert (await stack.client.post("/login", data=form)).status_code == 429
    assert [a["action"] for a in stack.audit][-1] == "sign_in_refused"


async def test_sign_in_goes_back_only_to_a_local_page(stack):
    form = {
        "csrf": await stack.csrf("/login"),
        "login": "agent-01",
        "password": PASSWORDS["agent-01"],
        "next": "//evil.example/x",
    }
    reply = await stack.client.post("/login", data=form)
    assert reply.headers["location"] == "/queue"


async def test_a_contract_is_recorded_with_the_session_person(stack):
    await stack.sign_in("agent-01")
    form = {
        "csrf": await stack.csrf("/cases/case-1"),
        "action": "c1",
        "contract_id": "HD-2026-0142",
        "amount_vnd": "5.000.000",
        "delivery_method": "office",
    }
    assert (await stack.client.post("/cases/case-1/contract", data=form)).status_code == 303
    [signed] = stack.published
    assert (signed.amount_vnd, signed.recorded_by, signed.case_id) == (
        5_000_000,
        "agent-01",
        "case-1",
    )
    bad = await stack.client.post(
        "/cases/case-1/contract", data={**form, "amount_vnd": "năm triệu"}
    )
    assert bad.status_code == 400 and "Vui lòng nhập số hợp đồng" in bad.text


async def test_the_dashboard_says_so_when_metrics_does_not_answer(stack):
    await stack.sign_in("mgr-01")
    reply = await stack.client.get("/dashboard")
    assert reply.status_code == 503 and "Chưa đọc được số liệu" in reply.text


async def test_a_manager_reads_the_audit_trail_and_an_agent_may_not(stack):
    await stack.sign_in("agent-01")
    assert (await stack.client.get("/audit")).status_code == 403
    await stack.sign_in("mgr-01")
    page = await stack.client.get("/audit")
    assert page.status_code == 200 and "agent-01" in page.text and "sign_in" in page.text


async def test_an_edit_that_unticks_the_box_deactivates_the_person(stack):
    await stack.sign_in("mgr-01")
    form = {
        "csrf": await stack.csrf("/roster"),
        "action": "e1",
        "id": "law-land-02",
        "name": "Trần Thị Thu Hà",
        "role": "lawyer",
        "legal_fields": ["land"],
        "years_experience": "11",
        "capacity": "10",
    }
    assert (await stack.client.post("/roster", data=form)).status_code == 303
    assert stack.published[-1].person.active is False


async def test_the_customers_personal_data_never_reaches_the_log(stack):
    with capture_logs() as logs:
        await stack.sign_in("agent-01")
        queue = await stack.client.get("/queue")
        action = re.search(r'name="action" value="([^"]+)"', queue.text).group(1)
        form = {
            "csrf": await stack.csrf("/queue"),
            "action": action,
            "outcome": "reached",
            "note": "Anh An hẹn gọi lại số 0912345678",
        }
        await stack.client.post("/cases/case-1/care/req-1", data=form)
        await stack.client.get("/search?q=0912345678")
    text = repr(logs)
    assert "desk_action" in text
    assert "0912345678" not in text and "Nguyễn Văn An" not in text and "Anh An" not in text


async def test_an_agent_corrects_the_field_as_themself_and_the_same_field_is_refused(stack):
    await stack.sign_in("agent-01")
    form = {
        "csrf": await stack.csrf("/cases/case-1"),
        "action": "f1",
        "legal_field": "labor",
        "reason": "nợ lương",
        "agent_id": "mgr-01",
    }
    assert (await stack.client.post("/cases/case-1/reclassify", data=form)).status_code == 303
    [corrected] = stack.published
    assert (corrected.legal_field, corrected.agent_id, corrected.reason) == (
        "labor",
        "agent-01",
        "nợ lương",
    )
    same = await stack.client.post("/cases/case-1/reclassify", data={**form, "legal_field": "land"})
    assert same.status_code == 400 and len(stack.published) == 1
