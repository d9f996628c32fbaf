"""The desk's read model on the stateful runtime: one writer per case, one per roster person.

Every input is keyed by its case id (`roster.updated` by person id), so the case's partition
owns `case/<id>` and the person's owns `person/<id>`; the rules only fold events into them.
The web pages read the values of the partitions this instance owns (`ReadModel`).
"""

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import Field

from services.desk.domain import (
    CaseRecord,
    PersonRecord,
    case_key,
    person_key,
    recorded,
    roster_person,
)
from shared import topics
from shared.clock import Clock
from shared.events import (
    CareContactCompleted,
    CareContactRequested,
    CaseAssigned,
    CaseClassified,
    CaseReclassified,
    CaseResolved,
    ContractSigned,
    Event,
    FeeQuoted,
    RosterUpdated,
    SurveyScored,
)
from shared.runtime import Context, Runtime, View
from shared.settings import LexcareSettings

DeskValue = Annotated[CaseRecord | PersonRecord, Field(discriminator="kind")]

CASE_INPUTS: tuple[tuple[str, type[Event]], ...] = (
    (topics.CASE_CLASSIFIED, CaseClassified),
    (topics.CASE_ASSIGNED, CaseAssigned),
    (topics.FEE_QUOTED, FeeQuoted),
    (topics.CARE_CONTACT_REQUESTED, CareContactRequested),
    (topics.CARE_CONTACT_COMPLETED, CareContactCompleted),
    (topics.CONTRACT_SIGNED, ContractSigned),
    (topics.CASE_RESOLVED, CaseResolved),
    (topics.CASE_RECLASSIFIED, CaseReclassified),
    (topics.SURVEY_SCORED, SurveyScored),
)
"""The case events the desk shows on a case's timeline."""


def closed(value: Any) -> bool:
    """A resolved case with no care contact open: it may leave memory (read back on demand)."""
    return isinstance(value, CaseRecord) and value.resolution is not None and not value.open_tasks


def desk_runtime(settings: LexcareSettings, db: Any, *, clock: Clock) -> Runtime[Any]:
    """The desk's rules registered on a runtime; closed cases past max_keys leave memory."""
    runtime: Runtime[Any] = Runtime(settings, db, value_type=DeskValue, clock=clock, idle=closed)
    for topic, model in CASE_INPUTS:
        runtime.on(topic, model)(on_case_event)
    runtime.on(topics.ROSTER_UPDATED, RosterUpdated)(on_roster_updated)
    return runtime


def on_case_event(state: View[Any], event: Event, ctx: Context) -> None:
    """Fold a case event into the case's record (timeline, open care contacts, holder)."""
    if not event.case_id:
        ctx.reject("case event without case_id")
    key = case_key(event.case_id)
    state.set(key, recorded(state.get(key), event))


def on_roster_updated(state: View[Any], event: RosterUpdated, ctx: Context) -> None:
    """Keep the person's latest record for the roster page."""
    state.set(person_key(event.person.id), roster_person(event))


class ReadModel:
    """What the pages read: the values of the partitions this instance owns.

    Open cases and the roster stay in memory; a closed case that left it is read back from
    storage for its page without being put back (the runtime stays its only writer).
    """

    def __init__(self, runtime: Runtime[Any]) -> None:
        self.runtime = runtime

    def cases(self) -> Iterator[CaseRecord]:
        """Every case known here."""
        return (v for v in self.runtime.loaded_values() if isinstance(v, CaseRecord))

    def people(self) -> Iterator[PersonRecord]:
        """Every roster update known here."""
        return (v for v in self.runtime.loaded_values() if isinstance(v, PersonRecord))

    async def case(self, case_id: str) -> CaseRecord | None:
        """One case by id (read back from storage when it left memory), or None."""
        value = await self.runtime.value(case_key(case_id))
        return value if isinstance(value, CaseRecord) else None
