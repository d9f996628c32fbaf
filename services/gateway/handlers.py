"""The gateway's outbound handlers: deliver each request on its channel, report each try."""

import asyncio
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import structlog
from prometheus_client import Counter

from services.gateway.outbound import Request, backoff_s, delivery_for, request_id_of
from services.gateway.senders import DeliveryFailed, Senders
from shared import topics
from shared.batching import BatchSubscriber
from shared.clock import Clock
from shared.delivery import Rejected
from shared.events import (
    CareContactRequested,
    Channel,
    DeliveryAttempted,
    DeliveryOutcome,
    SurveyReminded,
    SurveyRequested,
)

log = structlog.get_logger("lexcare.gateway")
PRODUCER = "gateway"

DELIVERIES = Counter(
    "lexcare_gateway_deliveries_total",
    "Outbound delivery tries by channel and outcome (sent, queued, failed, dead_lettered).",
    ["channel", "outcome"],
)

Report = Callable[[DeliveryAttempted], Awaitable[None]]


class Undeliverable(Rejected):
    """A request whose last try failed: dead-lettered with the reason."""


@dataclass
class RetryPolicy:
    """How often and how patiently a delivery is tried."""

    attempts: int
    base_s: float
    cap_s: float
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass
class Deliverer:
    """Delivers requests; remembers the ids it delivered to drop a redelivered request."""

    senders: Senders
    report: Report
    retry: RetryPolicy
    clock: Clock
    zone: ZoneInfo
    done: OrderedDict[str, None] = field(default_factory=OrderedDict)

    async def deliver(self, request: Request) -> None:
        """Send `request` on its channel with retries; dead-letter it after the last."""
        request_key = str(request.event_id)
        if request_key in self.done:
            return
        delivery = delivery_for(request, self.zone)
        if delivery.channel == Channel.PHONE:  # the dialer reads the request's own topic
            await self._report(request, delivery.channel, 1, DeliveryOutcome.QUEUED)
            return self._remember(request_key)
        for attempt in range(1, self.retry.attempts + 1):
            try:
                await self.senders.send(delivery)
            except DeliveryFailed as failure:
                if attempt == self.retry.attempts or not failure.retryable:
                    await self._report(
                        request,
                        delivery.channel,
                        attempt,
                        DeliveryOutcome.DEAD_LETTERED,
                        failure.reason,
                    )
                    raise Undeliverable(f"{failure.reason} (try {attempt})") from failure
                await self._report(
                    request, delivery.channel, attempt, DeliveryOutcome.FAILED, failure.reason
                )
                await self.retry.sleep(
                    backoff_s(
                        attempt,
                        base_s=self.retry.base_s,
                        cap_s=self.retry.cap_s,
                        rng=self.retry.rng,
                    )
                )
                continue
            await self._report(request, delivery.channel, attempt, DeliveryOutcome.SENT)
            return self._remember(request_key)

    def _remember(self, request_key: str) -> None:
        self.done[request_key] = None
        while len(self.done) > 10_000:
            self.done.popitem(last=False)

    async def _report(
        self,
        request: Request,
        channel: Channel,
        attempt: int,
        outcome: DeliveryOutcome,
        reason: str | None = None,
    ) -> None:
        DELIVERIES.labels(channel.value, outcome.value).inc()
        log.info(
            "delivery_attempted",
            request_type=request.event_type,
            channel=channel.value,
            attempt=attempt,
            outcome=outcome.value,
            reason=reason,
        )
        await self.report(
            DeliveryAttempted.caused_by(
                request,
                producer=PRODUCER,
                occurred_at=self.clock.now(),
                discriminator=str(attempt),
                request_event_id=str(request.event_id),
                request_type=request.event_type,
                request_id=request_id_of(request),
                channel=channel,
                attempt=attempt,
                outcome=outcome,
                reason=reason,
            )
        )


def subscribe_outbound(subscribe: BatchSubscriber, deliverer: Deliverer) -> None:
    """Register the delivery of care contacts, surveys and reminders."""

    @subscribe(topics.CARE_CONTACT_REQUESTED)
    async def on_care_contact_requested(event: CareContactRequested) -> None:
        await deliverer.deliver(event)

    @subscribe(topics.SURVEY_REQUESTED)
    async def on_survey_requested(event: SurveyRequested) -> None:
        await deliverer.deliver(event)

    @subscribe(topics.SURVEY_REMINDED)
    async def on_survey_reminded(event: SurveyReminded) -> None:
        await deliverer.deliver(event)
