"""A background task that dies is reported at once, not only when it is stopped."""

import asyncio

import pytest
from structlog.testing import capture_logs

from shared.background import Background


async def test_a_background_task_that_raises_is_logged_when_it_dies() -> None:
    async def broken() -> None:
        raise RuntimeError("the loop broke")

    background = Background(broken, name="broken-loop")
    with capture_logs() as logs:
        background.start()
        for _ in range(10):
            await asyncio.sleep(0)
    died = [e for e in logs if e["event"] == "background_task_died"]
    assert [(e["task"], e["log_level"]) for e in died] == [("broken-loop", "error")]
    assert isinstance(died[0]["exc_info"], RuntimeError)
    with pytest.raises(RuntimeError):
        await background.stop()


async def test_a_background_task_stopped_or_finished_is_not_reported() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    async def done() -> None:
        return None

    with capture_logs() as logs:
        finished = Background(done, name="done")
        finished.start()
        stopped = Background(forever, name="forever")
        stopped.start()
        await asyncio.sleep(0)
        await stopped.stop()
        await finished.stop()
    # Other tests' tasks share the event loop and may log meanwhile: only ours count.
    assert [e for e in logs if e["event"] == "background_task_died"] == []
