"""Routing's internal events: every input a decision needs, passed on to the roster's partition.

Lawyers' capacity is global: any case may take any lawyer's slot. So the rules of the
input topics (keyed by case, or by person for roster.updated) pass what the decision needs
on to the internal `routing.decide` topic keyed by one constant (`roster`): one partition
owns the roster, its held slots, the cases and the queue, and decides alone.
"""

from typing import Annotated, Literal

from pydantic import Field

from shared import topics
from shared.events import (
    CaseClassified,
    CaseResolved,
    Event,
    RosterPerson,
    RosterUpdated,
    SlaBreached,
)

ROSTER_FILE_READ = "routing.roster_file"


class RosterFileRead(Event):
    """Routing read its roster file at start: the roster's owner applies new or edited entries."""

    event_type: Literal["routing.roster_file"] = Field(
        default=ROSTER_FILE_READ, description="The event type."
    )
    people: list[RosterPerson] = Field(description="Every entry of the file.")


Input = Annotated[
    CaseClassified | CaseResolved | RosterUpdated | RosterFileRead | SlaBreached,
    Field(discriminator="event_type"),
]


class RoutingStep(Event):
    """Internal, keyed by `roster`: an input the roster's owner decides on, as received."""

    event_type: Literal["routing.decide"] = Field(
        default=topics.ROUTING_DECIDE, description="The event type, equal to its topic."
    )
    input: Input = Field(description="The input event, as received.")
