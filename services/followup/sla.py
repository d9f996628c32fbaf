"""Service levels (SPEC §11): the policy, and each case's clocks in business time. Pure.

A case has two clocks from the moment it opens: first response (until the first
`care.contact.completed` with outcome `reached`, or the resolution) and resolution (until
`case.resolved`). They count only time inside care windows (the care calendar) and stop
counting while the firm waits on the customer. A clock's due moments are never stored
as truths: they are computed again from the opening, the pauses and the calendar each time
something changes (a pause, a new priority, a new policy or calendar), so a re-plan is exact.
"""

import hashlib
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from shared.calendar import CareCalendar
from shared.events import Channel, LegalField, SlaPriority, SlaTarget

WARNING, BREACH = "sla.warning", "sla.breach"
"""The timer kinds of a clock's two due moments."""

_DURATION = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")


def parse_duration(value: Any) -> Any:
    """Business seconds from "4h", "30m", "1h30m", "45s" or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    match = _DURATION.match(str(value).strip()) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration like '4h', '30m', '1h30m' or '45s'")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


BusinessSeconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class SlaTargets(BaseModel):
    """One priority's targets, in business time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_response: BusinessSeconds
    resolution: BusinessSeconds


class SlaRefinement(BaseModel):
    """A narrower target for cases of one priority, legal field and/or channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    priority: SlaPriority | None = None
    legal_field: LegalField | None = None
    channel: Channel | None = None
    first_response: BusinessSeconds | None = None
    resolution: BusinessSeconds | None = None

    def matches(
        self, priority: SlaPriority, field: LegalField | None, channel: Channel | None
    ) -> bool:
        """True when every criterion it names is the case's."""
        return (
            self.priority in (None, priority)
            and self.legal_field in (None, field)
            and self.channel in (None, channel)
        )


class SlaPolicy(BaseModel):
    """deploy/config/sla.yaml: targets per priority, refinements, the warning share."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warning_share: float = Field(default=0.8, gt=0, lt=1)
    priorities: dict[SlaPriority, SlaTargets]
    refinements: list[SlaRefinement] = Field(default_factory=list)

    @model_validator(mode="after")
    def _every_priority(self) -> "SlaPolicy":
        missing = set(SlaPriority) - set(self.priorities)
        if missing:
            raise ValueError(f"no targets for: {', '.join(sorted(missing))}")
        return self

    def target_s(
        self,
        target: SlaTarget,
        priority: SlaPriority,
        field: LegalField | None,
        channel: Channel | None,
    ) -> float:
        """The target for a case: the first matching refinement that sets it, else its row."""
        for refinement in self.refinements:
            value = getattr(refinement, target.value)
            if value is not None and refinement.matches(priority, field, channel):
                return float(value)
        return float(getattr(self.priorities[priority], target.value))


def load_policy(path: str | Path) -> SlaPolicy:
    """Read the service-level policy from YAML (see deploy/config/sla.yaml)."""
    return SlaPolicy.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})


def fingerprint(policy: SlaPolicy, calendar: CareCalendar) -> str:
    """A digest of the policy and the calendar: clocks are re-planned when it changes."""
    both = {"policy": policy.model_dump(mode="json"), "calendar": calendar.model_dump(mode="json")}
    return hashlib.sha256(orjson.dumps(both, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def sla_priority(*, is_complaint: bool, is_dispute: bool) -> SlaPriority:
    """Complaints first, then disputes, then everything else."""
    if is_complaint:
        return SlaPriority.COMPLAINT
    return SlaPriority.DISPUTE if is_dispute else SlaPriority.NORMAL


class Pause(BaseModel):
    """A wait on the customer: `[start, end)`, end None while it lasts."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime | None = None


class Clock(BaseModel):
    """One clock of a case: its target and what it already announced."""

    model_config = ConfigDict(frozen=True)

    target: SlaTarget
    target_s: float
    warning_s: float
    stopped_at: datetime | None = None
    warned: bool = False
    breached: bool = False


class SlaClocks(BaseModel):
    """A case's two clocks, its opening, its pauses and the facts its targets come from."""

    model_config = ConfigDict(frozen=True)

    opened_at: datetime
    priority: SlaPriority
    legal_field: LegalField | None = None
    channel: Channel | None = None
    pauses: tuple[Pause, ...] = ()
    clocks: dict[SlaTarget, Clock]
    planned_with: str = ""
    """The fingerprint of the policy and calendar the targets come from."""

    @property
    def paused(self) -> bool:
        """True while the firm waits on the customer."""
        return bool(self.pauses) and self.pauses[-1].end is None

    @property
    def running(self) -> list[Clock]:
        """The clocks not stopped yet."""
        return [c for c in self.clocks.values() if c.stopped_at is None]


def open_clocks(
    *,
    opened_at: datetime,
    priority: SlaPriority,
    legal_field: LegalField | None,
    channel: Channel | None,
    policy: SlaPolicy,
    planned_with: str,
) -> SlaClocks:
    """A new case's clocks, with the targets of its priority, field and channel."""
    clocks = SlaClocks(
        opened_at=opened_at,
        priority=priority,
        legal_field=legal_field,
        channel=channel,
        clocks={t: Clock(target=t, target_s=1, warning_s=1) for t in SlaTarget},
    )
    return retarget(clocks, priority=priority, policy=policy, planned_with=planned_with)


def retarget(
    clocks: SlaClocks, *, priority: SlaPriority, policy: SlaPolicy, planned_with: str
) -> SlaClocks:
    """The clocks held to `priority` under `policy` (what they announced stays announced)."""
    updated = {}
    for target, clock in clocks.clocks.items():
        target_s = policy.target_s(target, priority, clocks.legal_field, clocks.channel)
        warning_s = target_s * policy.warning_share
        updated[target] = clock.model_copy(update={"target_s": target_s, "warning_s": warning_s})
    update = {"clocks": updated, "priority": priority, "planned_with": planned_with}
    return clocks.model_copy(update=update)


