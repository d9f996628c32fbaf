"""At-least-once delivery with bounded retries and dead letters (SPEC §8).

Every message passes through `DeliveryGuard`:
- it binds event_id, case_id and correlation_id to the log context;
- a message that cannot be parsed, or that a handler rejects with `Rejected`, goes to
  `<topic>.dlq` at once with the original bytes, the error and the consumer's name;
- a handler failure caused by the infrastructure (database or broker unreachable) is
  retried without limit: the message is nacked (seeked back) and nothing is committed;
- any other failure is retried `max_attempts` times, then dead-lettered, so a poison
  message neither loops forever nor blocks its partition.
FastStream's NACK_ON_ERROR policy commits the offset only when the handler returned.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import orjson
import structlog
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from pydantic import ValidationError
from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

from shared import faults, observability, topics
from shared.settings import LexcareSettings

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    AutoReconnect,
    ServerSelectionTimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    ConnectionError,
    TimeoutError,
)
"""Failures of the infrastructure, not of the message: retried until they pass."""

log = structlog.get_logger("lexcare.delivery")


class Rejected(Exception):
    """Raised by a handler for a message that is invalid for business reasons: DLQ at once."""


def describe_error(error: BaseException, body: bytes | None = None) -> str:
    """A one-line, human-readable reason for a dead letter."""
    if body is not None and isinstance(error, ValidationError):
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            return f"not valid JSON: {e}"
        if not isinstance(decoded, dict):
            return f"not a JSON object: got {type(decoded).__name__}"
    if isinstance(error, ValidationError):
        # Raised for a handler signature, the location starts with the parameter name.
        skip = 1 if error.title[:1].islower() else 0
        problems = [
            f"{'.'.join(str(p) for p in e['loc'][skip:]) or '<root>'}: {e['msg']}"
            for e in error.errors()[:10]
        ]
        return "invalid event: " + "; ".join(problems)
    if isinstance(error, orjson.JSONDecodeError | UnicodeDecodeError):
        return f"not valid JSON: {error}"
    return f"{type(error).__name__}: {error}"


def dead_letter_headers(record: Any, error: BaseException, *, consumer: str) -> dict[str, str]:
    """The headers a dead letter carries: why, who gave up, and where the record was."""
    return {
        **refusal_headers(error, consumer=consumer, topic=record.topic, body=record.value),
        "x-original-partition": str(record.partition),
        "x-original-offset": str(record.offset),
    }


def refusal_headers(
    error: BaseException, *, consumer: str, topic: str, body: bytes | None = None
) -> dict[str, str]:
    """Why, who gave up, and the topic the refused message came from (without its place:
    a later hop that refuses an event it carries does not know it)."""
    return {
        "x-error": describe_error(error, body)[:4000],
        "x-error-type": type(error).__name__,
        "x-consumer": consumer,
        "x-original-topic": topic,
    }


ENVELOPE_IDS = ("event_id", "case_id", "correlation_id")
"""Envelope fields bound to every log line of a message's handling."""


def _envelope_ids(body: bytes) -> dict[str, str]:
    try:
        data = orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: str(data[k]) for k in ENVELOPE_IDS if data.get(k)}


