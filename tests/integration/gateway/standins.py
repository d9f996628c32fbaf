"""Local stand-ins for the platforms: an HTTP server that records requests, a real SMTP server."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import eventually


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Recorded:
    """One request a stand-in received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class PlatformStandIn:
    """Answers Messenger's and Zalo's send calls; fails the first `failures` with 503."""

    failures: int = 0
    status: int = 200
    requests: list[Recorded] = field(default_factory=list)

    def app(self) -> Starlette:
        async def record(request: Request) -> JSONResponse:
            self.requests.append(
                Recorded(
                    request.url.path,
                    dict(request.query_params),
                    dict(request.headers),
                    await request.json(),
                )
            )
            if self.failures > 0:
                self.failures -= 1
                return JSONResponse({"error": "busy"}, 503)
            if self.status != 200:
                return JSONResponse({"error": {"code": 100}}, self.status)
            return JSONResponse({"error": 0, "message_id": "mid.1", "data": {}})

        return Starlette(
            routes=[Route("/{path:path}", record, methods=["POST"])],
        )


@contextlib.asynccontextmanager
async def serving(standin: PlatformStandIn) -> AsyncIterator[str]:
    """Serve `standin` on a free local port; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(standin.app(), host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, interval=0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class Mailbox:
    """aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextlib.contextmanager
def smtp_server():
    """A real SMTP server on a free local port: (mailbox, port)."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()