def paused_at(clocks: SlaClocks, at: datetime) -> SlaClocks:
    """The clocks paused from `at` (unchanged when already paused)."""
    if clocks.paused:
        return clocks
    last = clocks.pauses[-1].end if clocks.pauses else clocks.opened_at
    start = max(at, last or clocks.opened_at)
    return clocks.model_copy(update={"pauses": (*clocks.pauses, Pause(start=start))})


def resumed_at(clocks: SlaClocks, at: datetime) -> SlaClocks:
    """The clocks running again from `at` (unchanged when not paused)."""
    if not clocks.paused:
        return clocks
    last = clocks.pauses[-1]
    closed = last.model_copy(update={"end": max(at, last.start)})
    return clocks.model_copy(update={"pauses": (*clocks.pauses[:-1], closed)})


def _running_spans(clocks: SlaClocks) -> list[tuple[datetime, datetime | None]]:
    """The spans the clocks ran, `[start, end)`; the last is open-ended unless paused."""
    spans: list[tuple[datetime, datetime | None]] = []
    start: datetime | None = clocks.opened_at
    for pause in clocks.pauses:
        if start is not None and pause.start > start:
            spans.append((start, pause.start))
        start = pause.end
    if start is not None:
        spans.append((start, None))
    return spans


def elapsed_s(clocks: SlaClocks, moment: datetime, calendar: CareCalendar) -> float:
    """Business seconds the clocks counted from the opening up to `moment`."""
    total = 0.0
    for start, end in _running_spans(clocks):
        if start >= moment:
            break
        total += calendar.business_seconds(start, min(end or moment, moment))
    return total


def moment_of(clocks: SlaClocks, seconds: float, calendar: CareCalendar) -> datetime | None:
    """When the clocks reach `seconds` of business time (None: paused before they do)."""
    left = seconds
    for start, end in _running_spans(clocks):
        if end is None:
            return calendar.add_business_seconds(start, left)
        span = calendar.business_seconds(start, end)
        if left <= span:
            return calendar.add_business_seconds(start, left)
        left -= span
    return None


def timer_id(kind: str, case_id: str, target: SlaTarget) -> str:
    """The id of a clock's warning or breach timer (one of each per clock, ever)."""
    return f"{kind}:{case_id}:{target.value}"


Due = dict[str, tuple[datetime | None, str, SlaTarget]]
"""Timer id → (when it fires, None to cancel; its kind; its clock)."""


def plan(clocks: SlaClocks, case_id: str, *, calendar: CareCalendar, grace_s: float) -> Due:
    """The clocks' timers as they should be now: moved, kept, or cancelled (None).

    A breach fires `grace_s` after its moment, so a stop stamped before it that is still in
    flight lands first (the event still says the exact moment).
    """
    due: Due = {}
    for clock in clocks.clocks.values():
        for kind, seconds, done in (
            (WARNING, clock.warning_s, clock.warned or clock.breached),
            (BREACH, clock.target_s, clock.breached),
        ):
            moment = None
            if clock.stopped_at is None and not done and not clocks.paused:
                moment = moment_of(clocks, seconds, calendar)
            if moment is not None and kind == BREACH:
                moment = moment + timedelta(seconds=grace_s)
            due[timer_id(kind, case_id, clock.target)] = (moment, kind, clock.target)
    return due


Outcome = Literal["met", "breached"]


def stopped(
    clocks: SlaClocks, target: SlaTarget, at: datetime, calendar: CareCalendar
) -> tuple[SlaClocks, Outcome | None]:
    """The clocks with `target` stopped at `at`, and what to announce: met when it stopped
    before its target, breached when it reached it unannounced, None when already
    stopped or its breach was announced."""
    clock = clocks.clocks[target]
    if clock.stopped_at is not None:
        return clocks, None
    outcome: Outcome | None = None
    if not clock.breached:
        outcome = "met" if elapsed_s(clocks, at, calendar) < clock.target_s else "breached"
    update: dict[str, Any] = {"stopped_at": max(at, clocks.opened_at)}
    if outcome == "breached":
        update["breached"] = True
    clocks = clocks.model_copy(
        update={"clocks": {**clocks.clocks, target: clock.model_copy(update=update)}}
    )
    return clocks, outcome


def announced(clocks: SlaClocks, target: SlaTarget, kind: str) -> SlaClocks:
    """The clocks once `target`'s warning or breach is announced (a breach implies the
    warning: a late breach never warns after it)."""
    clock = clocks.clocks[target]
    update = {"warned": True} if kind == WARNING else {"warned": True, "breached": True}
    return clocks.model_copy(
        update={"clocks": {**clocks.clocks, target: clock.model_copy(update=update)}}
    )


SLA_KEY = "sla"
"""The state key of a partition's `SlaBook`."""


RUNNING_PREFIX = "sla/running/"
"""A key per case whose clocks run (`running_key`), listed when a new policy or calendar
re-plans them."""


def running_key(case_id: str) -> str:
    """The key saying the case's clocks run (in the case's partition)."""
    return f"{RUNNING_PREFIX}{case_id}"


class SlaBook(BaseModel):
    """A partition's service-level book (state key `sla`): the policy it last applied."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["sla"] = "sla"
    policy: SlaPolicy | None = None
    fingerprint: str = ""
    open: tuple[str, ...] = ()
    """The cases whose clocks ran, as a book stored them before each got a key
    (`RUNNING_PREFIX`): handed to keys when read."""


class SlaRunning(BaseModel):
    """The value of a `running_key`: the case's clocks run."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["sla_running"] = "sla_running"
