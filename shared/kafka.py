"""Kafka plumbing: the broker every service uses, topic creation, subscriber defaults."""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared import topics
from shared.delivery import DeliveryGuard
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.kafka")

KEEP_FOREVER: Final = {"retention.ms": "-1", "retention.bytes": "-1"}
"""Topic configuration of a replayed topic: the broker never deletes its history."""


def _ssl_context(settings: LexcareSettings) -> ssl.SSLContext | None:
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile:
        # An empty keyfile (compose passes "" for unset) means the key is in the certfile.
        context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile or None)
    return context


def broker_security(settings: LexcareSettings) -> BaseSecurity | None:
    """FastStream security object for the configured protocol (None for PLAINTEXT)."""
    context = _ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        sasl = {
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
            "PLAIN": SASLPlaintext,
        }[settings.kafka_sasl_mechanism]
        return sasl(
            username=settings.kafka_sasl_username or "",
            password=settings.kafka_sasl_password or "",
            ssl_context=context,
            use_ssl=context is not None,
        )
    if context is not None:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None


def admin_client_options(settings: LexcareSettings) -> dict[str, Any]:
    """Connection options for a plain aiokafka client (admin, tools) matching the broker's."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka}
    if settings.kafka_security_protocol != "PLAINTEXT":
        options["security_protocol"] = settings.kafka_security_protocol
        options["ssl_context"] = _ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    return options


@contextlib.asynccontextmanager
async def admin_client(settings: LexcareSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client for the configured broker, closed on exit."""
    admin = AIOKafkaAdminClient(**admin_client_options(settings))
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_missing_topics(admin: AIOKafkaAdminClient, wanted: list[NewTopic]) -> set[str]:
    """Create the topics of `wanted` the broker lacks; return the names it already had."""
    existing = set(await admin.list_topics())
    missing = [topic for topic in wanted if topic.name not in existing]
    if missing:  # another process may create the same topics at the same moment
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(missing)
    return existing


def make_broker(settings: LexcareSettings, logger: Any, guard: DeliveryGuard) -> KafkaBroker:
    """The service's broker: durable producer, at-least-once consumption, DLQ guard."""
    broker = KafkaBroker(
        settings.kafka,
        client_id=f"lexcare-{settings.service_name}",
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.linger_ms,
        allow_auto_create_topics=False,
        graceful_timeout=settings.graceful_timeout_s,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        middlewares=[guard],
        security=broker_security(settings),
        logger=logger,
        # FastStream's per-message "Received"/"Processed" lines stay at debug level.
        log_level=10,
        description=f"lexcare {settings.service_name} service",
    )
    guard.bind(broker)
    return broker


