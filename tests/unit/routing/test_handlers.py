"""Routing's rules in memory (no broker, no database): what they publish and keep, with the
inputs' partitions and the roster's one partition apart as Kafka would put them."""

from pathlib import Path

import yaml

from services.routing import domain
from services.routing.app import RoutingSettings, roster_file_step, workload
from services.routing.handlers import routing_runtime
from services.routing.state import (
    QUEUE_KEY,
    ROSTER_KEY,
    WAIT_PREFIX,
    Queue,
    case_key,
    contract_key,
    entry_case,
    waiting_entry,
)
from shared import topics
from shared.clock import FakeClock
from shared.events import RosterPerson
from tests.runtime_harness import NO_DATABASE, RuleHarness
from tests.unit.routing.factories import (
    T0,
    classified,
    contract,
    person,
    resolved,
    roster_updated,
)


class Harness(RuleHarness):
    """Routing's runtime rules over three in-memory partitions, its roster file read."""

    def __init__(self, *people: RosterPerson, queue_batch: int = 200) -> None:
        settings = RoutingSettings()
        fees = domain.parse_fee_schedule(yaml.safe_load(Path(settings.fees_file).read_text()))
        runtime = routing_runtime(settings, NO_DATABASE, fees=fees, queue_batch=queue_batch)
        super().__init__(runtime, FakeClock(T0))
        if people:
            self.send(roster_file_step(list(people)), key=ROSTER_KEY)

    def deliver(self, topic: str, *events: dict, key: str | None = None) -> None:
        """Deliver producer-shaped events on `topic`, keyed by their case (or `key`)."""
        for event in events:
            self.send_raw(topic, event, key=key or event.get("case_id", ""))

    @property
    def assigned(self) -> list[dict]:
        return self.out[topics.CASE_ASSIGNED]

    @property
    def quoted(self) -> list[dict]:
        return self.out[topics.FEE_QUOTED]

    def outcomes(self) -> list[tuple[str, str | None, str]]:
        return [(e["case_id"], e["assignee_id"], e["reason"]) for e in self.assigned]

    def waiting(self) -> list[str]:
        """The waiting cases, in the order the queue serves them."""
        return [entry_case(key.removeprefix(WAIT_PREFIX)) for key in self.keys(WAIT_PREFIX)]

    def holder(self, case_id: str) -> str | None:
        """Who holds a slot for the case, per the roster (and the case's record agrees)."""
        roster = self.value(ROSTER_KEY)
        holders = [p for p, slots in roster.held.items() if case_id in slots.values()]
        assert len(holders) <= 1
        record = self.value(case_key(case_id))
        assert (record.assignee_id if record.slot is not None else None) == (
            holders[0] if holders else None
        )
        return holders[0] if holders else None

    def held(self) -> int:
        return sum(len(slots) for slots in self.value(ROSTER_KEY).held.values())


def test_a_new_case_is_quoted_and_given_to_the_best_expert():
    h = Harness(person("law-1", years_experience=4), person("law-2", years_experience=9))
    sent = classified("c-1", is_dispute=True)
    h.deliver(topics.CASE_CLASSIFIED, sent)
    assert h.outcomes() == [("c-1", "law-2", "assigned")]
    assert h.assigned[0]["assignee_role"] == "lawyer"
    assert h.assigned[0]["correlation_id"] == sent["event_id"]
    [quote] = h.quoted
    assert quote["recommended_method"] == "office"
    assert quote["dispute_surcharge_vnd"] == 2_000_000
    assert h.holder("c-1") == "law-2"


def test_every_decision_is_made_in_the_one_partition_of_the_roster():
    h = Harness(person("law-1", capacity=9))
    for n in range(12):
        h.deliver(topics.CASE_CLASSIFIED, classified(f"c-{n}"))
    owners = {p for p, s in enumerate(h.states) if any(k.startswith("case/") for k in s.values)}
    assert owners == {h.partition_of(ROSTER_KEY.encode())}
    assert len({h.partition_of(f"c-{n}".encode()) for n in range(12)}) > 1  # inputs spread


def test_the_same_event_twice_assigns_and_quotes_once():
    h = Harness(person("law-1", capacity=5))
    sent = classified("c-1")
    h.deliver(topics.CASE_CLASSIFIED, sent, sent)
    assert len(h.assigned) == 1
    assert len(h.quoted) == 1
    assert h.held() == 1


def test_a_new_case_seen_again_under_another_event_id_is_not_routed_twice():
    h = Harness(person("law-1", capacity=5))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1"), classified("c-1"))
    assert h.outcomes() == [("c-1", "law-1", "assigned")]
    assert h.held() == 1


def test_a_contact_attached_to_a_known_case_keeps_its_assignee():
    h = Harness(person("law-1", capacity=5), person("law-2", capacity=5))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1"))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1", new_case=False, is_complaint=True))
    assert h.outcomes() == [("c-1", "law-1", "assigned")]
    assert len(h.quoted) == 1
    assert h.value(case_key("c-1")).case.is_complaint is True


