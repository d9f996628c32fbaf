"""A test-only service on the stateful runtime: a counter per key, a reminder timer per key.

`toy.added` adds to its key's tally and emits `toy.counted`; `toy.removed` (a second,
co-partitioned input topic) takes away. Each add (re)schedules the key's reminder one hour
after the event; when due it emits `toy.reminded`. An event with `poison` set makes the rule
raise every time.
"""

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.clock import Clock
from shared.events import Event, derived_event_id
from shared.runtime import Context, Runtime, Timer, View
from shared.settings import LexcareSettings

ADDED, REMOVED, COUNTED, REMINDED = "toy.added", "toy.removed", "toy.counted", "toy.reminded"
INPUTS = (ADDED, REMOVED)
OUTPUTS = (COUNTED, REMINDED)
REMIND_AFTER = timedelta(hours=1)


class Added(Event):
    """Add `amount` to the case's tally."""

    event_type: Literal["toy.added"] = Field(default=ADDED)
    case_id: str
    amount: int = 1
    poison: bool = False


class Removed(Event):
    """Take `amount` from the case's tally."""

    event_type: Literal["toy.removed"] = Field(default=REMOVED)
    case_id: str
    amount: int = 1


class Counted(Event):
    """The case's tally after one added or removed event."""

    event_type: Literal["toy.counted"] = Field(default=COUNTED)
    total: int


class Reminded(Event):
    """The case's reminder fired."""

    event_type: Literal["toy.reminded"] = Field(default=REMINDED)
    total: int


class Tally(BaseModel):
    """One key's state."""

    model_config = ConfigDict(frozen=True)

    total: int = 0
    events: int = 0


def on_added(state: View[Tally], event: Added, ctx: Context) -> None:
    """Count the add, announce the total, move the key's reminder."""
    if event.poison:
        raise RuntimeError("poisoned")
    _count(state, event, event.amount, ctx)
    ctx.schedule(
        f"remind/{event.case_id}",
        due_at=event.occurred_at + REMIND_AFTER,
        kind="remind",
        payload={"case_id": event.case_id, "correlation_id": event.correlation_id},
    )


def on_removed(state: View[Tally], event: Removed, ctx: Context) -> None:
    """Count the removal and announce the total."""
    _count(state, event, -event.amount, ctx)


def on_remind(state: View[Tally], timer: Timer, ctx: Context) -> None:
    """Announce the key's total when its reminder is due."""
    case_id = timer.payload["case_id"]
    tally = state.get(case_id) or Tally()
    ctx.emit(
        Reminded(
            event_id=derived_event_id(timer.id, REMINDED, timer.due_at.isoformat()),
            correlation_id=timer.payload["correlation_id"],
            occurred_at=timer.due_at,
            producer="toy",
            case_id=case_id,
            total=tally.total,
        )
    )


def _count(state: View[Tally], event: Event, amount: int, ctx: Context) -> Tally:
    assert event.case_id is not None
    old = state.get(event.case_id) or Tally()
    tally = Tally(total=old.total + amount, events=old.events + 1)
    state.set(event.case_id, tally)
    ctx.emit(Counted.caused_by(event, producer="toy", total=tally.total))
    return tally


def toy_runtime(
    settings: LexcareSettings, db: Any, *, clock: Clock | None = None, **options: Any
) -> Runtime[Tally]:
    """The toy service: its rules registered on a runtime."""
    runtime: Runtime[Tally] = Runtime(settings, db, value_type=Tally, clock=clock, **options)
    runtime.on(ADDED, Added)(on_added)
    runtime.on(REMOVED, Removed)(on_removed)
    runtime.on_timer("remind")(on_remind)
    return runtime
