"""The survey page without a broker: what it shows, what it publishes, what it refuses."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette

from services.gateway.survey_page import NO_SCORE, SurveyPage, scores_from_form, survey_routes
from shared.clock import FakeClock
from shared.events import SurveyAnswered
from shared.survey_links import SurveyClaims, SurveyLinks

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
LINKS = SurveyLinks("test-secret")
CLAIMS = SurveyClaims(
    survey_id="srv-0eac5c264781530c",
    case_id="case-1",
    channel="zalo",
    questions=("nps", "csat", "ces"),
    expires_at=NOW + timedelta(days=6),
)
TOKEN = LINKS.token_for(CLAIMS)


class Page:
    """A page app in memory, recording what it publishes."""

    def __init__(self) -> None:
        self.published: list[SurveyAnswered] = []
        self.clock = FakeClock(NOW)

        async def publish(event: SurveyAnswered) -> None:
            self.published.append(event)

        page = SurveyPage(
            links=LINKS,
            publish=publish,
            clock=self.clock,
            zone=ZoneInfo("Asia/Ho_Chi_Minh"),
            max_body_bytes=20_000,
        )
        transport = httpx.ASGITransport(app=Starlette(routes=survey_routes(page)))
        self.client = httpx.AsyncClient(transport=transport, base_url="http://gateway")

    async def answer(self, token: str = TOKEN, **fields: str) -> httpx.Response:
        form = {"nonce": LINKS.form_nonce(token), **fields}
        return await self.client.post(f"/s/{token}", data=form)


@pytest.fixture
async def page():
    page = Page()
    yield page
    await page.client.aclose()


async def test_the_page_asks_each_question_in_a_labelled_group_in_vietnamese(page):
    response = await page.client.get(f"/s/{TOKEN}")
    assert response.status_code == 200
    text = response.text
    assert '<html lang="vi">' in text and "Đánh giá chất lượng tư vấn" in text
    assert text.count("<fieldset") == 3 and text.count("<legend>") == 3
    radios = re.findall(r'<input type="radio" id="([a-z]+-\d+)"', text)
    assert len(radios) == 11 + 5 + 7
    assert all(f'<label for="{radio}">' in text for radio in radios)
    assert '<label class="block" for="gop-y">' in text
    assert "30/11/2026" in text  # the deadline, in the firm's time zone
    assert "srv-" not in text and "case-1" not in text
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in response.headers


async def test_an_answer_is_published_once_and_a_second_submit_is_told_so(page):
    response = await page.answer(nps="9", ces="2", comment="  Luật sư tư vấn rõ ràng ")
    assert response.status_code == 200 and "Cảm ơn anh/chị" in response.text
    [event] = page.published
    assert (event.survey_id, event.case_id) == (CLAIMS.survey_id, "case-1")
    assert (event.nps, event.csat, event.ces) == (9, None, 2)
    assert event.comment == "Luật sư tư vấn rõ ràng"
    assert event.occurred_at == NOW

    again = await page.answer(nps="3")
    assert again.status_code == 409 and "đã gửi đánh giá này rồi" in again.text
    assert (await page.client.get(f"/s/{TOKEN}")).status_code == 409
    assert len(page.published) == 1


async def test_the_event_id_comes_from_the_survey_so_a_restarted_page_sends_the_same_id():
    first, second = Page(), Page()
    await first.answer(nps="9")
    await second.answer(nps="4")
    assert first.published[0].event_id == second.published[0].event_id


async def test_a_form_with_no_score_is_shown_again_with_the_reason_and_what_was_typed(page):
    response = await page.answer(comment="Không biết chấm")
    assert response.status_code == 400
    assert 'role="alert"' in response.text and NO_SCORE in response.text
    assert "Không biết chấm</textarea>" in response.text
    assert page.published == []


async def test_a_body_over_the_limit_is_refused_with_the_form_again(page):
    response = await page.answer(nps="9", comment="x" * 30_000)
    assert response.status_code == 413 and 'role="alert"' in response.text
    assert page.published == []


async def test_a_tampered_token_is_not_found(page):
    tampered = TOKEN[:10] + ("A" if TOKEN[10] != "A" else "B") + TOKEN[11:]
    assert (await page.client.get(f"/s/{tampered}")).status_code == 404
    assert (await page.answer(tampered, nps="9")).status_code == 404
    assert (await page.client.get("/s/srv-0eac5c264781530c")).status_code == 404
    assert page.published == []


async def test_an_expired_survey_shows_that_it_is_closed(page):
    page.clock.advance(timedelta(days=6, seconds=1))
    response = await page.client.get(f"/s/{TOKEN}")
    assert response.status_code == 410 and "Khảo sát đã hết hạn" in response.text
    assert (await page.answer(nps="9")).status_code == 410
    assert page.published == []


async def test_a_post_without_the_forms_nonce_is_refused(page):
    response = await page.client.post(f"/s/{TOKEN}", data={"nps": "9"})
    assert response.status_code == 403
    assert page.published == []


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"nps": "0"}, (0, None, None, None)),
        ({"csat": "5", "comment": "a\r\nb"}, (None, 5, None, "a\nb")),
        ({"nps": "11"}, "invalid"),
        ({"ces": "0"}, "invalid"),
        ({"csat": "x"}, "invalid"),
        ({"nps": "", "comment": "chỉ góp ý"}, "missing"),
        ({"nps": "9", "comment": "x" * 2_001}, "too long"),
    ],
)
def test_scores_from_a_form(form, expected):
    scores = scores_from_form(form, ("nps", "csat", "ces"))
    if isinstance(expected, tuple):
        assert (scores.nps, scores.csat, scores.ces, scores.comment) == expected
    else:
        assert isinstance(scores, str)


def test_a_score_not_asked_is_not_taken():
    assert scores_from_form({"nps": "9", "ces": "3"}, ("ces",)).nps is None
