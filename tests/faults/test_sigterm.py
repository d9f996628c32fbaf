"""SIGTERM while a batch is in flight: it finishes and is committed, or it is cut short,
left uncommitted and taken up after the restart; never committed unfinished.

The in-flight moment is made with the `runtime_slow_publish` fault point: intake's runtime
has stored the batch holding the contact and sleeps before publishing what its rules
emitted (the contact's `case.classified`: the hops through intake's own internal topics
ran in the same cycle and are not published)."""

import signal
import uuid

import pytest
from pymongo import AsyncMongoClient

from shared.runtime.storage import ChangeStore
from tests.conftest import eventually
from tests.faults.tools import PARTITIONS, ServiceProcess, committed, consumer_group
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.faults


def contact() -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "contact.received",
        "occurred_at": "2026-11-23T09:15:00+07:00",
        "producer": "website-adapter",
        "channel": "website",
        "sender_id": "web:sigterm-1",
        "message": "Công ty nợ lương ba tháng, tôi muốn khởi kiện",
    }


async def _stored(infra, namespace: str) -> bool:
    """True once the runtime stored the batch holding the contact."""
    mongo = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    try:
        store = ChangeStore(mongo[f"{namespace}_intake"], "state")
        restored = [await store.restore(p) for p in range(PARTITIONS)]
        return any(r.checkpoint.get(f"{namespace}.contact.received") for r in restored)
    finally:
        await mongo.close()


async def _committed_offset(infra, group: str, topic: str) -> int:
    offsets = await committed(infra.kafka, group)
    return sum(offset for tp, offset in offsets.items() if tp.topic == topic)


@pytest.mark.parametrize(
    ("grace_s", "delay_s", "finishes"),
    [(20, 3, True), (1, 30, False)],
    ids=["in-flight-finishes", "in-flight-cut-short"],
)
async def test_sigterm_during_a_handler_never_commits_it_unfinished(
    infra, namespace, tmp_path, grace_s, delay_s, finishes
):
    intake = ServiceProcess(
        "intake",
        kafka=infra.kafka,
        mongo_url=infra.mongo_url,
        namespace=namespace,
        log=tmp_path / "intake.log",
        env={"LEXCARE_GRACEFUL_TIMEOUT_S": str(grace_s)},
    )
    prefix = f"{namespace}."
    group = consumer_group(prefix, "intake", "contact.received")
    topic = f"{prefix}contact.received"
    event = contact()
    try:
        intake.start(
            LEXCARE_FAULT_INJECTION="runtime_slow_publish:intake",
            LEXCARE_FAULT_DELAY_S=str(delay_s),
        )
        await intake.wait_ready()
        async with RawKafka(infra.kafka, prefix) as kafka:
            await kafka.send("contact.received", event, key=event["sender_id"])
            await eventually(lambda: _stored(infra, namespace), timeout=60)
            intake.signal(signal.SIGTERM)  # the batch is between its persist and its publish
            code = await intake.wait_exit(timeout=grace_s + 30)

            published = await kafka.settle("case.classified", quiet=1.0)
            done = await _committed_offset(infra, group, topic)
            if finishes:
                # uvicorn re-raises the SIGTERM once the shutdown completed.
                assert code in (0, -signal.SIGTERM), intake.tail()
                assert "shut down gracefully" in intake.tail(20_000)
                assert len(published) == 1 and done == 1, intake.tail()
            else:
                assert published == [] and done == 0, "an unfinished handler was committed"

            intake.start()  # restarted without the slowness
            await intake.wait_ready()
            [classified] = await kafka.distinct("case.classified", count=1, timeout=60)
            await eventually(lambda: _committed_offset(infra, group, topic), timeout=60)
            records = await kafka.settle("case.classified", quiet=1.0)
    finally:
        await intake.terminate()
    assert classified["contact_id"] == event["event_id"]
    assert len(records) == 1, "handled exactly once across the stop"
