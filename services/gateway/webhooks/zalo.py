"""Zalo Official Account: signed user-message webhooks."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.gateway.inbound import zalo_contact, zalo_timestamp
from services.gateway.signatures import zalo_signature_ok
from services.gateway.webhooks.common import IGNORED, Inbox, Refusal, json_body, refusing

CHANNEL = "zalo"


def routes(inbox: Inbox, *, app_id: str, oa_secret: str) -> list[Route]:
    """POST takes the OA's events; user messages become contacts, the rest is ignored."""

    async def receive(request: Request) -> Response:
        body = await inbox.body(request)
        signature = request.headers.get("x-zevent-signature")
        if signature is None:
            raise Refusal(401, "signature", "X-ZEvent-Signature missing")
        # Zalo signs the body with the timestamp it carries: read it, check, then trust.
        payload = json_body(body)
        if not zalo_signature_ok(
            signature,
            app_id=app_id,
            body=body,
            timestamp=zalo_timestamp(payload),
            oa_secret=oa_secret,
        ):
            raise Refusal(403, "signature", "X-ZEvent-Signature wrong")
        event = zalo_contact(payload)
        if event is None:
            IGNORED.labels(CHANNEL).inc()
            return JSONResponse({"received": 0})
        return await inbox.accept(CHANNEL, [event])

    return [Route("/webhooks/zalo", refusing(CHANNEL, receive), methods=["POST"])]
