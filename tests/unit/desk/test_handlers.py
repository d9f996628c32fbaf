"""The desk's rules on the runtime, in memory: each case and person has one record."""

from datetime import timedelta

from services.desk.handlers import ReadModel, closed, desk_runtime
from shared.clock import FakeClock
from shared.settings import LexcareSettings
from tests.runtime_harness import NO_DATABASE, RuleHarness
from tests.unit.desk.factories import T0, assigned, classified, requested, roster_update
from tests.unit.survey.factories import resolved


def harness() -> RuleHarness:
    clock = FakeClock(T0)
    return RuleHarness(desk_runtime(LexcareSettings(), NO_DATABASE, clock=clock), clock)


def read_model(h: RuleHarness) -> ReadModel:
    """The pages' view of the harness's partitions."""
    h.runtime.partitions = {s.partition: s for s in h.states}
    return ReadModel(h.runtime)


async def test_case_events_build_one_record_per_case_in_its_partition():
    h = harness()
    h.send(classified("case-a"), assigned("case-a"), requested("case-a"), classified("case-b"))
    model = read_model(h)
    case = await model.case("case-a")
    assert case.assignee_id == "law-land-01" and len(case.timeline) == 3
    assert {c.case_id for c in model.cases()} == {"case-a", "case-b"}
    assert await model.case("case-zzz") is None
    assert h.value("case/case-a") == case  # survives the runtime's codec


def test_a_redelivered_event_is_folded_once():
    h = harness()
    event = requested("case-a", due_at=T0 + timedelta(hours=1))
    h.send(event, event)
    assert len(h.value("case/case-a").timeline) == 1


def test_a_roster_update_is_kept_by_person():
    h = harness()
    h.send(roster_update("law-new-01"), roster_update("law-new-01", active=False))
    [person] = list(read_model(h).people())
    assert person.person.id == "law-new-01" and not person.person.active
    assert h.out == {}


def test_only_a_resolved_case_without_open_care_may_leave_memory():
    h = harness()
    h.send(classified("case-a"), requested("case-a"), resolved("case-a"))
    h.send(classified("case-b"), resolved("case-b"))
    assert not closed(h.value("case/case-a"))  # its care contact is still due
    assert closed(h.value("case/case-b"))
