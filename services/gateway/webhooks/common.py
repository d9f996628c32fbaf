"""What every inbound endpoint shares: body limit, refusals counted and logged, publishing."""

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps

import orjson
import structlog
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.gateway.inbound import Malformed
from shared.clock import Clock
from shared.delivery import TRANSIENT_ERRORS
from shared.events import ContactReceived

log = structlog.get_logger("lexcare.gateway")

CONTACTS = Counter(
    "lexcare_gateway_contacts_total", "Contacts published as contact.received.", ["channel"]
)
REFUSED = Counter(
    "lexcare_gateway_refused_total",
    "Requests refused or dropped, nothing published (signature, malformed, too_large, ...).",
    ["channel", "reason"],
)
IGNORED = Counter(
    "lexcare_gateway_ignored_total",
    "Platform events that are not a customer's message (reads, follows, echoes).",
    ["channel"],
)

Publish = Callable[[Sequence[ContactReceived]], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]


def json_body(body: bytes) -> object:
    """The body as JSON, or Malformed."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Malformed(f"not valid JSON: {error}") from error


class Refusal(Exception):
    """An inbound request the gateway refuses: answered `status`, counted by `reason`."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


async def limited_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, or a 413 Refusal past `max_bytes` (read no further than it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise Refusal(413, "too_large", f"body over {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise Refusal(413, "too_large", f"body over {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class Inbox:
    """Reads bodies under the limit and publishes what the channels received."""

    publish: Publish
    max_body_bytes: int
    clock: Clock

    async def body(self, request: Request) -> bytes:
        """The raw body, or a 413 Refusal past the limit (read no further than it)."""
        return await limited_body(request, self.max_body_bytes)

    async def published(self, channel: str, contacts: Sequence[ContactReceived]) -> bool:
        """Publish the contacts (acknowledged by the broker); False if the broker is away."""
        try:
            await self.publish(contacts)
        except TRANSIENT_ERRORS as error:
            # The platform retries: the same message ids give the same events.
            log.warning("contact_not_published", channel=channel, error=type(error).__name__)
            return False
        CONTACTS.labels(channel).inc(len(contacts))
        for event in contacts:
            log.info("contact_received", channel=channel, event_id=str(event.event_id))
        return True

    async def accept(self, channel: str, contacts: Sequence[ContactReceived]) -> Response:
        """Publish the contacts and answer 200, or 503 so that the platform retries."""
        if not await self.published(channel, contacts):
            return JSONResponse({"error": "try again later"}, 503)
        return JSONResponse({"received": len(contacts)})


def count_refusal(channel: str, refusal: Refusal) -> None:
    """Count and log a refusal (reason and status only: never what was sent)."""
    REFUSED.labels(channel, refusal.reason).inc()
    log.warning(
        "webhook_refused",
        channel=channel,
        status=refusal.status,
        reason=refusal.reason,
        detail=refusal.detail,
    )


def refusing(channel: str, endpoint: Endpoint) -> Endpoint:
    """Wrap `endpoint`: a Refusal or Malformed becomes its status with the reason, counted."""

    @wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Malformed as error:
            refusal = Refusal(400, "malformed", str(error))
        except Refusal as error:
            refusal = error
        count_refusal(channel, refusal)
        return JSONResponse({"error": refusal.reason, "detail": refusal.detail}, refusal.status)

    return guarded


@dataclass
class RateLimit:
    """A token bucket per client address: `per_minute` requests, refilled continuously."""

    per_minute: float
    max_clients: int = 10_000
    buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)

    def allow(self, client: str, now: float | None = None) -> bool:
        """Take one token of `client`'s bucket; False when it is empty."""
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.pop(client, (self.per_minute, now))
        tokens = min(self.per_minute, tokens + (now - last) * self.per_minute / 60)
        allowed = tokens >= 1
        self.buckets[client] = (tokens - 1 if allowed else tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return allowed
