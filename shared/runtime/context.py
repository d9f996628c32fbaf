"""What a rule may do besides reading and writing its state: emit events, set timers."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from shared.delivery import Rejected, refusal_headers
from shared.events import Event
from shared.runtime.state import View
from shared.runtime.timers import Timer
from shared.topics import dlq


@dataclass(frozen=True)
class Outgoing:
    """A record to publish once the batch is persisted: an event or a dead letter."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, str], ...] = ()
    event: Event | None = field(default=None, compare=False, repr=False)
    """The event itself when a rule emitted it: a hand-off runs it without parsing `value`."""


class Context:
    """Handed to a rule with its event: `emit`, `schedule`, `cancel`, `reject`, `now`."""

    def __init__(
        self,
        view: View[Any],
        *,
        now: datetime,
        topic: Callable[[str], str],
        consumer: str = "",
    ) -> None:
        self.view = view
        self.now = now
        self._topic = topic
        self._consumer = consumer
        self.emitted: list[Outgoing] = []

    def emit(self, event: Event, *, key: str | None = None) -> None:
        """Publish `event` when the batch is persisted (its id derived from the cause).

        `key`: the record's key instead of the event's own (`partition_key`), e.g. a
        customer id when re-keying through an internal topic.
        """
        topic = self._topic(event.event_type)
        record_key = key.encode() if key is not None else event.partition_key()
        self.emitted.append(Outgoing(topic, record_key, event.to_bytes(), event=event))

    def schedule(
        self, timer_id: str, *, due_at: datetime, kind: str, payload: dict[str, Any] | None = None
    ) -> None:
        """Fire the rule registered for `kind` at `due_at` (same id again: moves the timer)."""
        self.view.put_timer(Timer(timer_id, due_at, kind, payload or {}))

    def cancel(self, timer_id: str) -> None:
        """Forget a pending timer (none pending: nothing changes)."""
        self.view.drop_timer(timer_id)

    def timer(self, timer_id: str) -> Timer | None:
        """The pending timer with this id, or None. Only timers due within the runtime's
        horizon (`LEXCARE_RUNTIME_TIMER_HORIZON_S`) are seen: decide nothing on a None for
        a timer that may be further (cancel it without asking)."""
        return self.view.timer(timer_id)

    @staticmethod
    def reject(reason: str) -> NoReturn:
        """Dead-letter the event with `reason` (invalid for business reasons), at once."""
        raise Rejected(reason)

    def dead_letter(self, event: Event, *, topic: str, reason: str) -> None:
        """Dead-letter `event`, first read from `topic`, when a later hop refuses it.

        For a rule of an internal (re-keying) topic that carries an event from outside: the
        refusal reaches `<topic>.dlq`, where whoever published the event looks, not the
        internal topic's. The record's partition and offset stay with the first hop.
        """
        headers = refusal_headers(
            Rejected(reason), consumer=self._consumer, topic=self._topic(topic)
        )
        self.emitted.append(
            Outgoing(
                dlq(self._topic(topic)),
                event.partition_key(),
                event.to_bytes(),
                tuple(headers.items()),
            )
        )
