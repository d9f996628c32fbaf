"""An in-memory SurveyStore for handler tests: same methods, dicts instead of MongoDB."""

from datetime import datetime
from typing import Any

from services.survey.domain import ANSWERED, Outcome, Survey
from tests.fakes import MemoryProcessed


class MemoryTimers:
    """DurableTimers' schedule and cancel, recorded."""

    def __init__(self) -> None:
        self.pending: dict[str, dict[str, Any]] = {}
        self.cancelled: set[str] = set()

    async def schedule(self, timer_id: str, *, due_at: datetime, kind: str, **rest: Any) -> None:
        self.pending.setdefault(timer_id, {"due_at": due_at, "kind": kind, **rest})

    async def cancel(self, *, case_id: str, kinds: list[str] | None = None) -> int:
        hit = [
            timer_id
            for timer_id, timer in self.pending.items()
            if timer["case_id"] == case_id and (kinds is None or timer["kind"] in kinds)
        ]
        for timer_id in hit:
            del self.pending[timer_id]
            self.cancelled.add(timer_id)
        return len(hit)


class MemoryStore:
    """SurveyStore's behaviour without a database."""

    def __init__(self) -> None:
        self.cases: dict[str, dict[str, Any]] = {}
        self.surveys: dict[str, tuple[Survey, str]] = {}
        self.outcomes: dict[str, tuple[Outcome, str]] = {}
        self.processed = MemoryProcessed()
        self.timers = MemoryTimers()

    async def prepare(self) -> None:
        pass

    def _set(self, case_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        case = self.cases.setdefault(case_id, {"_id": case_id})
        case.update(fields)
        return dict(case)

    async def remember_context(self, case_id: str, context: dict[str, Any]) -> dict[str, Any]:
        return self._set(case_id, {"context": context})

    async def remember_lawyer(self, case_id: str, lawyer_id: str) -> None:
        self._set(case_id, {"assigned_lawyer_id": lawyer_id})

    async def remember_resolution(self, case_id: str, resolution: dict[str, Any]) -> dict[str, Any]:
        return self._set(case_id, {"resolution": resolution})

    async def mark_survey_decided(self, case_id: str) -> None:
        self._set(case_id, {"survey_decided": True})

    async def case(self, case_id: str) -> dict[str, Any] | None:
        return self.cases.get(case_id)

    async def last_answered_at(self, customer_id: str) -> datetime | None:
        times = [
            o.at
            for o, customer in self.outcomes.values()
            if customer == customer_id and o.outcome == ANSWERED
        ]
        return max(times, default=None)

    async def save_survey(self, survey: Survey, *, cause_id: str) -> Survey | None:
        stored, cause = self.surveys.setdefault(survey.survey_id, (survey, cause_id))
        return stored if cause == cause_id else None

    async def survey(self, survey_id: str) -> Survey | None:
        return self.surveys[survey_id][0] if survey_id in self.surveys else None

    async def claim_outcome(self, outcome: Outcome, *, customer_id: str) -> Outcome:
        return self.outcomes.setdefault(outcome.survey_id, (outcome, customer_id))[0]

    async def outcome(self, survey_id: str) -> Outcome | None:
        return self.outcomes[survey_id][0] if survey_id in self.outcomes else None

    def answered(self, survey_id: str, customer_id: str, at: datetime) -> None:
        """Record that `customer_id` answered `survey_id` at `at` (test setup)."""
        outcome = Outcome(survey_id, ANSWERED, at=at, answer_event_id="earlier")
        self.outcomes[survey_id] = (outcome, customer_id)
