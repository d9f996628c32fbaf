"""Followup's timers over real Kafka and FerretDB: none lost to SIGKILL, none fired twice."""

import asyncio
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
        "LEXCARE_TIMER_INTERVAL_S": "0.1",
        "LEXCARE_TIMER_LEASE_S": "2",
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


async def test_a_followup_killed_while_timers_are_due_loses_none(infra, settings_for, tmp_path):
    settings = settings_for(FollowupSettings)
    # The process lives on Monday 30 Nov 2026, a few seconds before the window opens: it
    # schedules the first contacts, then they all come due at 09:00 while it runs.
    offset = (vn(2026, 11, 30, 8, 59, 40) - datetime.now(UTC)).total_seconds()
    cases = [f"case-k{i:02d}" for i in range(60)]
    log = tmp_path / "followup.log"
    first = start_followup(settings, offset_s=offset, log=log)
    second = None
    client = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    try:
        async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
            for case_id in cases:
                event = classified(case_id, vn(2026, 11, 30, 8, 59))
                await kafka.send("case.classified", wire(event), key=case_id)
            timers = client[settings.mongo_db]["timers"]
            scheduled = {"kind": "first_contact"}
            await eventually(
                lambda: _count_is(timers.count_documents(scheduled), len(cases)), timeout=60
            )
            # 09:00 in the process: the first contact goes out, and the process dies.
            await kafka.read("care.contact.requested", until=lambda r: len(r) >= 1, timeout=60)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            fired_before_kill = set(first_contacts(kafka.seen["care.contact.requested"]))
            assert len(fired_before_kill) < len(cases), "killed too late to prove anything"
            unfired = {"kind": "first_contact", "state": {"$in": ["pending", "leased"]}}
            assert await timers.count_documents(unfired) > 0, "nothing due was left unfired"

            second = start_followup(settings, offset_s=offset, log=log)
            records = await kafka.read(
                "care.contact.requested",
                until=lambda r: len(first_contacts(r)) == len(cases),
                timeout=60,
            )
            by_case = first_contacts(records)
            assert set(by_case) == set(cases)
            # A timer fired again after the crash repeats its request id: consumers dedupe.
            assert all(len(ids) == 1 for ids in by_case.values())
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
    settings = settings_for(FollowupSettings, timer_interval_s=0.02)
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
            query = {"kind": "first_contact", "state": "pending"}
            await eventually(
                lambda: _count_is(db["timers"].count_documents(query), len(cases)), timeout=60
            )

            clock.set(vn(2026, 11, 30, 9, 0))  # Monday: all 40 due at once for both loops
            await kafka.read("care.contact.requested", until=lambda r: len(r) >= len(cases))
            records = await kafka.settle("care.contact.requested", quiet=2.0)
            request_ids = Counter(orjson.loads(r.value)["request_id"] for r in records)
            assert len(request_ids) == len(cases)
            assert set(request_ids.values()) == {1}
            # Each timer was claimed once: no instance took one another had leased.
            claims = await db["timers_claims"].distinct("_id")
            assert sorted(claims) == sorted(f"first_contact:{case_id}#1" for case_id in cases)
    finally:
        await client.drop_database(settings.mongo_db)
        await client.close()


async def _count_is(count: "asyncio.Future[int]", expected: int) -> bool:
    return await count == expected
