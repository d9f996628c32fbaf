"""Followup's service-level rules on the runtime: a case's clocks live with the case.

The clocks are part of `case/<id>` (`CaseState.sla`) in the case's partition, their warning
and breach moments are that partition's timers (`sla.warning:<case>:<target>`,
`sla.breach:<case>:<target>`), the partition's `sla` value (`SlaBook`) keeps the policy
it applied and a key per case whose clocks run (`sla/running/<case>`) lists the clocks to
re-plan when the policy or the calendar changes. Events are announced once: a clock
remembers what it announced, and their ids derive from the timer id, so a timer fired
again after a crash repeats them.
"""

from typing import TYPE_CHECKING, Any

import structlog

from services.followup import sla
from services.followup.domain import CaseState, case_key
from services.followup.internal import SlaPolicyRead
from services.followup.sla import (
    RUNNING_PREFIX,
    SLA_KEY,
    SlaBook,
    SlaClocks,
    SlaRunning,
    running_key,
)
from shared import topics
from shared.events import (
    CaseAssigned,
    CaseClassified,
    CaseCustomerReplied,
    CaseWaitingOnCustomer,
    SlaBreached,
    SlaEvent,
    SlaMet,
    SlaTarget,
    SlaWarning,
    derived_event_id,
)
from shared.runtime import Context, Timer, View

if TYPE_CHECKING:
    from datetime import datetime

    from services.followup.handlers import Care

log = structlog.get_logger("lexcare.followup")

State = View[Any]


def book(state: State) -> SlaBook:
    """The partition's service-level book (empty before the first policy or clock); a book
    that still lists the cases whose clocks run hands them to keys."""
    found = state.get(SLA_KEY)
    if not isinstance(found, SlaBook):
        return SlaBook()
    if found.open:
        for case_id in found.open:
            tracking(state, case_id, running=True)
        found = found.model_copy(update={"open": ()})
        state.set(SLA_KEY, found)
    return found


def tracking(state: State, case_id: str, *, running: bool) -> None:
    """List the case while its clocks run, and not after."""
    if running:
        state.set(running_key(case_id), SlaRunning())
    elif state.get(running_key(case_id)) is not None:
        state.delete(running_key(case_id))


def policy_of(state: State, care: "Care") -> tuple[sla.SlaPolicy, str]:
    """The policy the partition applied last, else the one this instance read at start."""
    current = book(state)
    if current.policy is not None:
        return current.policy, current.fingerprint
    return care.sla_policy, care.sla_fingerprint


def on_classified(
    state: State, case: CaseState, event: CaseClassified, ctx: Context, care: "Care"
) -> CaseState:
    """A new case starts its clocks; a later contact resumes them (the customer answered;
    staff correcting the field is no answer) and re-plans them if the case became a
    dispute or a complaint."""
    policy, planned_with = policy_of(state, care)
    priority = sla.sla_priority(is_complaint=case.is_complaint, is_dispute=case.is_dispute)
    clocks = case.sla
    if clocks is None:
        if not event.new_case or case.resolved:
            return case
        clocks = sla.open_clocks(
            opened_at=event.occurred_at,
            priority=priority,
            legal_field=case.legal_field,
            channel=case.channel,
            policy=policy,
            planned_with=planned_with,
        )
        tracking(state, case.case_id, running=True)
    else:
        if not event.correction:
            clocks = sla.resumed_at(clocks, event.occurred_at)
        if priority != clocks.priority:
            clocks = sla.retarget(
                clocks, priority=priority, policy=policy, planned_with=planned_with
            )
    return replanned(case, clocks, ctx, care)


def on_stop(
    state: State,
    case: CaseState,
    targets: list[SlaTarget],
    at: "datetime",
    ctx: Context,
    care: "Care",
) -> CaseState:
    """Stop these clocks at `at`: met when before their target, else breached if that was
    not announced yet (the timer had not fired)."""
    clocks = case.sla
    if clocks is None:
        return case
    for target in targets:
        clocks, outcome = sla.stopped(clocks, target, at, care.calendar)
        if outcome == "met":
            met_id = sla.timer_id("sla.met", case.case_id, target)
            ctx.emit(_event(SlaMet, case, clocks, target, at=at, timer=met_id, care=care))
        elif outcome == "breached":
            moment = sla.moment_of(clocks, clocks.clocks[target].target_s, care.calendar) or at
            breach_id = sla.timer_id(sla.BREACH, case.case_id, target)
            ctx.emit(
                _event(SlaBreached, case, clocks, target, at=moment, timer=breach_id, care=care)
            )
        if outcome:
            log.info(
                "sla_clock_stopped", case_id=case.case_id, target=target.value, outcome=outcome
            )
    if not clocks.running:
        tracking(state, case.case_id, running=False)
    return replanned(case, clocks, ctx, care)


def on_assigned(state: State, event: CaseAssigned, ctx: Context, *, care: "Care") -> None:
    """Remember who holds the case: its service-level events name them."""
    found = state.get(case_key(event.case_id))
    case = found if isinstance(found, CaseState) else None
    base = case or CaseState(case_id=event.case_id, correlation_id=event.correlation_id)
    state.set(case_key(event.case_id), base.model_copy(update={"assignee_id": event.assignee_id}))


def on_waiting(state: State, event: CaseWaitingOnCustomer, ctx: Context, *, care: "Care") -> None:
    """The firm waits on the customer: the case's clocks pause."""
    _paused_or_resumed(state, event.case_id, ctx, care, pause=True, at=event.occurred_at)