def test_the_queue_serves_complaints_first_then_the_oldest_and_skips_a_full_field():
    h = Harness(person("law-1", capacity=1), person("law-fam", legal_fields=["family"], capacity=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-0"), classified("c-f0", "family"))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-old", minute=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-fam", "family", minute=2))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-new", minute=3))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-new", minute=3, is_complaint=True))
    assert h.waiting() == ["c-new", "c-old", "c-fam"]
    h.deliver(topics.CASE_RESOLVED, resolved("c-0"))  # a land slot frees: the complaint
    assert h.outcomes()[-1] == ("c-new", "law-1", "assigned")
    h.deliver(topics.CASE_RESOLVED, resolved("c-f0"))  # land is full: family's turn
    assert h.outcomes()[-1] == ("c-fam", "law-fam", "assigned")
    assert h.waiting() == ["c-old"]


def test_the_workload_gauges_count_each_persons_open_cases_and_the_waiting_ones():
    h = Harness(person("law-1", capacity=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-0"), classified("c-1", minute=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-fam", "family", minute=2))
    assert workload(v for s in h.states for v in s.values.values()) == ({"law-1": 1}, 2)


def test_a_queue_stored_as_one_value_moves_to_keys_and_is_served_in_its_order():
    h = Harness(person("law-1", capacity=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-0"), classified("c-1", minute=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-2", minute=2))
    [desk] = [s for s in h.states if ROSTER_KEY in s.values]
    entries = []
    for case_id in ("c-1", "c-2"):  # as a session-7 routing stored them
        record = desk.values[case_key(case_id)]
        entries.append(waiting_entry(record.routed()))
        del desk.values[f"{WAIT_PREFIX}{record.queued}"]
        desk.values[case_key(case_id)] = record.model_copy(update={"queued": None})
    desk.put(QUEUE_KEY, Queue(entries=tuple(entries)))
    desk.index[WAIT_PREFIX].clear()
    assert h.waiting() == []
    h.deliver(topics.CASE_RESOLVED, resolved("c-0"))
    assert h.outcomes()[-1] == ("c-1", "law-1", "assigned")
    assert h.waiting() == ["c-2"] and h.value(QUEUE_KEY) is None
    h.deliver(topics.CASE_RESOLVED, resolved("c-1"))
    assert h.outcomes()[-1] == ("c-2", "law-1", "assigned") and h.waiting() == []


def test_the_queue_spends_its_tries_only_on_fields_someone_has_room_in():
    h = Harness(
        person("law-1", capacity=1),
        person("law-fam", legal_fields=["family"], capacity=1),
        queue_batch=1,
    )
    h.deliver(topics.CASE_CLASSIFIED, classified("c-0"), classified("c-f0", "family"))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-f1", "family", minute=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-f2", "family", minute=2))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-land", minute=3))
    assert h.waiting() == ["c-f1", "c-f2", "c-land"]
    h.deliver(topics.CASE_RESOLVED, resolved("c-0"))  # a land slot frees behind family's
    assert h.outcomes()[-1] == ("c-land", "law-1", "assigned")
    assert h.waiting() == ["c-f1", "c-f2"]


