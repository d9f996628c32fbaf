"""The firm's website contact form: site key, CORS allow-list, honeypot, rate limit."""

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.gateway.inbound import HONEYPOT_FIELD, Malformed, form_contact
from services.gateway.signatures import same_secret
from services.gateway.webhooks.common import (
    REFUSED,
    Inbox,
    RateLimit,
    Refusal,
    json_body,
    log,
    refusing,
)

CHANNEL = "website"
PATH = "/forms/contact"


def form_fields(body: bytes, content_type: str) -> dict[str, str]:
    """The form's fields from a JSON object or an url-encoded body."""
    if content_type.startswith("application/json"):
        data = json_body(body)
        if not isinstance(data, dict):
            raise Malformed("body: expected a JSON object")
        return {str(k): str(v) for k, v in data.items() if v is not None}
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            return dict(parse_qsl(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError as error:
            raise Malformed("body: not UTF-8") from error
    raise Refusal(415, "media_type", "send application/json or x-www-form-urlencoded")


def cors_headers(origin: str) -> dict[str, str]:
    """The headers that let the page at `origin` read the answer."""
    return {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": "POST, OPTIONS",
        "access-control-allow-headers": "content-type, x-site-key",
        "access-control-max-age": "600",
        "vary": "Origin",
    }


def routes(
    inbox: Inbox, *, site_keys: list[str], origins: list[str], per_minute: float
) -> list[Route]:
    """OPTIONS answers the browser's preflight; POST takes a form."""
    limit = RateLimit(per_minute)

    def allowed_origin(request: Request) -> str | None:
        origin = request.headers.get("origin")
        if origin is not None and origin not in origins:
            raise Refusal(403, "origin", "origin not allowed")
        return origin

    def with_cors(response: Response, origin: str | None) -> Response:
        if origin:
            response.headers.update(cors_headers(origin))
        return response

    async def preflight(request: Request) -> Response:
        origin = allowed_origin(request)
        return with_cors(Response(status_code=204), origin)

    async def submit(request: Request) -> Response:
        origin = allowed_origin(request)
        if not limit.allow(request.client.host if request.client else "unknown"):
            raise Refusal(429, "rate_limited", f"over {per_minute:g} forms a minute")
        body = await inbox.body(request)
        fields = form_fields(body, request.headers.get("content-type", ""))
        key = fields.pop("site_key", None) or request.headers.get("x-site-key")
        if not any(same_secret(key, site_key) for site_key in site_keys):
            raise Refusal(403, "site_key", "unknown site key")
        if fields.get(HONEYPOT_FIELD):
            # Answered as a success, so the bot learns nothing; counted and logged.
            REFUSED.labels(CHANNEL, "honeypot").inc()
            log.warning("webhook_refused", channel=CHANNEL, status=200, reason="honeypot")
            return with_cors(JSONResponse({"received": 1}), origin)
        event = form_contact(fields, received_at=inbox.clock.now(), body=body)
        return with_cors(await inbox.accept(CHANNEL, [event]), origin)

    return [
        Route(PATH, refusing(CHANNEL, preflight), methods=["OPTIONS"]),
        Route(PATH, refusing(CHANNEL, submit), methods=["POST"]),
    ]
