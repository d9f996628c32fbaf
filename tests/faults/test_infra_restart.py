"""Kafka, or the database, stopped for 20 seconds mid-stream and started again: the five
services reconnect by themselves and the end state is the same as without the outage (one
case per contact, no duplicate requests, KPIs equal to the input's, nothing dead-lettered).

The stopped server is a private one (deploy/local/kafka.sh or ferretdb.sh), so stopping it
does not disturb other tests; the other one is the session's."""

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.faults.test_crash_under_stream import (
    Story,
    assert_one_outcome_per_contact,
    end_state,
    react,
)
from tests.faults.tools import pipeline
from tests.infra import LOCAL, free_port
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.faults

CONTACTS = int(os.environ.get("LEXCARE_FAULTS_RESTART_CONTACTS", "40"))
OUTAGE_S = float(os.environ.get("LEXCARE_FAULTS_OUTAGE_S", "20"))


def local(script: str, *args: str) -> None:
    """Run a deploy/local script (start or stop a private server)."""
    subprocess.run(["bash", str(LOCAL / script), *args], check=True, capture_output=True)


@pytest.fixture(params=["kafka", "database"])
def private_server(request):
    """A broker or a database of this test's own, stopped and purged at the end."""
    cache = Path(os.environ.get("LEXCARE_CACHE", Path.home() / ".cache/lexcare"))
    if not shutil.which("java") or not cache.exists():
        pytest.skip("the local Kafka and FerretDB (deploy/local) are not available")
    script = "kafka.sh" if request.param == "kafka" else "ferretdb.sh"
    data = Path(tempfile.mkdtemp(prefix=f"lexcare-{request.param}-restart-")) / "server"
    port = free_port(span=2)
    local(script, "start", str(data), str(port))
    try:
        yield request.param, script, data, port
    finally:
        purge = ["--purge"] if script == "ferretdb.sh" else []
        subprocess.run(["bash", str(LOCAL / script), "stop", str(data), *purge], check=False)
        shutil.rmtree(data.parent, ignore_errors=True)


@pytest.mark.timeout(900)  # a deadline for slow shared machines, not a timing check
async def test_a_server_stopped_for_20s_mid_stream_changes_nothing_in_the_end(
    infra, namespace, tmp_path, private_server
):
    kind, script, data, port = private_server
    bootstrap = f"127.0.0.1:{port}" if kind == "kafka" else infra.kafka
    mongo_url = f"mongodb://127.0.0.1:{port}/" if kind == "database" else infra.mongo_url
    prefix = f"{namespace}."
    story = Story(CONTACTS)
    services = pipeline(kafka=bootstrap, mongo_url=mongo_url, namespace=namespace, logs=tmp_path)
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
            await asyncio.to_thread(local, script, "stop", str(data))
            await asyncio.sleep(OUTAGE_S)  # the outage itself
            await asyncio.to_thread(local, script, "start", str(data), str(port))
            for contact in story.contacts[half:]:
                await kafka.send("contact.received", contact, key=contact["sender_id"])
                await asyncio.sleep(0.02)
            end = await end_state(
                kafka, story, stop, reactor, services["metrics"].port, timeout=240
            )
    finally:
        stop.set()
        for service in services.values():
            await service.terminate()

    assert_one_outcome_per_contact(end, story)
    assert all(s.starts == 1 for s in services.values()), "no service was restarted by hand"
