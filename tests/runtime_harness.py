"""A service's runtime rules in memory, for unit tests: no broker, no database, no clock.

`RuleHarness` routes what the rules emit as Kafka would: a record for one of the runtime's
own topics (an input or an internal re-keying topic) goes to the rule of that topic on the
partition its key hashes to (aiokafka's default partitioner), anything else is an output
the test reads. Values pass through the runtime's codec on every write, so state that would
not survive storage fails here. `advance` moves the fake clock and fires the due timers.
`interleave` delivers several events breadth first: each hop of one waits for the hops of
the others queued before it, as simultaneous events on different partitions would run.
"""

from collections import defaultdict, deque
from datetime import timedelta
from typing import Any

import orjson
from aiokafka.partitioner import DefaultPartitioner

from shared.clock import FakeClock
from shared.delivery import Rejected, describe_error
from shared.events import Event
from shared.runtime import Context, Outgoing, Runtime, View
from shared.runtime.state import DELETED, PartitionState
from shared.runtime.timers import Timer
from shared.topics import dlq

NO_DATABASE: Any = defaultdict(lambda: None)
"""What a runtime under the harness gets as its database: the harness never stores."""


class RuleHarness:
    """Feed events to a runtime's rules over `partitions` in-memory partitions."""

    def __init__(self, runtime: Runtime[Any], clock: FakeClock, *, partitions: int = 3) -> None:
        self.runtime = runtime
        self.clock = clock
        self.partitioner = DefaultPartitioner()
        self.states = [PartitionState[Any](p, scanned=runtime.scanned) for p in range(partitions)]
        self.out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        """Published records by unprefixed topic, as JSON, in order."""
        self.reasons: dict[str, str] = {}
        """Dead-lettered event id → its x-error header."""
        self.handled: set[tuple[str, str]] = set()
        self._queue: deque[Outgoing] | None = None

    def partition_of(self, key: bytes) -> int:
        """The partition a record with `key` goes to."""
        return self.partitioner(key, list(range(len(self.states))), list(range(len(self.states))))

    def send(self, *events: Event, key: str | None = None) -> None:
        """Deliver `events` on their topics (keyed as their producer keys them)."""
        for event in events:
            record_key = key.encode() if key is not None else event.partition_key()
            self._deliver(Outgoing(self._topic(event.event_type), record_key, event.to_bytes()))

    def interleave(self, *events: Event) -> None:
        """Deliver `events` and what their rules emit in turns, first in first out."""
        queue = self._queue = deque(
            Outgoing(self._topic(e.event_type), e.partition_key(), e.to_bytes()) for e in events
        )
        try:
            while queue:
                self._deliver(queue.popleft())
        finally:
            self._queue = None

    def send_raw(self, topic: str, body: dict[str, Any], *, key: str = "") -> None:
        """Deliver a JSON body as it is on `topic` (unprefixed), valid or not."""
        self._deliver(Outgoing(self._topic(topic), key.encode(), orjson.dumps(body)))

    def advance(self, delta: timedelta) -> None:
        """Move the clock by `delta` and fire every timer due by then, soonest first."""
        self.clock.advance(delta)
        while due := self._due():
            partition, timer = due
            state = self.states[partition]
            del state.timers[timer.id]
            rule = self.runtime.timer_rules.get(timer.kind)
            if rule is not None:
                self._run(state, lambda view, ctx, t=timer, r=rule: r(view, t, ctx))

    def value(self, key: str) -> Any:
        """The value of `key` in whichever partition holds it."""
        found = [s.values[key] for s in self.states if key in s.values]
        return found[0] if found else None

    def keys(self, prefix: str) -> list[str]:
        """The keys starting with `prefix`, in every partition, in order."""
        return sorted(key for s in self.states for key in s.values if key.startswith(prefix))

    def timers(self) -> list[Timer]:
        """Every pending timer, soonest first."""
        return sorted((t for s in self.states for t in s.timers.values()), key=lambda t: t.due_at)

    def _topic(self, name: str) -> str:
        return self.runtime.settings.topic(name)

    def _unprefixed(self, topic: str) -> str:
        return topic.removeprefix(self.runtime.settings.topic_prefix)

    def _due(self) -> tuple[int, Timer] | None:
        pending = [
            (t.due_at, p, t)
            for p, s in enumerate(self.states)
            for t in s.timers.values()
            if t.due_at <= self.clock.now()
        ]
        if not pending:
            return None
        _, partition, timer = min(pending, key=lambda item: (item[0], item[2].id))
        return partition, timer

    def _deliver(self, record: Outgoing) -> None:
        route = self.runtime.routes.get(record.topic)
        if route is None:
            self._publish(record)
            return
        state = self.states[self.partition_of(record.key or b"")]
        try:
            event = route.model.model_validate_json(record.value)
        except ValueError as e:
            self._publish(self._dead_letter(record, e))
            return
        if (record.topic, str(event.event_id)) in self.handled:
            return  # the runtime's ledger drops a redelivery
        self.handled.add((record.topic, str(event.event_id)))
        error = self._run(state, lambda view, ctx: route.rule(view, event, ctx))
        if error is not None:
            self._publish(self._dead_letter(record, error))

    def _run(self, state: PartitionState[Any], rule: Any) -> BaseException | None:
        view: View[Any] = View(state)
        ctx = Context(
            view,
            now=self.clock.now(),
            topic=self._topic,
            consumer=self.runtime.settings.consumer_group,
        )
        try:
            rule(view, ctx)
        except Rejected as e:
            return e
        codec = self.runtime.codec
        for key, value in view.writes.items():
            stored = (
                value
                if value is DELETED
                else codec.validate_python(codec.dump_python(value, mode="json"))
            )
            state.put(key, stored)
        for timer_id, timer in view.timer_writes.items():
            if timer is DELETED:
                state.timers.pop(timer_id, None)
            else:
                state.timers[timer_id] = timer
        for out in ctx.emitted:
            if self._queue is not None and out.topic in self.runtime.routes:
                self._queue.append(out)
            else:
                self._deliver(out)
        return None

    def _dead_letter(self, record: Outgoing, error: BaseException) -> Outgoing:
        headers = (("x-error", describe_error(error, record.value)),)
        return Outgoing(dlq(record.topic), record.key, record.value, headers)

    def _publish(self, record: Outgoing) -> None:
        body = orjson.loads(record.value)
        self.out[self._unprefixed(record.topic)].append(body)
        reason = dict(record.headers).get("x-error")
        if reason is not None:
            self.reasons[str(body.get("event_id"))] = reason
