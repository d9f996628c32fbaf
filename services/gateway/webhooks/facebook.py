"""Facebook Messenger: the subscription check and signed message webhooks."""

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.gateway.inbound import facebook_contacts
from services.gateway.signatures import facebook_signature_ok, same_secret
from services.gateway.webhooks.common import IGNORED, Inbox, Refusal, json_body, refusing

CHANNEL = "facebook"


def routes(inbox: Inbox, *, verify_token: str, app_secret: str) -> list[Route]:
    """GET answers Facebook's subscription check; POST takes the page's messages."""

    async def subscribe(request: Request) -> Response:
        params = request.query_params
        if params.get("hub.mode") != "subscribe" or not same_secret(
            params.get("hub.verify_token"), verify_token
        ):
            raise Refusal(403, "verify_token", "wrong hub.mode or hub.verify_token")
        return PlainTextResponse(params.get("hub.challenge", ""))

    async def receive(request: Request) -> Response:
        body = await inbox.body(request)
        signature = request.headers.get("x-hub-signature-256")
        if not facebook_signature_ok(body, signature, app_secret):
            status = 401 if signature is None else 403
            raise Refusal(status, "signature", "X-Hub-Signature-256 missing or wrong")
        contacts, ignored = facebook_contacts(json_body(body))
        IGNORED.labels(CHANNEL).inc(ignored)
        if not contacts:
            return JSONResponse({"received": 0})
        return await inbox.accept(CHANNEL, contacts)

    return [
        Route("/webhooks/facebook", refusing(CHANNEL, subscribe), methods=["GET"]),
        Route("/webhooks/facebook", refusing(CHANNEL, receive), methods=["POST"]),
    ]
