"""The call center's switchboard and the reception desk: call-ended and walk-in records."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.gateway.inbound import call_contact
from services.gateway.signatures import same_secret
from services.gateway.webhooks.common import Inbox, Refusal, json_body, refusing

CHANNEL = "call"


def routes(inbox: Inbox, *, token: str) -> list[Route]:
    """POST /webhooks/call with `Authorization: Bearer <token>`."""

    async def receive(request: Request) -> Response:
        body = await inbox.body(request)
        presented = request.headers.get("authorization")
        if presented is None:
            raise Refusal(401, "signature", "Authorization: Bearer <token> missing")
        if not same_secret(presented.removeprefix("Bearer ").strip(), token):
            raise Refusal(403, "signature", "wrong token")
        event = call_contact(json_body(body), received_at=inbox.clock.now())
        return await inbox.accept(event.channel.value, [event])

    return [Route("/webhooks/call", refusing(CHANNEL, receive), methods=["POST"])]
