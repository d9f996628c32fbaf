"""The survey page: `GET /s/<token>` shows the survey, `POST /s/<token>` answers it.

The token (shared/survey_links.py) is the customer's only key: sealed by survey, it opens
to the survey's claims or to nothing (404). The page sets no cookie, so a forged
cross-site POST has no ambient credential to ride on: it needs the token, and the form's
nonce (an HMAC of the token under the link secret) besides. An answer's event id is derived
from the survey id, so a double submit is one event; the page remembers answered surveys
in memory, and survey itself refuses a second answer after a restart.
"""

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import structlog
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from services.gateway import survey_html as html
from services.gateway.webhooks.common import Refusal, limited_body
from shared import topics
from shared.clock import Clock
from shared.delivery import TRANSIENT_ERRORS
from shared.events import SurveyAnswered, derived_event_id
from shared.survey_links import Question, SurveyClaims, SurveyLinks

log = structlog.get_logger("lexcare.gateway")
PRODUCER = "gateway.survey_page"
PAGE_VIEWS = Counter(
    "lexcare_gateway_survey_page_total",
    "Survey page requests by outcome (shown, answered, already_answered, expired, ...).",
    ["outcome"],
)
HEADERS = {
    "Content-Security-Policy": html.CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",  # the token is in the address: never pass it on
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
NO_SCORE = "Anh/chị vui lòng chọn ít nhất một điểm trước khi gửi."
BAD_SCORE = "Điểm đã chọn không hợp lệ, anh/chị vui lòng chọn lại."
LONG_COMMENT = f"Góp ý dài quá {html.COMMENT_MAX_CHARS:,} ký tự, anh/chị vui lòng rút gọn."
BUSY = "Hệ thống đang bận nên chưa gửi được. Anh/chị vui lòng bấm gửi lại sau ít phút."


@dataclass(frozen=True)
class Scores:
    """What a customer answered on the page."""

    nps: int | None = None
    csat: int | None = None
    ces: int | None = None
    comment: str | None = None


def scores_from_form(form: Mapping[str, str], questions: tuple[Question, ...]) -> Scores | str:
    """The scores a submitted form gives, or why it cannot be sent (in Vietnamese)."""
    given: dict[str, int] = {}
    for question in questions:
        raw = form.get(question, "").strip()
        if not raw:
            continue
        scale = html.SCALES[question]
        if not raw.isdigit() or not scale.low <= int(raw) <= scale.high:
            return BAD_SCORE
        given[question] = int(raw)
    comment = form.get("comment", "").replace("\r\n", "\n").strip()
    if len(comment) > html.COMMENT_MAX_CHARS:
        return LONG_COMMENT
    if not given:
        return NO_SCORE
    return Scores(**given, comment=comment or None)


def answer_event(claims: SurveyClaims, scores: Scores, clock: Clock) -> SurveyAnswered:
    """The `survey.answered` of a page answer: one id per survey, however often it is sent."""
    return SurveyAnswered(
        event_id=derived_event_id(claims.survey_id, topics.SURVEY_ANSWERED, PRODUCER),
        occurred_at=clock.now(),
        producer=PRODUCER,
        case_id=claims.case_id,
        survey_id=claims.survey_id,
        nps=scores.nps,
        csat=scores.csat,
        ces=scores.ces,
        comment=scores.comment,
    )


@dataclass
class SurveyPage:
    """Shows surveys and publishes their answers; remembers the surveys it saw answered."""

    links: SurveyLinks
    publish: Callable[[SurveyAnswered], Awaitable[None]]
    clock: Clock
    zone: ZoneInfo
    max_body_bytes: int
    max_remembered: int = 100_000
    answered: OrderedDict[str, None] = field(default_factory=OrderedDict)

    async def endpoint(self, request: Request) -> Response:
        """GET shows the survey (or why not), POST answers it."""
        claims = self.links.open(request.path_params["token"])
        if claims is None:
            return _page(html.NOT_FOUND, 404, "not_found")
        if claims.survey_id in self.answered:
            return _page(html.ALREADY_ANSWERED, 409, "already_answered")
        if claims.expired(self.clock.now()):
            return _page(html.EXPIRED, 410, "expired")
        if request.method != "POST":
            return _page(self._form(request, claims), 200, "shown")
        return await self._answer(request, claims)

    async def _answer(self, request: Request, claims: SurveyClaims) -> Response:
        """Check the form's nonce and scores, publish the answer, thank the customer."""
        token = request.path_params["token"]
        try:
            form = dict(parse_qsl((await limited_body(request, self.max_body_bytes)).decode()))
        except Refusal:
            return _page(self._form(request, claims, error=LONG_COMMENT), 413, "invalid")
        except UnicodeDecodeError:
            return _page(self._form(request, claims, error=BAD_SCORE), 400, "invalid")
        if not self.links.nonce_matches(token, form.get("nonce", "")):
            return _page(html.STALE_FORM, 403, "stale_form")
        scores = scores_from_form(form, claims.questions)
        if isinstance(scores, str):
            return _page(self._form(request, claims, form, error=scores), 400, "invalid")
        try:
            await self.publish(answer_event(claims, scores, self.clock))
        except TRANSIENT_ERRORS as error:
            log.warning("survey_answer_not_published", error=type(error).__name__)
            return _page(self._form(request, claims, form, error=BUSY), 503, "unavailable")
        self._remember(claims.survey_id)
        log.info("survey_page_answered", survey_id=claims.survey_id)
        return _page(html.THANKS, 200, "answered")

    def _form(
        self,
        request: Request,
        claims: SurveyClaims,
        form: Mapping[str, str] | None = None,
        *,
        error: str | None = None,
    ) -> str:
        token = request.path_params["token"]
        form = form or {}
        return html.survey_form(
            nonce=self.links.form_nonce(token),
            questions=claims.questions,
            deadline=claims.expires_at.astimezone(self.zone).strftime("%d/%m/%Y"),
            chosen=form,
            comment=form.get("comment", ""),
            error=error,
        )

    def _remember(self, survey_id: str) -> None:
        self.answered[survey_id] = None
        while len(self.answered) > self.max_remembered:
            self.answered.popitem(last=False)


def _page(body: str, status: int, outcome: str) -> HTMLResponse:
    PAGE_VIEWS.labels(outcome).inc()
    return HTMLResponse(body, status, headers=HEADERS)


def survey_routes(page: SurveyPage) -> list[BaseRoute]:
    """The survey page's routes, beside the webhooks'."""
    return [Route("/s/{token}", page.endpoint, methods=["GET", "POST"])]
