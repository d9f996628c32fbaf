"""Hands the service-level policy to every partition: at start, and when the file changes.

The clocks live in the case partitions, so a new policy (or calendar) must reach each of
them: the feed sends one `followup.sla_policy` record, without key, to every partition of
the internal topic; each partition's rule re-plans its running clocks when the policy's
fingerprint differs from the one it applied. Every instance may send: the fingerprint makes
a repeat harmless. A file that does not validate is logged and the last good policy stays.
"""

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from services.followup import sla
from services.followup.internal import SlaPolicyRead
from shared import topics
from shared.background import Background
from shared.calendar import CareCalendar
from shared.kafka import admin_client_options
from shared.runtime import Runtime
from shared.runtime.inputs import prepare_inputs

if TYPE_CHECKING:
    from services.followup.app import FollowupSettings

log = structlog.get_logger("lexcare.followup")


class PolicyFeed:
    """Reads the policy file and broadcasts it when its fingerprint changes."""

    def __init__(
        self, settings: "FollowupSettings", runtime: Runtime[Any], *, calendar: CareCalendar
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.calendar = calendar
        self.sent = ""
        self.loop = Background(self._watch, name="sla-policy-feed")

    async def start(self) -> None:
        """Broadcast the file as read now (before the runtime consumes), then watch it."""
        await prepare_inputs(
            self.settings, inputs=set(self.runtime.routes), internal=self.runtime.internal
        )
        await self.check()
        if self.settings.sla_reload_every_s > 0:
            self.loop.start()

    async def stop(self) -> None:
        """Stop watching."""
        await self.loop.stop()

    async def check(self) -> bool:
        """Broadcast the file if it changed since the last broadcast; True when sent."""
        try:
            policy = sla.load_policy(self.settings.sla_policy_path)
        except (OSError, ValueError, ValidationError) as e:
            log.error("sla_policy_invalid", path=str(self.settings.sla_policy_path), error=str(e))
            return False
        digest = sla.fingerprint(policy, self.calendar)
        if digest == self.sent:
            return False
        await self._broadcast(
            SlaPolicyRead(
                event_id=uuid.uuid4(),
                occurred_at=datetime.now(UTC),
                producer=self.settings.service_name,
                policy=policy,
                fingerprint=digest,
            )
        )
        self.sent = digest
        log.info("sla_policy_loaded", fingerprint=digest)
        return True

    async def _broadcast(self, event: SlaPolicyRead) -> None:
        producer = AIOKafkaProducer(**admin_client_options(self.settings), acks="all")
        await producer.start()
        try:
            topic = self.settings.topic(topics.FOLLOWUP_SLA_POLICY)
            partitions = await producer.partitions_for(topic)
            sends = [
                await producer.send(topic, event.to_bytes(), partition=p)
                for p in sorted(partitions)
            ]
            await asyncio.gather(*sends)
        finally:
            await producer.stop()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sla_reload_every_s)
            with contextlib.suppress(OSError):
                await self.check()
