"""The survey page in a real browser over the real broker: survey and gateway in-process,
headless Chromium (Debian's package, driven by Playwright) at phone width."""

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from services.gateway.app import GatewaySettings
from services.gateway.app import create_app as create_gateway
from services.survey.app import SurveySettings
from services.survey.app import create_app as create_survey
from shared.clock import FakeClock
from shared.events import Event
from tests.conftest import eventually
from tests.integration.gateway.conftest import gateway_settings
from tests.integration.gateway.standins import PlatformStandIn, serving
from tests.integration.metrics.conftest import serve_http  # noqa: F401 (fixture)
from tests.kafka_tools import RawKafka
from tests.unit.survey.factories import T0, classified, resolved

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
SECRET = "survey-link-secret-test"
SUBMIT = "Gửi đánh giá"
NPS = "Anh/chị sẵn lòng giới thiệu văn phòng luật cho người thân, bạn bè ở mức nào?"
CSAT = "Anh/chị hài lòng thế nào với lần tư vấn vừa qua?"
# Set to a path (docs/images/survey-page.png) to keep the answered form's screenshot.
SCREENSHOT = os.environ.get("LEXCARE_SURVEY_SCREENSHOT")


@dataclass
class Stack:
    """Survey and gateway running on one fake clock, the page served over HTTP."""

    kafka: RawKafka
    clock: FakeClock
    platform: PlatformStandIn
    page_url: str
    gateway_settings: GatewaySettings

    async def survey_link(self, case_id: str) -> str:
        """Resolve a known case; the survey_url of the survey.requested it causes."""
        for event in (classified(case_id), resolved(case_id)):
            await send(self.kafka, event)
        requests = await self.kafka.read(
            "survey.requested", until=lambda records: any(_for(r, case_id) for r in records)
        )
        [request] = {r.value: r for r in requests if _for(r, case_id)}.values()
        return orjson.loads(request.value)["survey_url"]


def score(value: str) -> re.Pattern[str]:
    """A scale's radio button by its value (an end's name goes on with its meaning)."""
    return re.compile(rf"^{value}( – .*)?$")


def _for(record, case_id: str) -> bool:
    return record.key == case_id.encode()


async def send(kafka: RawKafka, event: Event) -> None:
    """Publish `event` as its producer would: its topic, keyed by case."""
    await kafka.send(event.event_type, event.to_bytes(), key=event.partition_key().decode())


@pytest.fixture
async def stack(infra, settings_for, run_app, serve_http) -> AsyncIterator[Stack]:  # noqa: F811
    """Gateway (Zalo to a stand-in) and survey on one clock; the page on a local port."""
    clock = FakeClock(T0)
    platform = PlatformStandIn()
    async with serving(platform) as platform_url:
        settings = gateway_settings(
            settings_for,
            zalo_api_url=platform_url,
            zalo_access_token="zalo-token-test",
            survey_link_secret=SECRET,
        )
        gateway = create_gateway(settings, clock=clock)
        await run_app(gateway)
        http = await serve_http(gateway)
        survey = settings_for(
            SurveySettings, survey_link_secret=SECRET, survey_base_url=http.base_url
        )
        await run_app(create_survey(survey, clock=clock))
        async with RawKafka(infra.kafka, survey.topic_prefix) as kafka:
            yield Stack(kafka, clock, platform, http.base_url, settings)


@pytest.fixture
async def phone():
    """A browser tab factory at phone width: Debian's Chromium, headless, nothing downloaded."""
    if not HAVE_CHROMIUM:
        pytest.skip("no /usr/bin/chromium: `make tools` installs Debian's chromium package")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        context = await browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="vi-VN"
        )
        context.set_default_timeout(20_000)
        yield context
        await browser.close()


