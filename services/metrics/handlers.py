"""Metrics' rules on the stateful runtime: case events → sheets → totals → metrics.kpi.

Who owns what (one writer per key): a case's events arrive keyed by case, so its sheet
(`sheet/<id>`) lives in its case's partition, and the rule there works out what each event
changes of the case's KPI contributions — the costly part, spread over every partition
and instance. The totals cross cases and customers (a cell sums many cases; retention and
new vs returning revenue follow customer groups that merges join), so every change goes on
to the one partition of the internal `metrics.step` topic (key `totals`), whose rule adds
it to the cells. A timer of that partition publishes the cells changed since its last
round to `metrics.kpi`, at most once per key per `publish_interval_s`.
"""

from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from services.metrics.domain import BusinessSeconds, CaseEntry, case_change, entry_of
from services.metrics.kpis import UNITS, CellKey, KpiValue, kpi_value
from services.metrics.state import (
    TOTALS_KEY,
    MetricsValue,
    SheetValue,
    StoredFact,
    Workspace,
    cell_id,
    is_idle,
    sheet_key,
    totals_in,
)
from services.metrics.steps import METRICS_STEP, MetricsStep
from services.metrics.windows import local_day
from shared import topics
from shared.clock import Clock
from shared.events import (
    CareContactCompleted,
    CaseAssigned,
    CaseClassified,
    CaseResolved,
    ContractSigned,
    CustomerMerged,
    Event,
    FeeQuoted,
    KpiDimension,
    KpiUpdated,
    KpiWindow,
    SlaBreached,
    SlaMet,
    SurveyExpired,
    SurveyReminded,
    SurveyRequested,
    SurveyScored,
    derived_event_id,
)
from shared.runtime import Context, Runtime, View
from shared.runtime.timers import Timer
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.metrics")
PRODUCER = "metrics"
PUBLISH = "metrics.publish"
"""The totals' partition's timer (and its id): publish the changed cells."""

CASE_EVENTS: tuple[type[Event], ...] = (
    CaseClassified,
    CaseAssigned,
    FeeQuoted,
    ContractSigned,
    CaseResolved,
    CareContactCompleted,
    SurveyRequested,
    SurveyReminded,
    SurveyExpired,
    SurveyScored,
    SlaMet,
    SlaBreached,
)
"""The events counted on their case's sheet (all keyed by case id)."""
CONSUMED: tuple[type[Event], ...] = (*CASE_EVENTS, CustomerMerged)
"""Every event type the KPIs are computed from."""


def metrics_runtime(
    settings: LexcareSettings,
    db: Any,
    *,
    tz: ZoneInfo,
    business_seconds: BusinessSeconds | None,
    today: Clock,
    publish_interval_s: float,
    **options: Any,
) -> Runtime[Any]:
    """Metrics' rules registered on a runtime; `today` is the clock retention counts to."""
    runtime: Runtime[Any] = Runtime(settings, db, value_type=MetricsValue, idle=is_idle, **options)
    count = partial(on_case_event, tz=tz, business_seconds=business_seconds)
    for model in CASE_EVENTS:
        runtime.on(model.TOPIC, model)(count)
    runtime.on(topics.CUSTOMER_MERGED, CustomerMerged, stateless=True)(on_customer_merged)
    interval = timedelta(seconds=publish_interval_s)
    runtime.on_group(METRICS_STEP, MetricsStep, internal=True)(
        partial(on_metrics_steps, tz=tz, interval=interval)
    )
    runtime.on_timer(PUBLISH)(partial(on_publish, tz=tz, today=today, interval=interval))
    return runtime


# A case's partition.