def on_replied(state: State, event: CaseCustomerReplied, ctx: Context, *, care: "Care") -> None:
    """The customer answered: the case's clocks run again."""
    _paused_or_resumed(state, event.case_id, ctx, care, pause=False, at=event.occurred_at)


def _paused_or_resumed(
    state: State, case_id: str, ctx: Context, care: "Care", *, pause: bool, at: "datetime"
) -> None:
    found = state.get(case_key(case_id))
    if not isinstance(found, CaseState) or found.sla is None:
        log.info("sla_pause_ignored", case_id=case_id, reason="no_clocks")
        return
    clocks = sla.paused_at(found.sla, at) if pause else sla.resumed_at(found.sla, at)
    state.set(case_key(case_id), replanned(found, clocks, ctx, care))
    log.info("sla_paused" if pause else "sla_resumed", case_id=case_id)


def on_policy(state: State, event: SlaPolicyRead, ctx: Context, *, care: "Care") -> None:
    """A policy or calendar read at start or reload: re-plan every running clock of the
    partition when it differs from the one applied last."""
    current = book(state)
    if current.fingerprint == event.fingerprint:
        return
    state.set(
        SLA_KEY,
        current.model_copy(update={"policy": event.policy, "fingerprint": event.fingerprint}),
    )
    running = [key.removeprefix(RUNNING_PREFIX) for key in state.scan(RUNNING_PREFIX)]
    for case_id in running:
        case = state.get(case_key(case_id))
        if not isinstance(case, CaseState) or case.sla is None:
            continue
        clocks = sla.retarget(
            case.sla,
            priority=case.sla.priority,
            policy=event.policy,
            planned_with=event.fingerprint,
        )
        state.set(case_key(case_id), replanned(case, clocks, ctx, care))
    log.info("sla_policy_applied", fingerprint=event.fingerprint, clocks=len(running))


def on_due(state: State, timer: Timer, ctx: Context, *, care: "Care") -> None:
    """A clock's warning or breach moment: announce it once (moved if a change it missed
    put it later, nothing if the clock stopped or paused)."""
    case = state.get(case_key(timer.payload.get("case_id", "")))
    if not isinstance(case, CaseState) or case.sla is None:
        return
    clocks, target = case.sla, SlaTarget(timer.payload["target"])
    clock = clocks.clocks[target]
    warning = timer.kind == sla.WARNING
    if clock.stopped_at is not None or (clock.warned if warning else clock.breached):
        return
    moment = sla.moment_of(clocks, clock.warning_s if warning else clock.target_s, care.calendar)
    if moment is None:
        return
    fire_at = moment if warning else moment + care.sla_grace
    if fire_at > ctx.now:
        ctx.schedule(timer.id, due_at=fire_at, kind=timer.kind, payload=timer.payload)
        return
    clocks = sla.announced(clocks, target, timer.kind)
    model = SlaWarning if warning else SlaBreached
    ctx.emit(_event(model, case, clocks, target, at=moment, timer=timer.id, care=care))
    state.set(case_key(case.case_id), case.model_copy(update={"sla": clocks}))
    log.info(
        "sla_warning" if warning else "sla_breached", case_id=case.case_id, target=target.value
    )


def replanned(case: CaseState, clocks: SlaClocks, ctx: Context, care: "Care") -> CaseState:
    """The case with its clocks, their timers moved, kept or cancelled to match."""
    planned = sla.plan(clocks, case.case_id, calendar=care.calendar, grace_s=care.sla_grace_s)
    for timer_id, (due_at, kind, target) in planned.items():
        pending = ctx.timer(timer_id)  # None too when due beyond the runtime's timer horizon
        if due_at is None:
            ctx.cancel(timer_id)
        elif pending is None or pending.due_at != due_at:
            payload = {"case_id": case.case_id, "target": target.value}
            ctx.schedule(timer_id, due_at=due_at, kind=kind, payload=payload)
    return case.model_copy(update={"sla": clocks})


def _event(
    model: type[SlaEvent],
    case: CaseState,
    clocks: SlaClocks,
    target: SlaTarget,
    *,
    at: "datetime",
    timer: str,
    care: "Care",
) -> SlaEvent:
    """The event of a clock at `at`; its id derived from the clock's timer id (once ever)."""
    clock = clocks.clocks[target]
    return model(
        event_id=derived_event_id(timer, model.TOPIC),
        correlation_id=case.correlation_id,
        occurred_at=at,
        producer=care.producer,
        case_id=case.case_id,
        target=target,
        priority=clocks.priority,
        legal_field=clocks.legal_field,
        channel=clocks.channel,
        assignee_id=case.assignee_id,
        opened_at=clocks.opened_at,
        target_business_s=clock.target_s,
        elapsed_business_s=round(sla.elapsed_s(clocks, at, care.calendar), 3),
        due_at=sla.moment_of(clocks, clock.target_s, care.calendar),
    )


REGISTERED = (
    (topics.CASE_ASSIGNED, CaseAssigned, on_assigned),
    (topics.CASE_WAITING_ON_CUSTOMER, CaseWaitingOnCustomer, on_waiting),
    (topics.CASE_CUSTOMER_REPLIED, CaseCustomerReplied, on_replied),
)
"""The inputs of the clocks besides the case's own, with their rules."""