class DeliveryGuard:
    """Middleware factory holding retry counters and the dead-letter publisher."""

    def __init__(self, settings: LexcareSettings) -> None:
        self.settings = settings
        self.consumer = settings.consumer_group
        self.attempts: OrderedDict[tuple[str, int, int], int] = OrderedDict()
        self.broker: KafkaBroker | None = None

    def bind(self, broker: KafkaBroker) -> None:
        """Attach the broker dead letters are published with."""
        self.broker = broker

    def __call__(self, msg: Any, /, *, context: Any) -> "_GuardScope":
        return _GuardScope(msg, context=context, guard=self)

    def count_failure(self, where: tuple[str, int, int]) -> int:
        """Count one more failed try of the record at `where`; return the total."""
        tries = self.attempts.pop(where, 0) + 1
        self.attempts[where] = tries
        while len(self.attempts) > 10_000:
            self.attempts.popitem(last=False)
        return tries

    def backoff(self, tries: int) -> float:
        """Seconds to wait before the record is tried again."""
        return min(self.settings.retry_backoff_s * 2 ** (tries - 1), 5.0)

    async def dead_letter(self, record: Any, error: BaseException) -> None:
        """Publish the original bytes to `<topic>.dlq` with the reason in headers."""
        assert self.broker is not None, "DeliveryGuard.bind(broker) was not called"
        headers = dead_letter_headers(record, error, consumer=self.consumer)
        reason = headers["x-error"]
        await self.broker.publish(
            record.value or b"",
            topic=topics.dlq(record.topic),
            key=record.key,
            headers=headers,
        )
        observability.DEAD_LETTERS.labels(record.topic).inc()
        log.warning("dead_lettered", topic=record.topic, offset=record.offset, reason=reason)

    def unprefixed(self, topic: str) -> str:
        """`topic` without the environment's prefix (the name fault points use)."""
        return topic.removeprefix(self.settings.topic_prefix)

    async def handle(
        self,
        record: Any,
        call: Callable[[], Awaitable[Any]],
        *,
        retry_in_place: bool,
        ids: dict[str, str] | None = None,
    ) -> Any:
        """Run `call` for one record under the delivery rules; return its result.

        Bad input and `Rejected` are dead-lettered; an infrastructure failure is raised
        (the caller's message is nacked and redelivered); any other failure is retried up
        to `max_attempts` times, then dead-lettered. Retries happen in place when
        `retry_in_place` (a batch keeps its other records), else by raising (redelivery).
        `ids` (event_id, case_id, correlation_id for the log) are read from the record's
        bytes unless the caller parsed the event already.
        """
        where = (record.topic, record.partition, record.offset)
        ids = _envelope_ids(record.value or b"") if ids is None else ids
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(topic=record.topic, **ids):
            while True:
                try:
                    result = await call()
                except (
                    ValidationError,
                    orjson.JSONDecodeError,
                    UnicodeDecodeError,
                    Rejected,
                ) as e:
                    await self.dead_letter(record, e)
                    return None
                except TRANSIENT_ERRORS as e:
                    observability.FAILED.labels(record.topic).inc()
                    log.warning("infrastructure_unavailable_retrying", error=describe_error(e))
                    await asyncio.sleep(self.backoff(3))
                    raise
                except Exception as e:
                    observability.FAILED.labels(record.topic).inc()
                    tries = self.count_failure(where)
                    if tries >= self.settings.max_attempts:
                        log.exception("handler_failed_giving_up", tries=tries)
                        await self.dead_letter(record, e)
                        return None
                    log.warning("handler_failed_retrying", tries=tries, error=describe_error(e))
                    await asyncio.sleep(self.backoff(tries))
                    if retry_in_place:
                        continue
                    raise
                faults.crash_at("after_handle", self.unprefixed(record.topic))
                observability.HANDLED.labels(record.topic).inc()
                observability.LATENCY.labels(record.topic).observe(time.perf_counter() - started)
                self.attempts.pop(where, None)
                return result


class _GuardScope(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: Any, guard: DeliveryGuard) -> None:
        super().__init__(msg, context=context)
        self.guard = guard

    async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
        if faults.POINTS:
            topic = self.guard.unprefixed(str(getattr(cmd, "destination", "")))
            await faults.delay_at("slow_publish", topic)
            faults.crash_at("before_publish", topic)
        return await call_next(cmd)

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        record = msg.raw_message
        if isinstance(record, tuple | list):
            # A batch: the batch handler guards each record itself (shared.batching).
            token = CURRENT_GUARD.set(self.guard)
            try:
                return await call_next(msg)
            finally:
                CURRENT_GUARD.reset(token)
        return await self.guard.handle(record, lambda: call_next(msg), retry_in_place=False)


CURRENT_GUARD: ContextVar[DeliveryGuard | None] = ContextVar("lexcare_guard", default=None)
"""The guard of the batch being consumed, for the batch handler's per-record guarding."""
