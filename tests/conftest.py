"""Fixtures every test tier shares."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.infra import Infra, provide_infra
from tests.kafka_tools import delete_topics


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """The session's real broker and database (external, containers or local processes)."""
    with provide_infra() as running:
        yield running


@pytest.fixture
async def namespace(infra: Infra) -> AsyncIterator[str]:
    """A unique topic and database prefix for one test; its topics are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    await delete_topics(infra.kafka, prefix=f"{prefix}.")


@pytest.fixture
def settings_for(infra: Infra, namespace: str) -> Callable[..., Any]:
    """Build a service's settings pointed at the test infra and the test's namespace."""

    def build(settings_class: type, **overrides: Any) -> Any:
        return settings_class(
            kafka=infra.kafka,
            mongo_url=infra.mongo_url,
            topic_prefix=f"{namespace}.",
            mongo_db_prefix=namespace,
            partitions=overrides.pop("partitions", 2),
            retry_backoff_s=overrides.pop("retry_backoff_s", 0.05),
            log_format="console",
            **overrides,
        )

    return build


async def eventually(
    probe: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1
) -> Any:
    """Poll `probe` (sync or async) until it returns a truthy value; fail at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)


class RunningApp:
    """A FastStream app running in-process in a task of its own, until stopped."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with self.app.start_lifespan_context():
            self._ready.set()
            await self._stop.wait()

    async def started(self) -> "RunningApp":
        """Wait until the app's broker is consuming (or raise what stopped it)."""
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            ready.cancel()
            self._task.result()
            raise RuntimeError("app stopped during start-up")
        # The lifespan yields before the broker is connected: an app stopped in between
        # (no subscriber to wait for, e.g. a service on shared.runtime) leaks its producer.
        await eventually(lambda: self.app.broker.running or self._task.done(), interval=0.01)
        return self

    def consuming(self) -> bool:
        """True once every subscriber of the app's broker has partitions assigned."""
        consumers = [getattr(s, "consumer", None) for s in self.app.broker.subscribers]
        return all(c is not None and c.assignment() for c in consumers)

    async def stop(self) -> None:
        """Shut the app down gracefully, as SIGTERM would."""
        self._stop.set()
        await self._task


@pytest.fixture
async def run_app() -> AsyncIterator[Callable[[Any], Any]]:
    """Start FastStream apps in-process (lifespan included); stop them at the end."""
    running: list[RunningApp] = []

    async def start(app: Any) -> RunningApp:
        runner = RunningApp(app)
        running.append(runner)
        return await runner.started()

    yield start
    for runner in reversed(running):
        await runner.stop()
