"""Followup's timers over real Kafka and FerretDB: scheduled before a SIGKILL, each fires once
after the restart; two instances fire each timer once."""

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from pymongo import AsyncMongoClient

from services.followup.app import FollowupSettings, create_app
from shared.clock import FakeClock
from tests.conftest import eventually
from tests.infra import free_port
from tests.kafka_tools import RawKafka
from tests.runtime_state import stored_state
from tests.unit.followup.builders import classified, vn, wire

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def start_followup(settings: FollowupSettings, *, offset_s: float, log: Path) -> subprocess.Popen:
    """`python -m services.followup` as its own process, pointed at the test namespace."""
    env = {
        **os.environ,
        "LEXCARE_KAFKA": settings.kafka,
        "LEXCARE_MONGO_URL": settings.mongo_url,
        "LEXCARE_TOPIC_PREFIX": settings.topic_prefix,
        "LEXCARE_MONGO_DB_PREFIX": settings.mongo_db_prefix,
        "LEXCARE_PARTITIONS": str(settings.partitions),
        "LEXCARE_HTTP_PORT": str(free_port()),
        "LEXCARE_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        "LEXCARE_FOLLOWUP_CLOCK_OFFSET_S": str(offset_s),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.followup"], cwd=ROOT, env=env, stdout=out, stderr=out
        )


def first_contacts(records) -> dict[str, set[str]]:
    """Case id → the request ids of its first contacts."""
    by_case: dict[str, set[str]] = {}
    for record in records:
        event = orjson.loads(record.value)
        if event["kind"] == "first_contact":
            by_case.setdefault(event["case_id"], set()).add(event["request_id"])
    return by_case


async def test_timers_scheduled_before_a_sigkill_fire_once_after_the_restart(
    infra, settings_for, tmp_path
):
    settings = settings_for(FollowupSettings)
    # The process lives on Monday 30 Nov 2026, a few seconds before the window opens: it
    # schedules the first contacts, is killed, and they come due at 09:00 after its restart.
    offset = (vn(2026, 11, 30, 8, 59, 40) - datetime.now(UTC)).total_seconds()
    cases = [f"case-k{i:02d}" for i in range(60)]
    log = tmp_path / "followup.log"
    first = start_followup(settings, offset_s=offset, log=log)
    second = None
    client = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    db = client[settings.mongo_db]
    try:
        async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
            for case_id in cases:
                event = classified(case_id, vn(2026, 11, 30, 8, 59))
                await kafka.send("case.classified", wire(event), key=case_id)
            await eventually(
                lambda: _stored_first_contacts(db, settings.partitions, len(cases)), timeout=60
            )
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            pending = (await stored_state(db, settings.partitions)).pending("first_contact:")
            assert pending, "every timer fired before the kill: nothing left to prove"

            second = start_followup(settings, offset_s=offset, log=log)
            records = await kafka.read(
                "care.contact.requested",
                until=lambda r: len(first_contacts(r)) == len(cases),
                timeout=60,
            )
            records = await kafka.settle("care.contact.requested", quiet=2.0)
            by_case = first_contacts(records)
            assert set(by_case) == set(cases)
            # Each timer fired once: one request id per case, each published once.
            assert all(len(ids) == 1 for ids in by_case.values())
            published = Counter(orjson.loads(r.value)["request_id"] for r in records)
            assert set(published.values()) == {1}
            after = await stored_state(db, settings.partitions)
            assert after.pending("first_contact:") == {}
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        await client.drop_database(settings.mongo_db)
        await client.close()


async def test_two_instances_fire_each_timer_once(infra, settings_for, run_app):
    settings = settings_for(FollowupSettings)
    clock = FakeClock(vn(2026, 11, 29, 12, 0))  # Sunday: nothing is due yet
    await run_app(create_app(settings, clock=clock))
    await run_app(create_app(settings, clock=clock))
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    db = client[settings.mongo_db]
    cases = [f"case-d{i:02d}" for i in range(40)]
    try:
        async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
            for case_id in cases:
                event = classified(case_id, vn(2026, 11, 29, 12, 0))
                await kafka.send("case.classified", wire(event), key=case_id)
            await eventually(
                lambda: _stored_first_contacts(db, settings.partitions, len(cases)), timeout=60
            )

            clock.set(vn(2026, 11, 30, 9, 0))  # Monday: all 40 due at once for both loops
            await kafka.read("care.contact.requested", until=lambda r: len(r) >= len(cases))
            records = await kafka.settle("care.contact.requested", quiet=2.0)
            request_ids = Counter(orjson.loads(r.value)["request_id"] for r in records)
            assert len(request_ids) == len(cases)
            assert set(request_ids.values()) == {1}
            # Each timer fired in the partition that owns its case, and only there.
            after = await stored_state(db, settings.partitions)
            assert after.pending("first_contact:") == {}
    finally:
        await client.drop_database(settings.mongo_db)
        await client.close()


async def _stored_first_contacts(db, partitions: int, expected: int) -> bool:
    """True once `expected` first-contact timers are stored pending."""
    return len((await stored_state(db, partitions)).pending("first_contact:")) == expected