async def test_a_customer_answers_the_survey_on_a_phone_and_it_is_scored(stack, phone):
    link = await stack.survey_link("case-web")
    assert link.startswith(f"{stack.page_url}/s/")

    tab, second_tab = await phone.new_page(), await phone.new_page()
    response = await tab.goto(link)
    assert response.status == 200
    await second_tab.goto(link)  # the same link open twice: the second submit comes later
    assert await tab.title() == "Đánh giá chất lượng tư vấn – Văn phòng luật"
    assert await tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    await tab.get_by_role("group", name=NPS).get_by_role("radio", name=score("9")).check()
    csat = tab.get_by_role("group", name=CSAT)
    await csat.get_by_role("radio", name=score("4")).check()
    await tab.keyboard.press("ArrowRight")  # radio groups work from the keyboard
    assert await csat.get_by_role("radio", name=score("5")).is_checked()
    await tab.get_by_label("Góp ý thêm (không bắt buộc)").fill("Luật sư tư vấn rất rõ ràng")
    navy = await tab.locator("label[for=nps-9]").evaluate("e => getComputedStyle(e).color")
    assert navy == "rgb(255, 255, 255)"  # the style block ran under the page's CSP
    if SCREENSHOT:
        await tab.screenshot(path=SCREENSHOT, full_page=True)

    await tab.get_by_role("button", name=SUBMIT).click()
    await tab.get_by_role("heading", name="Cảm ơn anh/chị đã đánh giá").wait_for()

    [scored] = await stack.kafka.events("survey.scored", count=1)
    assert (scored["case_id"], scored["channel"], scored["legal_field"]) == (
        "case-web",
        "zalo",
        "land",
    )
    assert (scored["nps"], scored["csat"], scored["ces"]) == (9, 5, None)
    assert scored["comment"] == "Luật sư tư vấn rất rõ ràng"

    await second_tab.get_by_role("group", name=NPS).get_by_role("radio", name=score("2")).check()
    await second_tab.get_by_role("button", name=SUBMIT).click()
    await second_tab.get_by_role("heading", name="Anh/chị đã gửi đánh giá này rồi").wait_for()
    answers = await stack.kafka.settle("survey.answered")
    assert len(answers) == 1


async def test_the_survey_link_goes_out_in_the_zalo_message(stack):
    link = await stack.survey_link("case-msg")
    await eventually(lambda: stack.platform.requests)
    assert link in stack.platform.requests[0].json["message"]["text"]


async def test_a_changed_link_is_not_found_and_an_expired_survey_says_it_is_closed(stack, phone):
    link = await stack.survey_link("case-late")
    tab = await phone.new_page()
    position = len(link) - 20
    tampered = link[:position] + ("A" if link[position] != "A" else "B") + link[position + 1 :]
    response = await tab.goto(tampered)
    assert response.status == 404
    await tab.get_by_role("heading", name="Không tìm thấy khảo sát").wait_for()

    response = await tab.goto(link)
    assert response.status == 200
    stack.clock.advance(timedelta(days=7, seconds=1))
    await tab.get_by_role("group", name=NPS).get_by_role("radio", name=score("10")).check()
    await tab.get_by_role("button", name=SUBMIT).click()
    await tab.get_by_role("heading", name="Khảo sát đã hết hạn").wait_for()
    response = await tab.goto(link)
    assert response.status == 410
    assert await stack.kafka.settle("survey.answered") == []


async def test_a_second_answer_after_a_gateway_restart_is_the_same_event_and_not_scored_twice(
    stack, run_app
):
    link = await stack.survey_link("case-restart")
    path = link.removeprefix(stack.page_url)
    for scores in ({"nps": "8"}, {"nps": "1", "csat": "1"}):
        gateway = create_gateway(stack.gateway_settings, clock=stack.clock)  # memory lost
        await run_app(gateway)
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url=stack.page_url) as client:
            form = await client.get(path)
            nonce = form.text.split('name="nonce" value="', 1)[1].split('"', 1)[0]
            answered = await client.post(path, data={"nonce": nonce, **scores})
            assert answered.status_code == 200
    answers = await stack.kafka.read("survey.answered", until=lambda records: len(records) >= 2)
    assert len({Event.model_validate_json(r.value).event_id for r in answers}) == 1
    [scored] = await stack.kafka.events("survey.scored", count=1)
    assert scored["nps"] == 8
    assert len(await stack.kafka.settle("survey.scored")) == 1
    assert await stack.kafka.settle("survey.answered.dlq") == []
