"""Fixtures for metrics integration tests: the service's HTTP API on a real socket."""

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
import uvicorn

from tests.infra import free_port


class Http:
    """A plain HTTP client for one served app."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
        """GET `path`: (status, content type, body)."""

        def fetch() -> tuple[int, str, bytes]:
            request = urllib.request.Request(self.base_url + path, headers=headers or {})
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers["content-type"], response.read()

        return await asyncio.to_thread(fetch)

    async def kpis(self, query: str = "") -> list[dict[str, Any]]:
        """GET /kpis as JSON rows."""
        _, _, body = await self.get(f"/kpis?{query}")
        return orjson.loads(body)["kpis"]


@pytest.fixture
async def serve_http() -> AsyncIterator[Callable[[Any], Any]]:
    """Serve an already started app's HTTP routes on a free port (uvicorn, no lifespan)."""
    servers: list[tuple[uvicorn.Server, asyncio.Task]] = []

    async def start(app: Any) -> Http:
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        return Http(f"http://127.0.0.1:{port}")

    yield start
    for server, task in servers:
        server.should_exit = True
        await task
