"""Kafka stopped for 20 seconds mid-stream and started again: the five services reconnect
by themselves and the end state is the same as without the outage (one case per contact,
no duplicate requests, KPIs equal to the input's, nothing dead-lettered).

Runs on a private broker of its own (deploy/local/kafka.sh), so that stopping it does
not disturb other tests; the database is the session's."""

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import orjson
import pytest

from shared import topics
from tests.conftest import eventually
from tests.faults.test_crash_under_stream import SERVICES, Story, by_id, mismatches, react
from tests.faults.tools import ServiceProcess
from tests.infra import LOCAL, free_port
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.faults

CONTACTS = int(os.environ.get("LEXCARE_FAULTS_RESTART_CONTACTS", "40"))
OUTAGE_S = float(os.environ.get("LEXCARE_FAULTS_OUTAGE_S", "20"))


def kafka_sh(*args: str) -> None:
    subprocess.run(["bash", str(LOCAL / "kafka.sh"), *args], check=True, capture_output=True)


@pytest.fixture
def private_kafka():
    """A broker of this test's own, stopped and purged at the end."""
    if not shutil.which("java") or not (
        Path(os.environ.get("LEXCARE_CACHE", Path.home() / ".cache/lexcare")).exists()
    ):
        pytest.skip("the local Kafka (java and its cached jars) is not available")
    data = Path(tempfile.mkdtemp(prefix="lexcare-kafka-restart-"))
    port = free_port(span=2)
    kafka_sh("start", str(data / "kafka"), str(port))
    try:
        yield data / "kafka", f"127.0.0.1:{port}", port
    finally:
        subprocess.run(["bash", str(LOCAL / "kafka.sh"), "stop", str(data / "kafka")], check=False)
        shutil.rmtree(data, ignore_errors=True)


async def test_a_broker_stopped_for_20s_mid_stream_changes_nothing_in_the_end(
    infra, namespace, tmp_path, private_kafka
):
    data, bootstrap, port = private_kafka
    prefix = f"{namespace}."
    story = Story(CONTACTS)
    services = {
        name: ServiceProcess(
            name,
            kafka=bootstrap,
            mongo_url=infra.mongo_url,
            namespace=namespace,
            log=tmp_path / f"{name}.log",
            env={"LEXCARE_PUBLISH_INTERVAL_S": "0.5", "LEXCARE_SURVEY_FATIGUE_DAYS": "0"},
        )
        for name in SERVICES
    }
    stop = asyncio.Event()
    broker = type("Infra", (), {"kafka": bootstrap})()
    try:
        for service in services.values():
            service.start()
        await asyncio.gather(*(s.wait_ready(timeout=90) for s in services.values()))
        async with RawKafka(bootstrap, prefix) as kafka:
            reactor = asyncio.create_task(react(broker, prefix, kafka, story, stop))
            half = CONTACTS // 2
            for contact in story.contacts[:half]:
                await kafka.send("contact.received", contact, key=contact["sender_id"])
                await asyncio.sleep(0.02)
            await asyncio.to_thread(kafka_sh, "stop", str(data))
            await asyncio.sleep(OUTAGE_S)  # the outage itself
            await asyncio.to_thread(kafka_sh, "start", str(data), str(port))
            for contact in story.contacts[half:]:
                await kafka.send("contact.received", contact, key=contact["sender_id"])
                await asyncio.sleep(0.02)
            scored = await kafka.distinct("survey.scored", count=CONTACTS, timeout=240)
            metrics_port = services["metrics"].port
            expected = story.expected()
            await eventually(lambda: not mismatches(metrics_port, expected), timeout=90, interval=1)
            kpi_wrong = mismatches(metrics_port, expected)
            stop.set()
            await reactor
            classified = await kafka.settle("case.classified", quiet=1.0)
            requested = await kafka.settle("survey.requested", quiet=0.5)
            dead = {t: len(await kafka.settle(f"{t}.dlq", quiet=0.2)) for t in topics.EVENT_TOPICS}
    finally:
        stop.set()
        for service in services.values():
            await service.terminate()

    per_contact = by_id(classified, "contact_id")
    assert set(per_contact) == set(story.index)
    assert all(len(ids) == 1 for ids in per_contact.values())
    assert all(len(ids) == 1 for ids in by_id(requested, "survey_id").values())
    assert len({orjson.loads(r.value)["case_id"] for r in classified}) == CONTACTS
    assert len({s["case_id"] for s in scored}) == CONTACTS
    assert sum(dead.values()) == 0, f"dead letters: { {t: n for t, n in dead.items() if n} }"
    assert kpi_wrong == {}
    assert all(s.starts == 1 for s in services.values()), "no service was restarted by hand"
