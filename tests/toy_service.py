"""A test-only service on the stateful runtime: a counter per key, a reminder timer per key,
and one case per customer through an internal re-keying topic.

`toy.added` adds to its key's tally and emits `toy.counted`; `toy.removed` (a second,
co-partitioned input topic) takes away. Each add (re)schedules the key's reminder one hour
after the event; when due it emits `toy.reminded`. An event with `poison` set makes the rule
raise every time.

Re-keying: `toy.contact` is keyed by sender; its rule resolves the sender's customer (from
the payload) and emits `toy.contact.resolved`, an internal topic keyed by customer; that
topic's rule keeps a case per customer: the first contact opens it (`toy.case.opened`),
every contact is filed on it (`toy.contact.filed`).

Run as a process like a service: `python -m tests.toy_service` (LEXCARE_* settings).
"""

from datetime import timedelta
from typing import Annotated, Any, Literal

from aiokafka.admin import NewTopic
from faststream.asgi import AsgiFastStream
from pydantic import BaseModel, ConfigDict, Field

from shared.clock import Clock
from shared.events import Event, derived_event_id
from shared.kafka import admin_client, create_missing_topics
from shared.runtime import Context, Runtime, Timer, View
from shared.service import build_app, plumbing, serve
from shared.settings import LexcareSettings
from shared.topics import dlq

ADDED, REMOVED, COUNTED, REMINDED = "toy.added", "toy.removed", "toy.counted", "toy.reminded"
CONTACT, RESOLVED = "toy.contact", "toy.contact.resolved"
OPENED, FILED = "toy.case.opened", "toy.contact.filed"
INPUTS = (ADDED, REMOVED, CONTACT)
OUTPUTS = (COUNTED, REMINDED, OPENED, FILED)
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


class Contact(Event):
    """A message from a channel's sender, keyed by sender; names the sender's customer."""

    event_type: Literal["toy.contact"] = Field(default=CONTACT)
    sender_id: str
    customer_id: str


class Resolved(Event):
    """Internal: a contact whose customer is known, keyed by customer."""

    event_type: Literal["toy.contact.resolved"] = Field(default=RESOLVED)
    customer_id: str
    contact_id: str


class CaseOpened(Event):
    """The customer's case was opened (once per customer)."""

    event_type: Literal["toy.case.opened"] = Field(default=OPENED)
    customer_id: str


class ContactFiled(Event):
    """A contact was filed on its customer's case (once per contact)."""

    event_type: Literal["toy.contact.filed"] = Field(default=FILED)
    customer_id: str
    contact_id: str


class Tally(BaseModel):
    """One counter key's state."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["tally"] = "tally"
    total: int = 0
    events: int = 0


class Customer(BaseModel):
    """One customer's state: the open case and how many contacts are filed on it."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["customer"] = "customer"
    case_id: str
    contacts: int = 0


Value = Annotated[Tally | Customer, Field(discriminator="kind")]


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


def on_contact(state: View[Value], event: Contact, ctx: Context) -> None:
    """Resolve the sender's customer; pass the contact on, keyed by customer."""
    resolved = Resolved.caused_by(
        event, producer="toy", customer_id=event.customer_id, contact_id=str(event.event_id)
    )
    ctx.emit(resolved, key=event.customer_id)


def on_resolved(state: View[Value], event: Resolved, ctx: Context) -> None:
    """File the contact on the customer's case, opening the case at the first contact."""
    key = f"customer/{event.customer_id}"
    customer = state.get(key)
    if not isinstance(customer, Customer):
        customer = Customer(case_id=f"case-{event.contact_id}")
        ctx.emit(
            CaseOpened.caused_by(
                event, producer="toy", case_id=customer.case_id, customer_id=event.customer_id
            )
        )
    state.set(key, customer.model_copy(update={"contacts": customer.contacts + 1}))
    ctx.emit(
        ContactFiled.caused_by(
            event,
            producer="toy",
            case_id=customer.case_id,
            customer_id=event.customer_id,
            contact_id=event.contact_id,
        )
    )


def toy_runtime(
    settings: LexcareSettings, db: Any, *, clock: Clock | None = None, **options: Any
) -> Runtime[Any]:
    """The toy service: its rules registered on a runtime."""
    runtime: Runtime[Any] = Runtime(settings, db, value_type=Value, clock=clock, **options)
    runtime.on(ADDED, Added)(on_added)
    runtime.on(REMOVED, Removed)(on_removed)
    runtime.on(CONTACT, Contact)(on_contact)
    runtime.on(RESOLVED, Resolved, internal=True)(on_resolved)
    runtime.on_timer("remind")(on_remind)
    return runtime


class ToySettings(LexcareSettings):
    """The toy service's settings (env prefix LEXCARE_)."""

    service_name: str = "toy"
    http_port: int = 8099


async def create_topics(settings: LexcareSettings) -> None:
    """Create the toy's input and output topics (and its inputs' dead letters) if missing."""
    names = [*INPUTS, *OUTPUTS, *(dlq(t) for t in INPUTS)]
    async with admin_client(settings) as admin:
        await create_missing_topics(
            admin,
            [
                NewTopic(settings.topic(n), settings.partitions, settings.replication_factor)
                for n in names
            ],
        )


def counted_id(added: dict[str, Any]) -> str:
    """The id of the `toy.counted` event an added event (as sent) gives."""
    return str(derived_event_id(added["event_id"], COUNTED, ""))


def create_app(settings: ToySettings) -> AsgiFastStream:
    """The toy service as an app: health endpoints, its topics, the runtime started/stopped."""
    parts = plumbing(settings)
    runtime = toy_runtime(settings, parts.db)
    return build_app(
        parts,
        on_startup=[lambda: create_topics(settings), runtime.start],
        on_shutdown=[runtime.stop],
    )


if __name__ == "__main__":
    toy_settings = ToySettings()
    serve(create_app(toy_settings), toy_settings)