class LexcareRouter(KafkaRouter):
    """A KafkaRouter whose subscribers each get a consumer group of their own.

    FastStream runs one consumer per subscriber. Sharing one group among a service's
    subscribers makes every joining subscriber rebalance all the others (seconds of stall
    at start and on every restart); one group per topic keeps them independent and still
    lets replicas of the service share each topic's partitions.
    """

    def subscriber(self, *topics: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Register a subscriber; its group is `<service group>.<topic>`."""
        group = kwargs.get("group_id")
        if group and len(topics) == 1 and isinstance(topics[0], str):
            kwargs["group_id"] = f"{group}.{topics[0]}"
        return super().subscriber(*topics, **kwargs)


def make_router(settings: LexcareSettings) -> KafkaRouter:
    """A router whose subscribers and publishers live under the environment's topic prefix."""
    return LexcareRouter(prefix=settings.topic_prefix)


def subscriber_options(settings: LexcareSettings) -> dict[str, Any]:
    """Keyword arguments every subscriber uses: group, start at the earliest, manual commits."""
    return {
        "group_id": settings.consumer_group,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "max_poll_interval_ms": 300_000,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
    }


def topic_configs(name: str) -> dict[str, str]:
    """Topic-level configuration lexcare creates topic `name` (unprefixed) with."""
    if name in topics.COMPACTED_TOPICS:
        return {"cleanup.policy": "compact"}
    if name in topics.REPLAYED_TOPICS:
        return dict(KEEP_FOREVER)
    return {}  # dead letters: the broker's default retention


def _served(described: list[dict[str, Any]]) -> bool:
    """True when every described topic exists and each of its partitions has a leader."""
    return all(
        not t["error_code"] and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
        for t in described
    )


async def await_served(
    admin: AIOKafkaAdminClient, names: list[str], *, timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Wait until the broker serves every topic of `names` (each partition led); describe them.

    A topic created a moment ago is not served yet: a producer sending to it logs errors
    and retries, a consumer subscribing to it waits for its next metadata refresh (minutes).
    Raises TimeoutError past `timeout_s`.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not _served(described := await admin.describe_topics(names)):
        if asyncio.get_running_loop().time() > deadline:
            unserved = sorted(t["topic"] for t in described if not _served([t]))
            raise TimeoutError(f"topics not served by the broker: {unserved or names}")
        await asyncio.sleep(0.1)
    return described


async def ensure_topics(settings: LexcareSettings) -> list[str]:
    """Create every missing lexcare topic; return the replayed ones whose history is trimmed.

    Existing topics are never altered: their retention is the operators' (who may archive
    elsewhere, and whose services may lack the AlterConfigs right); a replayed topic with a
    finite retention is logged as a warning with the command that keeps its history.
    """
    async with admin_client(settings) as admin:
        existing = await create_missing_topics(
            admin,
            [
                NewTopic(
                    settings.topic(name),
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication_factor,
                    topic_configs=topic_configs(name),
                )
                for name in topics.ALL_TOPICS
            ],
        )
        try:  # the services start right after: no error from a topic not led yet
            await await_served(admin, [settings.topic(name) for name in topics.ALL_TOPICS])
        except TimeoutError as error:
            log.warning("topics_not_served_yet", error=str(error))
        replayed = [settings.topic(t) for t in topics.REPLAYED_TOPICS]
        return await _warn_about_trimmed(admin, [t for t in replayed if t in existing])


async def _warn_about_trimmed(admin: AIOKafkaAdminClient, names: list[str]) -> list[str]:
    """Log a warning for each topic of `names` whose retention is finite; return them."""
    if not names:
        return []
    wanted = dict.fromkeys(KEEP_FOREVER)
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, wanted) for name in names]
        )
    except KafkaError as error:
        log.warning("topic_retention_unchecked", error=repr(error))
        return []
    trimmed = []
    for resource in (r for response in responses for r in response.to_object()["resources"]):
        if resource["error_code"]:
            log.warning("topic_retention_unchecked", topic=resource["resource_name"])
            continue
        configs = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
        if all(configs.get(k) == v for k, v in KEEP_FOREVER.items()):
            continue
        topic = resource["resource_name"]
        trimmed.append(topic)
        log.warning(
            "topic_retention_finite",
            topic=topic,
            retention_ms=configs.get("retention.ms"),
            retention_bytes=configs.get("retention.bytes"),
            consequence="events older than the retention are deleted; replay cannot rebuild",
            fix=(
                f"kafka-configs.sh --bootstrap-server <broker> --alter --entity-type topics "
                f"--entity-name {topic} --add-config retention.ms=-1,retention.bytes=-1"
            ),
        )
    return sorted(trimmed)


async def await_group_coordinators(
    settings: LexcareSettings, groups: Iterable[str], *, timeout_s: float = 60.0
) -> None:
    """Wait until the broker names a coordinator for each consumer group.

    A fresh broker creates its offsets topic and elects the coordinators at the first
    request; aiokafka's consumer logs every refusal meanwhile at ERROR. Asking first, here,
    keeps a healthy start quiet. Past `timeout_s` the consumers start anyway and report.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with admin_client(settings) as admin:
        for group in sorted(set(groups)):
            if not await _coordinator_named(admin, group, deadline):
                return


async def _coordinator_named(admin: AIOKafkaAdminClient, group: str, deadline: float) -> bool:
    """True once the broker names `group`'s coordinator; False on a lasting or fatal refusal."""
    while True:
        try:
            await admin.find_coordinator(group)
            return True
        except KafkaError as err:
            if not err.retriable or asyncio.get_running_loop().time() > deadline:
                log.warning("group_coordinator_not_available", group=group, error=str(err))
                return False
        await asyncio.sleep(0.1)
