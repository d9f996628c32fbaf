"""The desk's read model: timelines, today's queue, search, the roster."""

import uuid
from datetime import timedelta

from services.desk.domain import (
    CaseRecord,
    current_roster,
    matches,
    recorded,
    roster_person,
    todays_queue,
)
from shared.events import CareContactCompleted, CaseReclassified, RosterPerson
from tests.unit.desk.factories import T0, assigned, classified, requested, roster_update


def completed(case_id: str, request_id: str, agent_id: str = "agent-01") -> CareContactCompleted:
    return CareContactCompleted(
        event_id=uuid.uuid4(),
        occurred_at=T0 + timedelta(minutes=5),
        producer="desk",
        case_id=case_id,
        request_id=request_id,
        agent_id=agent_id,
        outcome="reached",
        note="Khách hẹn gửi sổ đỏ",
    )


def fold(*events) -> CaseRecord:
    case = None
    for event in events:
        case = recorded(case, event)
    return case


def test_a_case_tells_its_story_in_time_order_and_a_completed_contact_leaves_the_queue():
    case = fold(requested("case-1", due_at=T0), classified("case-1"), assigned("case-1"))
    assert [e.event_type for e in case.timeline] == [
        "case.classified",
        "case.assigned",
        "care.contact.requested",
    ]
    assert case.assignee_id == "law-land-01" and case.legal_field == "land"
    assert "Độ tin cậy phân loại 90%" in case.timeline[0].detail
    assert [t.request_id for t in case.open_tasks] == ["req-1"]

    done = recorded(case, completed("case-1", "req-1"))
    assert done.open_tasks == () and done.last_agent_id == "agent-01"
    assert done.timeline[-1].title == "Kết quả liên hệ: Đã liên hệ được"
    assert done.timeline[-1].actor == "agent-01"


def test_a_redelivered_request_is_one_task():
    event = requested("case-1")
    assert len(fold(event, event).open_tasks) == 1


def test_the_queue_puts_mine_first_then_complaints_then_the_most_overdue():
    cases = [
        fold(requested("case-old", request_id="r-old", due_at=T0 - timedelta(days=2))),
        fold(requested("case-high", request_id="r-high", due_at=T0, priority="high")),
        fold(assigned("case-mine", "law-land-01"), requested("case-mine", request_id="r-mine")),
        fold(requested("case-later", request_id="r-later", due_at=T0 + timedelta(days=2))),
    ]
    queue = todays_queue(cases, person_id="law-land-01", now=T0, until=T0 + timedelta(hours=10))
    assert [i.task.request_id for i in queue] == ["r-mine", "r-high", "r-old"]
    assert [i.overdue for i in queue] == [False, False, True]
    assert queue[0].mine


def test_search_finds_a_case_by_phone_in_any_spelling_email_name_or_id():
    case = fold(requested("case-77"))
    assert matches(case, "0912 345 678") and matches(case, "+84912345678")
    assert matches(case, "nguyễn văn") and matches(case, "case-77")
    assert not matches(case, "0987") and not matches(case, "")


def test_the_roster_is_the_file_overlaid_by_run_time_updates():
    in_file = RosterPerson(
        id="law-new-01",
        name="Cũ",
        role="lawyer",
        legal_fields=["land"],
        years_experience=1,
        capacity=1,
    )
    people = current_roster([in_file], [roster_person(roster_update(active=False))])
    assert [(p.name, p.active) for p in people] == [("Đỗ Thị Lan", False)]


def test_a_staff_correction_and_intakes_reclassification_are_on_the_timeline():
    corrected = CaseReclassified(
        event_id=uuid.uuid4(),
        occurred_at=T0,
        producer="desk",
        case_id="case-1",
        legal_field="labor",
        agent_id="agent-01",
        reason="nợ lương: lao động",
    )
    case = fold(classified("case-1"), corrected)
    assert case.legal_field == "labor"
    assert case.timeline[-1].title == "Sửa lĩnh vực: Đất đai → Lao động"
    assert (case.timeline[-1].actor, case.timeline[-1].detail) == ("agent-01", "nợ lương: lao động")
    again = classified(
        "case-1",
        occurred_at=T0 + timedelta(seconds=1),
        legal_field="labor",
        correction=True,
        corrected_from="land",
        new_case=False,
    )
    last = recorded(case, again).timeline[-1]
    assert last.title == "Lĩnh vực đã cập nhật: Lao động"
    assert last.detail.startswith("Nhân viên sửa lĩnh vực (trước: Đất đai).")
