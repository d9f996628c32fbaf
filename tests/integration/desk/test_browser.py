"""The desk in a real browser over the real broker: desk and metrics in-process, Debian's
headless Chromium driven by Playwright (the survey page's approach: nothing downloaded)."""

import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from shared.events import CaseClassified, CaseResolved, ContractSigned, FeeQuoted, SurveyScored
from tests.conftest import eventually
from tests.integration.desk.conftest import PASSWORDS
from tests.integration.gateway.test_survey_page import CHROMIUM, CHROMIUM_ARGS, HAVE_CHROMIUM
from tests.unit.desk.factories import T0, assigned, classified, requested

pytestmark = pytest.mark.integration

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}
# Set to a directory (docs/images) to keep the queue's, a case's and the dashboard's screenshots.
SCREENSHOTS = os.environ.get("LEXCARE_DESK_SCREENSHOTS")


def opened(case_id: str, hours_ago: float, **overrides) -> CaseClassified:
    """A new case opened `hours_ago` before T0."""
    return classified(case_id, occurred_at=T0 - timedelta(hours=hours_ago), **overrides)


def scored(case_id: str, days_ago: int, nps: int, csat: int, ces: int) -> SurveyScored:
    """A survey answer of `days_ago` days before T0."""
    return SurveyScored(
        event_id=uuid.uuid4(),
        occurred_at=T0 - timedelta(days=days_ago),
        producer="survey",
        survey_id=f"sv-{case_id}",
        case_id=case_id,
        customer_id=f"cus-{case_id}",
        channel="zalo",
        legal_field="land",
        lawyer_id="law-land-01",
        nps=nps,
        csat=csat,
        ces=ces,
    )


def closed(case_id: str, days_ago: int, lawyer_id: str, *, contract: bool) -> list:
    """A case quoted, maybe signed, and resolved by `lawyer_id` `days_ago` days before T0."""
    at = T0 - timedelta(days=days_ago)
    events = [
        opened(case_id, days_ago * 24 + 5),
        FeeQuoted(
            event_id=uuid.uuid4(),
            occurred_at=at - timedelta(hours=4),
            producer="routing",
            case_id=case_id,
            legal_field="land",
            prices_vnd={"phone": 500_000, "office": 1_000_000},
            recommended_method="office",
            basis="Biểu phí 2026",
        ),
        CaseResolved(
            event_id=uuid.uuid4(),
            occurred_at=at,
            producer="desk",
            case_id=case_id,
            lawyer_id=lawyer_id,
            outcome="advised",
        ),
    ]
    if contract:
        events.insert(
            2,
            ContractSigned(
                event_id=uuid.uuid4(),
                occurred_at=at - timedelta(hours=2),
                producer="desk",
                case_id=case_id,
                contract_id=f"HD-{case_id}",
                amount_vnd=1_000_000,
                delivery_method="office",
            ),
        )
    return events


async def seed(stack) -> None:
    """Three cases with care due (one overdue, one a complaint), closed cases, answers."""
    await stack.send(
        opened("case-web", 3),
        assigned("case-web").model_copy(update={"occurred_at": T0 - timedelta(hours=2)}),
        requested("case-web", request_id="req-web", due_at=T0),
        opened("case-late", 30, legal_field="family"),
        requested("case-late", request_id="req-late", due_at=T0 - timedelta(days=1)),
        opened("case-angry", 1, kind="complaint", is_complaint=True),
        requested("case-angry", request_id="req-angry", due_at=T0, kind="apology", priority="high"),
        *(
            scored(f"case-s{i}", days, nps, csat, ces)
            for i, (days, nps, csat, ces) in enumerate(
                [(20, 9, 5, 2), (18, 6, 3, 5), (12, 10, 5, 1), (9, 8, 4, 3), (3, 9, 5, 2)]
            )
        ),
        *closed("case-c1", 2, "law-land-01", contract=True),
        *closed("case-c2", 1, "law-land-02", contract=False),
        *closed("case-c3", 1, "law-land-01", contract=True),
    )


@pytest.fixture
async def browser():
    """Debian's Chromium, headless."""
    if not HAVE_CHROMIUM:
        pytest.skip("no /usr/bin/chromium: `make tools` installs Debian's chromium package")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


async def context(browser, viewport):
    """A fresh browser profile (its own cookies) at `viewport`."""
    mobile = viewport == PHONE
    made = await browser.new_context(
        viewport=viewport,
        device_scale_factor=2 if mobile else 1,
        is_mobile=mobile,
        has_touch=mobile,
        locale="vi-VN",
    )
    made.set_default_timeout(20_000)
    return made


