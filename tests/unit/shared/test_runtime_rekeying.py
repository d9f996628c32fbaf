"""Re-keying rules of the toy service, pure: a contact passes on keyed by its customer, and
the customer's partition opens one case for two contacts."""

import uuid
from datetime import UTC, datetime

import orjson

from shared.runtime import Context, View
from shared.runtime.state import PartitionState
from tests.toy_service import (
    FILED,
    OPENED,
    RESOLVED,
    Contact,
    Customer,
    Resolved,
    on_contact,
    on_resolved,
)

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def contact(sender: str, customer: str) -> Contact:
    return Contact(
        event_id=uuid.uuid4(),
        occurred_at=T0,
        producer="test",
        sender_id=sender,
        customer_id=customer,
    )


def run(rule, view: View, event) -> Context:
    ctx = Context(view, now=T0, topic=lambda name: f"t.{name}")
    rule(view, event, ctx)
    return ctx


def test_a_contact_is_passed_on_to_the_internal_topic_keyed_by_its_customer():
    ctx = run(on_contact, View(PartitionState(0)), contact("sender-a", "customer-1"))
    [out] = ctx.emitted
    assert (out.topic, out.key) == (f"t.{RESOLVED}", b"customer-1")
    assert orjson.loads(out.value)["customer_id"] == "customer-1"


def test_two_contacts_of_one_customer_open_one_case_and_are_both_filed_on_it():
    state: PartitionState = PartitionState(0)
    view = View(state)
    emitted = []
    for sender in ("sender-a", "sender-b"):
        [resolved] = run(on_contact, View(PartitionState(1)), contact(sender, "cus")).emitted
        emitted += run(on_resolved, view, Resolved.model_validate_json(resolved.value)).emitted
    events = [orjson.loads(out.value) for out in emitted]
    opened = [e for e in events if e["event_type"] == OPENED]
    filed = [e for e in events if e["event_type"] == FILED]
    assert len(opened) == 1 and len(filed) == 2
    assert {e["case_id"] for e in filed} == {opened[0]["case_id"]}
    assert view.get("customer/cus") == Customer(case_id=opened[0]["case_id"], contacts=2)
