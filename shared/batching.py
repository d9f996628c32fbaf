"""Batch consumption: one poll, its records handled concurrently by key, one commit.

A service's handler stays a function of one event (`async def on_x(event: X)`); this
module subscribes it in batches of up to `batch_max_records` records per poll:

- every record is parsed and handled under the delivery rules (`DeliveryGuard.handle`,
  retried in place; bad input and rejections dead-lettered alone, the rest go on);
- records with the same key (a case, a survey, a customer) are handled one after another
  in log order; different keys concurrently, at most `batch_concurrency` at once;
- the batch runs inside the service's batch scope, which stores what the batch's
  handlers left for the end: the processed-events ledger's marks, written once per batch
  (`ProcessedEvents.batch`), or metrics' one checkpoint (`Checkpointer.batch`);
- the offsets are committed only when every record of the batch is handled and the scope
  has stored its effects; an infrastructure failure rewinds the whole batch, whose
  handlers then replay idempotently (the ledger, derived event ids).
"""

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, get_type_hints

from faststream.kafka import KafkaMessage, KafkaRouter
from pydantic import ValidationError

from shared.delivery import CURRENT_GUARD, ENVELOPE_IDS
from shared.events import Event
from shared.kafka import subscriber_options
from shared.settings import LexcareSettings

Handler = Callable[[Any], Awaitable[None]]
BatchScope = Callable[[], AbstractAsyncContextManager[Any]]
"""Entered around each batch's handlers; its exit stores what they left (ledger marks)."""


def event_model(handler: Handler) -> type[Event]:
    """The event class a one-event handler takes (its first parameter's annotation)."""
    hints = {k: v for k, v in get_type_hints(handler).items() if k != "return"}
    model = next(iter(hints.values()), None)
    if not (isinstance(model, type) and issubclass(model, Event)):
        raise TypeError(f"{handler.__name__}: its first parameter must be annotated with an Event")
    return model


def parse(model: type[Event], record: Any) -> Event | Exception:
    """The record's event, or the parse error to dead-letter it with."""
    try:
        return model.model_validate_json(record.value or b"")
    except (ValidationError, ValueError) as e:
        return e


async def _no_decoding(message: Any) -> list[Any]:
    """Records are parsed one by one by the batch handler, so one bad record fails alone."""
    return []


class BatchSubscriber:
    """Subscribes one-event handlers of a service in batches (see the module docstring)."""

    def __init__(self, router: KafkaRouter, settings: LexcareSettings, scope: BatchScope) -> None:
        self.router = router
        self.scope = scope
        self.concurrency = settings.batch_concurrency
        self.options = {
            **subscriber_options(settings),
            "batch": True,
            "max_records": settings.batch_max_records,
            "batch_timeout_ms": settings.batch_timeout_ms,
            "decoder": _no_decoding,
        }

    def __call__(self, topic: str, **options: Any) -> Callable[[Handler], Handler]:
        """Decorator: subscribe `handler(event)` to `topic`, consumed in batches."""

        def register(handler: Handler) -> Handler:
            model = event_model(handler)

            # The annotation documents the payload (AsyncAPI); records are parsed below.
            async def on_batch(
                events: list[model],  # type: ignore[valid-type]
                message: KafkaMessage,  # FastStream's annotation: the consumed batch
            ) -> None:
                await self.handle(model, handler, message.raw_message)

            on_batch.__name__ = handler.__name__
            on_batch.__qualname__ = handler.__qualname__
            on_batch.__doc__ = handler.__doc__
            self.router.subscriber(topic, **{**self.options, **options})(on_batch)
            return handler

        return register

    async def handle(self, model: type[Event], handler: Handler, records: tuple[Any, ...]) -> None:
        """Handle one batch: parse, run its keys concurrently, close the batch's scope."""
        guard = CURRENT_GUARD.get()
        assert guard is not None, "batches are consumed under the DeliveryGuard middleware"
        parsed = [(record, parse(model, record)) for record in records]
        by_key: dict[tuple[int, bytes | None], list[tuple[Any, Event | Exception]]] = {}
        for record, event in parsed:
            by_key.setdefault((record.partition, record.key), []).append((record, event))
        gate = asyncio.Semaphore(self.concurrency)

        async def run_key(items: list[tuple[Any, Event | Exception]]) -> None:
            async with gate:
                for record, event in items:
                    await guard.handle(
                        record, _call(handler, event), retry_in_place=True, ids=_log_ids(event)
                    )

        async with self.scope():
            results = await asyncio.gather(
                *(run_key(items) for items in by_key.values()), return_exceptions=True
            )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:  # the batch is nacked: rewound and redelivered as a whole
            raise failures[0]


def _log_ids(event: Event | Exception) -> dict[str, str] | None:
    """The parsed event's envelope ids for the log (None: the guard reads the bytes)."""
    if isinstance(event, Exception):
        return None
    return {k: str(v) for k in ENVELOPE_IDS if (v := getattr(event, k, None))}


def _call(handler: Handler, event: Event | Exception) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        if isinstance(event, Exception):
            raise event
        await handler(event)

    return call