async def sign_in(tab, base_url: str, login: str) -> None:
    """Sign in from the keyboard, as staff do."""
    await tab.goto(f"{base_url}/queue")
    await tab.get_by_label("Tên đăng nhập").fill(login)
    await tab.get_by_label("Mật khẩu").fill(PASSWORDS[login])
    await tab.keyboard.press("Enter")
    await tab.get_by_role("heading", name="Việc hôm nay").wait_for()


async def shot(tab, name: str) -> None:
    if SCREENSHOTS:
        await tab.screenshot(path=str(Path(SCREENSHOTS) / f"desk-{name}.png"), full_page=True)


def frt_table(tab):
    return tab.get_by_role("region", name="Thời gian phản hồi đầu tiên (FRT, giờ thực)")


async def test_an_agent_marks_a_due_contact_reached_and_the_managers_frt_moves(stack, browser):
    await seed(stack)
    manager = await (await context(browser, LAPTOP)).new_page()
    await sign_in(manager, stack.desk_url, "mgr-01")
    await manager.goto(f"{stack.desk_url}/dashboard")
    await frt_table(manager).get_by_text("Chưa có số liệu").wait_for()

    agent = await (await context(browser, PHONE)).new_page()
    await sign_in(agent, stack.desk_url, "agent-01")

    async def all_listed() -> bool:
        await agent.reload()
        return await agent.get_by_role("article").count() == 3

    await eventually(all_listed)
    titles = await agent.get_by_role("article").get_by_role("heading").all_inner_texts()
    assert titles[0].startswith("Xin lỗi khách hàng")  # the complaint first, then the overdue
    assert "case-late" in titles[1] and "case-web" in titles[2]
    assert await agent.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await shot(agent, "queue")

    card = agent.get_by_role("article").filter(has_text="case-web")
    await card.get_by_label("Ghi chú (không bắt buộc)").fill("Khách hẹn gửi giấy tờ")
    await card.get_by_role("button", name="Đã liên hệ được").click()
    await agent.get_by_role("status").filter(has_text="Đã ghi nhận kết quả liên hệ").wait_for()
    assert await agent.get_by_role("article").filter(has_text="case-web").count() == 0

    [completed] = await stack.kafka.events("care.contact.completed", count=1)
    assert (completed["agent_id"], completed["outcome"]) == ("agent-01", "reached")

    await agent.goto(f"{stack.desk_url}/cases/case-web")

    async def on_the_timeline() -> bool:
        await agent.reload()
        return await agent.get_by_text("Kết quả liên hệ: Đã liên hệ được").count() == 1

    await eventually(on_the_timeline)
    await shot(agent, "case")

    async def frt_shown() -> bool:
        await manager.reload()
        return await frt_table(manager).get_by_text("Chưa có số liệu").count() == 0

    await eventually(frt_shown, timeout=60)
    await frt_table(manager).get_by_text("Bảng số liệu").click()
    assert await frt_table(manager).get_by_role("cell", name="3 giờ 30 phút").count() >= 1
    await shot(manager, "dashboard")


async def test_an_agent_is_refused_the_roster_and_a_forged_csrf_token(stack, browser):
    await seed(stack)
    agent = await (await context(browser, PHONE)).new_page()
    await sign_in(agent, stack.desk_url, "agent-01")
    response = await agent.goto(f"{stack.desk_url}/roster")
    assert response.status == 403
    await agent.get_by_role("heading", name="Không có quyền thực hiện").wait_for()

    await agent.goto(f"{stack.desk_url}/queue")
    card = agent.get_by_role("article").filter(has_text="case-web")
    await card.wait_for()
    await card.locator("input[name=csrf]").evaluate("input => { input.value = 'forged' }")
    async with agent.expect_response(lambda r: r.request.method == "POST") as posted:
        await card.get_by_role("button", name="Đã liên hệ được").click()
    assert (await posted.value).status == 403
    await agent.get_by_role("heading", name="Không có quyền thực hiện").wait_for()
    assert await stack.kafka.settle("care.contact.completed") == []


async def test_a_manager_deactivates_a_person_on_the_roster(stack, browser):
    manager = await (await context(browser, PHONE)).new_page()
    await sign_in(manager, stack.desk_url, "mgr-01")
    await manager.goto(f"{stack.desk_url}/roster")
    await manager.get_by_role("button", name="Ngừng phân công Trần Thị Thu Hà").click()
    await manager.get_by_role("status").filter(has_text="Đã ngừng phân công").wait_for()
    [update] = await stack.kafka.events("roster.updated", count=1)
    assert (update["person"]["id"], update["person"]["active"], update["recorded_by"]) == (
        "law-land-02",
        False,
        "mgr-01",
    )
