"""The MongoDB collections survey owns: case context, surveys, outcomes, timers."""

import dataclasses
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.survey.domain import ANSWERED, Outcome, Survey
from shared.idempotency import ProcessedEvents
from shared.timers import DurableTimers

_SURVEY_FIELDS = [f.name for f in dataclasses.fields(Survey)]


def _as_stored(moment: datetime) -> datetime:
    """`moment` at the millisecond precision BSON keeps, so a re-read decision is identical."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _survey(doc: dict[str, Any]) -> Survey:
    values = {name: doc.get(name) for name in _SURVEY_FIELDS}
    return Survey(**{**values, "questions": tuple(doc["questions"])})


def _outcome(doc: dict[str, Any]) -> Outcome:
    return Outcome(
        survey_id=doc["_id"],
        outcome=doc["outcome"],
        at=doc["at"],
        answer_event_id=doc.get("answer_event_id"),
    )


# What survey learnt about a case, one document per kind (see SurveyStore).
CONTEXT, LAWYER, RESOLUTION = "context", "assigned_lawyer_id", "resolution"
DECIDED = "survey_decided"


class SurveyStore:
    """Case facts, survey decisions and outcomes, behind intention-named methods.

    `case_facts` holds what survey learnt about a case, one document per kind and case
    (`<case id>:<kind>`), each written by one handler only: FerretDB rewrites a whole
    document on update, so two handlers `$set`-ing different fields of one document at once
    can lose one of the writes (measured here). Every handler writes its fact first and
    reads all the case's facts after, so of two racing handlers at least one sees both.
    `surveys` holds one decision per case (first one wins, by unique id).
    `survey_outcomes` holds how a survey ended: its unique id makes "answered" and "expired"
    exclusive across instances (FerretDB's conditional updates are not atomic).
    """

    def __init__(self, db: AsyncDatabase) -> None:
        self.facts = db["case_facts"]
        self.surveys = db["surveys"]
        self.outcomes = db["survey_outcomes"]
        self.processed = ProcessedEvents(db)
        self.timers = DurableTimers(db)

    async def prepare(self) -> None:
        """Create the indexes survey relies on."""
        await self.facts.create_index("case_id")
        await self.facts.create_index("kind")
        await self.outcomes.create_index([("customer_id", 1), ("at", DESCENDING)])
        await self.timers.prepare()
        await self.processed.prepare()

    async def _put_fact(self, case_id: str, kind: str, value: Any) -> None:
        async def upsert() -> None:
            await self.facts.update_one(
                {"_id": f"{case_id}:{kind}"},
                {"$set": {"case_id": case_id, "kind": kind, "value": value}},
                upsert=True,
            )

        try:
            await upsert()
        except DuplicateKeyError:
            await upsert()  # created at the same moment by a redelivery: now it updates

    async def remember_context(self, case_id: str, context: dict[str, Any]) -> dict[str, Any]:
        """Keep the case's latest context (customer, channel, field, segment, contact)."""
        await self._put_fact(case_id, CONTEXT, context)
        return await self._case(case_id)

    async def remember_lawyer(self, case_id: str, lawyer_id: str) -> None:
        """Keep the lawyer the case is assigned to."""
        await self._put_fact(case_id, LAWYER, lawyer_id)

    async def remember_resolution(self, case_id: str, resolution: dict[str, Any]) -> dict[str, Any]:
        """Keep the case's resolution until its survey is decided; return the case."""
        await self._put_fact(case_id, RESOLUTION, resolution)
        return await self._case(case_id)

    async def mark_survey_decided(self, case_id: str) -> None:
        """Note that the case's survey was decided and published (or skipped)."""
        await self._put_fact(case_id, DECIDED, True)

    async def waiting_resolutions(self) -> int:
        """How many resolved cases wait for their case.classified before their survey."""
        resolved = await self.facts.count_documents({"kind": RESOLUTION})
        return resolved - await self.facts.count_documents({"kind": DECIDED})

    async def _case(self, case_id: str) -> dict[str, Any]:
        facts = await self.facts.find({"case_id": case_id}).to_list(None)
        return {"_id": case_id, **{fact["kind"]: fact["value"] for fact in facts}}

    async def case(self, case_id: str) -> dict[str, Any] | None:
        """Everything survey learnt about the case, or None when it never heard of it."""
        case = await self._case(case_id)
        return case if len(case) > 1 else None

    async def last_answered_at(self, customer_id: str) -> datetime | None:
        """When the customer last answered a survey, or None."""
        doc = await self.outcomes.find_one(
            {"customer_id": customer_id, "outcome": ANSWERED}, sort=[("at", DESCENDING)]
        )
        return doc["at"] if doc else None

    async def save_survey(self, survey: Survey, *, cause_id: str) -> Survey | None:
        """Store the case's survey decision unless one exists.

        Returns the stored decision when it was made for `cause_id` (now or by an earlier
        try), None when another resolution decided the case's survey first.
        """
        survey = dataclasses.replace(
            survey,
            requested_at=_as_stored(survey.requested_at),
            remind_at=_as_stored(survey.remind_at),
            expires_at=_as_stored(survey.expires_at),
        )
        doc = {**dataclasses.asdict(survey), "_id": survey.survey_id, "cause_id": cause_id}
        doc["questions"] = list(survey.questions)
        try:
            await self.surveys.insert_one(doc)
        except DuplicateKeyError:
            stored = await self.surveys.find_one({"_id": survey.survey_id})
            if stored is None or stored.get("cause_id") != cause_id:
                return None
            return _survey(stored)
        return survey

    async def survey(self, survey_id: str) -> Survey | None:
        """The survey decision, or None."""
        doc = await self.surveys.find_one({"_id": survey_id})
        return _survey(doc) if doc else None

    async def claim_outcome(self, outcome: Outcome, *, customer_id: str) -> Outcome:
        """Record how the survey ended unless it already ended; return the outcome that holds."""
        doc = {**dataclasses.asdict(outcome), "_id": outcome.survey_id, "customer_id": customer_id}
        del doc["survey_id"]
        try:
            await self.outcomes.insert_one(doc)
        except DuplicateKeyError:
            stored = await self.outcomes.find_one({"_id": outcome.survey_id})
            if stored is not None:
                return _outcome(stored)
            raise
        return outcome

    async def outcome(self, survey_id: str) -> Outcome | None:
        """How the survey ended, or None while it is open."""
        doc = await self.outcomes.find_one({"_id": survey_id})
        return _outcome(doc) if doc else None
