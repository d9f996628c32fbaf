"""The services over SASL/SCRAM: a real broker that demands SCRAM-SHA-512 credentials.

A single-node Kafka (the jars `make install` caches) is started with a SASL_PLAINTEXT
listener and a SCRAM user created at format time. Intake runs against it with the
LEXCARE_KAFKA_SASL_* settings; a wrong password is refused.
"""

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from services.intake.app import IntakeSettings, create_app
from shared.kafka import admin_client_options, ensure_topics
from tests.infra import LOCAL, free_port

pytestmark = pytest.mark.integration

LIBS = (
    Path(os.environ.get("LEXCARE_CACHE", Path.home() / ".cache" / "lexcare"))
    / f"kafka-{os.environ.get('LEXCARE_KAFKA_VERSION', '4.1.1')}"
    / "libs"
)
USER, PASSWORD = "lexcare", "s3cret-Scram"
JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def server_properties(data: Path, port: int) -> str:
    controller, internal = port + 1, port + 2
    return f"""
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},INTERNAL://127.0.0.1:{internal}
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal}
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={JAAS}
log.dirs={data / "log"}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
"""


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a SCRAM-SHA-512 broker with the user lexcare."""
    if not (LIBS / ".complete").exists() or not shutil.which("java"):
        pytest.skip("Kafka jars or java missing: `make install` fetches them")
    data = tmp_path_factory.mktemp("sasl-kafka")
    port = free_port(span=3)
    config = data / "server.properties"
    config.write_text(server_properties(data, port))
    classpath = f"{LIBS}/*"
    subprocess.run(
        [
            *("java", "-cp", classpath, "kafka.tools.StorageTool", "format", "-c", str(config)),
            *("-t", "Ehmlk7BcTQaONwkUrHwEnw"),
            *("--add-scram", f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]"),
        ],
        check=True,
        capture_output=True,
    )
    with (data / "kafka.log").open("w") as log:
        broker = subprocess.Popen(
            [
                *("java", "-Xmx512M", "-XX:TieredStopAtLevel=1", "-cp", classpath),
                *("kafka.Kafka", str(config)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        waited = subprocess.run(
            [
                "bash",
                "-c",
                f"for i in $(seq 120); do python3 {LOCAL}/wait_kafka.py "
                f"127.0.0.1:{port + 2} && exit 0; sleep 0.5; done; exit 1",
            ],
            check=False,
        )
        assert waited.returncode == 0, (data / "kafka.log").read_text()[-3000:]
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()


def sasl_settings(bootstrap: str, namespace: str, infra, password: str = PASSWORD):
    return IntakeSettings(
        kafka=bootstrap,
        mongo_url=infra.mongo_url,
        topic_prefix=f"{namespace}.",
        mongo_db_prefix=namespace,
        partitions=2,
        log_format="console",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=USER,
        kafka_sasl_password=password,
    )


async def test_intake_classifies_a_contact_over_a_scram_authenticated_broker(
    sasl_broker, namespace, infra, run_app
):
    settings = sasl_settings(sasl_broker, namespace, infra)
    await run_app(create_app(settings))
    options = admin_client_options(settings)
    producer = AIOKafkaProducer(**options, acks="all")
    reader = AIOKafkaConsumer(
        settings.topic("case.classified"), **options, auto_offset_reset="earliest"
    )
    await producer.start()
    await reader.start()
    try:
        event_id = str(uuid.uuid4())
        contact = {
            "event_id": event_id,
            "event_type": "contact.received",
            "occurred_at": "2026-11-23T09:15:00+07:00",
            "producer": "sasl-test",
            "channel": "email",
            "sender_id": "mail:an@example.vn",
            "message": "Xin tư vấn thủ tục ly hôn",
        }
        await producer.send_and_wait(
            settings.topic("contact.received"), orjson.dumps(contact), key=b"mail:an@example.vn"
        )
        record = await asyncio.wait_for(reader.getone(), timeout=60)
        classified = orjson.loads(record.value)
        assert classified["correlation_id"] == event_id
        assert classified["event_type"] == "case.classified"
    finally:
        await reader.stop()
        await producer.stop()


async def test_a_wrong_password_is_refused_by_the_broker(sasl_broker, namespace, infra, caplog):
    settings = sasl_settings(sasl_broker, namespace, infra, password="not-the-password")
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(ensure_topics(settings), timeout=30)
    assert "SaslAuthenticationFailed" in caplog.text
