"""The runtime's producer after an error fatal to an idempotent producer: replaced, and the
batch published again (the same ids), instead of failing every later batch."""

from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from shared.runtime import Runtime
from shared.runtime.context import Outgoing
from shared.settings import LexcareSettings
from tests.runtime_harness import NO_DATABASE


class FakeProducer:
    """Records what it sends; fails every send once told to, as a broken producer does."""

    def __init__(self, broken: bool) -> None:
        self.broken = broken
        self.sent: list[bytes] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, **_: Any) -> Any:
        if self.broken:
            raise OutOfOrderSequenceNumber()
        self.sent.append(value)

        async def delivered() -> None:
            return None

        return delivered()


async def test_a_producer_out_of_sequence_is_replaced_and_the_batch_sent_again():
    runtime: Runtime[Any] = Runtime(
        LexcareSettings(retry_backoff_s=0), NO_DATABASE, value_type=dict
    )
    broken, fresh = FakeProducer(broken=True), FakeProducer(broken=False)
    runtime._producer = broken  # type: ignore[assignment]
    runtime._new_producer = lambda: fresh  # type: ignore[method-assign]
    outbox = [Outgoing("t", b"k", b"one"), Outgoing("t", b"k", b"two")]

    await runtime._until_done(runtime._publish, outbox)

    assert fresh.started and broken.stopped
    assert fresh.sent == [b"one", b"two"]
    assert runtime._producer is fresh


async def test_other_publish_errors_are_not_hidden():
    runtime: Runtime[Any] = Runtime(LexcareSettings(), NO_DATABASE, value_type=dict)

    class Failing(FakeProducer):
        async def send(self, topic: str, value: bytes, **_: Any) -> Any:
            raise ValueError("not a broker failure")

    runtime._producer = Failing(broken=False)  # type: ignore[assignment]
    with pytest.raises(ValueError):
        await runtime._publish([Outgoing("t", b"k", b"one")])
