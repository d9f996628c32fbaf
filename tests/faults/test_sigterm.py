"""SIGTERM while a handler is in flight: the message finishes and is committed, or it is
cut short, left uncommitted and redelivered after the restart; never committed unfinished.

The in-flight moment is made with the `slow_publish` fault point: intake's handler has
stored the contact and sleeps before publishing case.classified."""

import signal
import uuid

import pytest
from pymongo import AsyncMongoClient

from tests.conftest import eventually
from tests.faults.tools import ServiceProcess, committed
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


async def _stored(infra, namespace: str, contact_id: str) -> bool:
    mongo = AsyncMongoClient(infra.mongo_url)
    try:
        found = await mongo[f"{namespace}_intake"]["contacts"].find_one({"_id": contact_id})
        return found is not None
    finally:
        await mongo.close()


async def _committed_offset(infra, group: str) -> int:
    return sum((await committed(infra.kafka, group)).values())


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
    group = f"lexcare-{prefix}intake.contact.received"
    event = contact()
    try:
        intake.start(
            LEXCARE_FAULT_INJECTION="slow_publish:case.classified",
            LEXCARE_FAULT_DELAY_S=str(delay_s),
        )
        await intake.wait_ready()
        async with RawKafka(infra.kafka, prefix) as kafka:
            await kafka.send("contact.received", event, key=event["sender_id"])
            await eventually(lambda: _stored(infra, namespace, event["event_id"]), timeout=60)
            intake.signal(signal.SIGTERM)  # the handler is between its write and its publish
            code = await intake.wait_exit(timeout=grace_s + 30)

            published = await kafka.settle("case.classified", quiet=1.0)
            done = await _committed_offset(infra, group)
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
            await eventually(lambda: _committed_offset(infra, group), timeout=60)
            records = await kafka.settle("case.classified", quiet=1.0)
    finally:
        await intake.terminate()
    assert classified["contact_id"] == event["event_id"]
    assert len(records) == 1, "handled exactly once across the stop"