def test_nobody_fitting_is_published_and_the_case_waits_for_a_freed_slot():
    h = Harness(person("law-1", capacity=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1"))
    waiting = classified("c-2", minute=1)
    h.deliver(topics.CASE_CLASSIFIED, waiting, classified("c-fam", "family"))
    assert h.outcomes() == [
        ("c-1", "law-1", "assigned"),
        ("c-2", None, "no_capacity"),
        ("c-fam", None, "no_expert"),
    ]
    assert h.waiting() == ["c-fam", "c-2"]  # served order: c-fam is older
    h.deliver(topics.CONTRACT_SIGNED, contract("c-1"))
    h.deliver(topics.CASE_RESOLVED, resolved("c-1"))
    assert h.outcomes()[3:] == [("c-2", "law-1", "assigned")]
    assert h.assigned[3]["correlation_id"] == waiting["event_id"]  # c-2's story, not c-1's
    assert h.holder("c-2") == "law-1"
    assert h.holder("c-1") is None
    assert h.value(case_key("c-fam")).state == "waiting"
    assert h.waiting() == ["c-fam"]
    assert h.value(contract_key("HD-c-1")).case_id == "c-1"


def test_a_waiting_complaint_jumps_the_queue():
    h = Harness(person("law-1", capacity=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-busy"), classified("c-old", minute=1))
    angry = classified("c-angry", minute=2, kind="complaint", is_complaint=True)
    h.deliver(topics.CASE_CLASSIFIED, angry)
    h.deliver(topics.CASE_RESOLVED, resolved("c-busy"))
    assert h.outcomes()[3:] == [("c-angry", "law-1", "assigned")]


def test_a_resolved_case_is_not_assigned_when_its_classification_comes_late():
    h = Harness(person("law-1"))
    h.deliver(topics.CASE_RESOLVED, resolved("c-1"))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1"))
    assert h.assigned == []
    assert h.held() == 0


def test_a_deactivated_persons_cases_are_reassigned_or_wait():
    h = Harness(person("law-1", capacity=2, years_experience=20), person("law-2", capacity=1))
    for n in range(3):
        h.deliver(topics.CASE_CLASSIFIED, classified(f"c-{n + 1}", minute=n))
    assert [holder for _, holder, _ in h.outcomes()] == ["law-1", "law-2", "law-1"]

    h.deliver(topics.ROSTER_UPDATED, roster_updated(person("law-1", active=False)), key="law-1")
    moved = h.assigned[3:]
    assert [(e["case_id"], e["assignee_id"], e["reason"]) for e in moved] == [
        ("c-1", None, "no_capacity"),
        ("c-3", None, "no_capacity"),
    ]
    assert {e["previous_assignee_id"] for e in moved} == {"law-1"}

    h.deliver(topics.ROSTER_UPDATED, roster_updated(person("law-3", capacity=5)), key="law-3")
    assert h.outcomes()[5:] == [("c-1", "law-3", "reassigned"), ("c-3", "law-3", "reassigned")]
    assert h.holder("c-1") == h.holder("c-3") == "law-3"


def test_an_invalid_roster_update_goes_to_the_dead_letter_topic():
    h = Harness(person("law-1"))
    bad = roster_updated(person("law-9"))
    bad["person"]["capacity"] = -1
    h.deliver(topics.ROSTER_UPDATED, bad, key="law-9")
    assert "law-9" not in h.value(ROSTER_KEY).people
    [dead] = h.out[topics.dlq(topics.ROSTER_UPDATED)]
    assert h.reasons[dead["event_id"]].startswith("invalid event: person.capacity")


def test_a_contact_on_a_case_routing_never_saw_is_routed_as_new():
    h = Harness(person("law-1"))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1", new_case=False))
    assert h.outcomes() == [("c-1", "law-1", "assigned")]
    assert len(h.quoted) == 1


def test_the_same_inputs_decided_again_publish_the_same_event_ids():
    # What a crash before the commit does: the next owner decides the inputs again.
    people = (person("law-1", capacity=1), person("law-2", capacity=1))
    inputs = [classified(f"c-{n}", minute=n) for n in range(3)] + [resolved("c-0")]
    runs = []
    for _ in range(2):
        h = Harness(*people)
        for event in inputs:
            h.deliver(event["event_type"], event)
        runs.append([(e["event_id"], e["case_id"], e["assignee_id"]) for e in h.assigned])
    assert runs[0] == runs[1]
    assert len(runs[0]) == 4


def test_a_roster_file_read_again_unchanged_leaves_run_time_changes_in_place():
    h = Harness(person("law-1", capacity=1))
    h.deliver(topics.ROSTER_UPDATED, roster_updated(person("law-1", capacity=4)), key="law-1")
    h.send(roster_file_step([person("law-1", capacity=1)]), key=ROSTER_KEY)  # a restart
    assert h.value(ROSTER_KEY).people["law-1"].capacity == 4
    h.send(roster_file_step([person("law-1", capacity=2)]), key=ROSTER_KEY)  # the file edited
    assert h.value(ROSTER_KEY).people["law-1"].capacity == 2


def corrected(case_id: str, legal_field: str, **overrides) -> dict:
    """case.classified as intake republishes it after staff corrected the field."""
    return classified(case_id, legal_field, new_case=False, correction=True, **overrides)


def test_a_corrected_field_its_holder_does_not_know_goes_to_another_lawyer_and_is_quoted():
    h = Harness(person("law-land"), person("law-labor", legal_fields=["labor"]))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1", "land"))
    h.deliver(topics.CASE_CLASSIFIED, corrected("c-1", "labor", minute=5))
    assert h.outcomes() == [("c-1", "law-land", "assigned"), ("c-1", "law-labor", "reassigned")]
    assert h.assigned[-1]["previous_assignee_id"] == "law-land"
    assert h.assigned[-1]["legal_field"] == "labor"
    assert h.holder("c-1") == "law-labor" and h.held() == 1
    assert [q["legal_field"] for q in h.quoted] == ["land", "labor"]


def test_a_corrected_field_its_holder_knows_keeps_the_holder():
    h = Harness(person("law-both", legal_fields=["land", "labor"]))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1", "land"))
    h.deliver(topics.CASE_CLASSIFIED, corrected("c-1", "labor", minute=5))
    assert h.outcomes() == [("c-1", "law-both", "assigned")]
    assert h.value(case_key("c-1")).case.legal_field == "labor"


def test_a_corrected_case_nobody_knows_waits_and_frees_its_slot_for_the_queue():
    h = Harness(person("law-land", capacity=1))
    h.deliver(topics.CASE_CLASSIFIED, classified("c-1", "land"), classified("c-2", minute=1))
    h.deliver(topics.CASE_CLASSIFIED, corrected("c-1", "intellectual_property", minute=5))
    assert h.outcomes() == [
        ("c-1", "law-land", "assigned"),
        ("c-2", None, "no_capacity"),
        ("c-1", None, "no_expert"),
        ("c-2", "law-land", "assigned"),
    ]
    assert h.waiting() == ["c-1"]