def on_case_event(
    state: View[Any],
    event: Event,
    ctx: Context,
    *,
    tz: ZoneInfo,
    business_seconds: BusinessSeconds | None,
) -> None:
    """Put the event on its case's sheet and hand what it changed to the totals."""
    entry = entry_of(event)
    if not isinstance(entry, CaseEntry):
        return  # counts for nothing (a care contact not reached)
    key = sheet_key(entry.case_id)
    sheet = state.get(key) or SheetValue()
    entries = {e.id: e for e in sheet.entries}
    changed = case_change(
        entries, entry, tz=tz, business_seconds=business_seconds, before=sheet.counted()
    )
    if changed is None:
        return  # the same event under another delivery: on the sheet already
    change, facts = changed
    counted = tuple(StoredFact.of(fact, n) for fact, n in facts.items())
    state.set(key, SheetValue(entries=(*sheet.entries, entry), facts=counted))
    ctx.emit(MetricsStep.caused_by(event, producer=PRODUCER, change=change), key=TOTALS_KEY)


def on_customer_merged(state: View[Any], event: CustomerMerged, ctx: Context) -> None:
    """Customers proved to be one: the totals fold their groups."""
    merge = entry_of(event)
    ctx.emit(MetricsStep.caused_by(event, producer=PRODUCER, merge=merge), key=TOTALS_KEY)


# The totals' partition.


def on_metrics_steps(
    state: View[Any], steps: list[MetricsStep], ctx: Context, *, tz: ZoneInfo, interval: timedelta
) -> None:
    """Add cases' changes (and merges) to the totals; publish within `interval`. The steps
    a batch holds come together: each cell they move is read and written once."""
    workspace = Workspace(state)
    totals = totals_in(workspace, tz)
    totals.add_all(item for step in steps for item in (step.change, step.merge) if item is not None)
    workspace.save()
    if ctx.timer(PUBLISH) is None:
        ctx.schedule(PUBLISH, due_at=ctx.now + interval, kind=PUBLISH)


def on_publish(
    state: View[Any], timer: Timer, ctx: Context, *, tz: ZoneInfo, today: Clock, interval: timedelta
) -> None:
    """Publish every cell changed since the last round (retention brought up to today)."""
    workspace = Workspace(state)
    totals = totals_in(workspace, tz)
    totals.refresh_crr(local_day(today.now(), tz))
    changed = totals.take_dirty()
    for key in sorted(changed, key=cell_id):
        cell = totals.cells.get(key)
        value = kpi_value(key[0], cell) if cell is not None else None
        ctx.emit(kpi_event(key, value, producer=PRODUCER, now=ctx.now, round_at=timer.due_at))
    workspace.save()
    ctx.schedule(PUBLISH, due_at=ctx.now + interval, kind=PUBLISH)
    if changed:
        log.info("kpis_published", count=len(changed))


def kpi_event(
    key: CellKey,
    value: KpiValue | None,
    *,
    producer: str,
    now: datetime,
    round_at: datetime,
) -> KpiUpdated:
    """The metrics.kpi message for one cell (a vanished cell reads as count 0, value null).

    Its id derives from the cell, its figures and the publish round (the round's due
    time): a round fired again after a crash sends the same ids, and a cell that comes
    back to earlier figures in a later round gets a new one (with the figures alone, a
    reader deduplicating by id dropped that change and kept the value in between)."""
    kpi, window, start, dimension, dimension_value = key
    figures = value or KpiValue(None, 0.0, 0.0, 0, {})
    ident = cell_id(key)
    version = repr((figures.numerator, figures.denominator, figures.count, figures.extra))
    return KpiUpdated(
        event_id=derived_event_id(ident, version, round_at.isoformat()),
        correlation_id=ident,
        occurred_at=now,
        producer=producer,
        kpi=kpi,
        window=KpiWindow(window),
        period_start=start,
        dimension=KpiDimension(dimension),
        dimension_value=dimension_value,
        value=figures.value,
        unit=UNITS[kpi],
        numerator=figures.numerator,
        denominator=figures.denominator,
        count=figures.count,
        extra=figures.extra,
        updated_at=now,
    )
