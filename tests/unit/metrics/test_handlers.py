"""Metrics' rules in memory (no broker, no database): sheets in the cases' partitions, the
totals in one partition, and what reaches metrics.kpi — the reference engine's values."""

import random
from datetime import timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from services.metrics.app import MetricsSettings, build_engine, build_runtime
from services.metrics.board import KpiBoard
from services.metrics.domain import entry_of
from services.metrics.handlers import kpi_event, metrics_runtime
from services.metrics.kpis import KpiValue, cell_row
from services.metrics.state import TOTALS_KEY, ActivityValue, SheetValue, cell_id, sheet_key
from services.metrics.windows import Window
from shared import topics
from shared.calendar import load_calendar
from shared.clock import FakeClock
from shared.events import EVENT_MODELS, Event
from tests.integration.metrics import scenario as s
from tests.integration.metrics.test_golden_scenario import NOW, golden_events
from tests.runtime_harness import NO_DATABASE, RuleHarness

SETTINGS = MetricsSettings()
TZ = ZoneInfo(SETTINGS.timezone)
CALENDAR = load_calendar(SETTINGS.care_calendar_path)
INTERVAL = timedelta(seconds=SETTINGS.publish_interval_s)


def events() -> list[Event]:
    """The golden scenario's events, parsed."""
    return [EVENT_MODELS[raw["event_type"]].model_validate(raw) for raw in golden_events()]


def harness(partitions: int = 3) -> RuleHarness:
    """Metrics' rules over `partitions` in-memory partitions, today being the scenario's."""
    clock = FakeClock(NOW)
    runtime = build_runtime(SETTINGS, NO_DATABASE, CALENDAR, clock, clock=clock)
    return RuleHarness(runtime, clock, partitions=partitions)


def published(h: RuleHarness) -> dict[str, dict]:
    """metrics.kpi as its readers see it: the latest row of every key, emptied cells gone."""
    board = KpiBoard(SETTINGS)
    for record in h.out[topics.METRICS_KPI]:
        key = "|".join(
            str(record[f] or "all")
            for f in ("kpi", "window", "period_start", "dimension", "dimension_value")
        )
        board.take(key.encode(), orjson.dumps(record))
    return {key.decode(): row for key, row in board.rows.items()}


def reference(stream: list[Event]) -> dict[str, dict]:
    """Every value the in-memory engine computes from `stream`."""
    engine = build_engine(SETTINGS, CALENDAR, clock=FakeClock(NOW))
    for event in stream:
        engine.ingest(entry_of(event))
    engine.refresh_crr()
    return {cell_id(key): cell_row(key, cell) for key, cell in engine.cells.items()}


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_the_rules_publish_exactly_what_the_reference_engine_computes(partitions):
    h = harness(partitions)
    stream = events()
    h.send(*stream)
    h.advance(INTERVAL)
    expected = reference(stream)
    assert len(expected) > 1_000  # every KPI, window and dimension, CRR for every day
    assert published(h) == expected


@pytest.mark.parametrize("seed", range(4))
def test_any_order_split_across_publish_rounds_gives_the_same_values(seed):
    rng = random.Random(seed)
    stream = events()
    shuffled = stream[:]
    rng.shuffle(shuffled)
    h = harness()
    for event in shuffled:
        h.send(event)
        if rng.random() < 0.2:
            h.advance(INTERVAL)  # a publish round in the middle: later rounds correct it
    h.advance(INTERVAL)
    assert published(h) == reference(stream)


def test_sheets_stay_in_their_cases_partitions_and_the_totals_in_one():
    h = harness()
    stream = events()
    h.send(*stream)
    case_id = next(e.case_id for e in stream if e.case_id)
    partition = h.partition_of(case_id.encode())
    assert isinstance(h.states[partition].values[sheet_key(case_id)], SheetValue)
    totals = h.partition_of(TOTALS_KEY.encode())
    holders = [p for p, s in enumerate(h.states) if any(k.startswith("cell/") for k in s.values)]
    assert holders == [totals]
    assert isinstance(h.states[totals].values["activity"], ActivityValue)


def test_nothing_is_published_before_the_interval_then_each_changed_key_once():
    h = harness()
    h.send(*events())
    assert h.out[topics.METRICS_KPI] == []
    h.advance(INTERVAL)
    keys = [
        (r["kpi"], r["window"], r["period_start"], r["dimension"], r["dimension_value"])
        for r in h.out[topics.METRICS_KPI]
    ]
    assert len(keys) == len(set(keys))
    before = len(keys)
    h.advance(INTERVAL)  # nothing changed: nothing more
    assert len(h.out[topics.METRICS_KPI]) == before


def test_each_cycle_stores_only_the_cells_it_changed_and_publishing_drops_them():
    h = harness()
    stream = events()
    h.send(*stream[:40])
    chunks = h.keys("dirty/")
    index = h.value("dirty")
    assert index.cells == frozenset() and index.chunks == len(chunks) > 1
    sizes = [len(h.value(key).cells) for key in chunks]
    marked = set().union(*(h.value(key).cells for key in chunks))
    assert max(sizes) < len(marked)  # no chunk holds the whole set
    h.advance(INTERVAL)
    assert h.keys("dirty/") == [] and h.value("dirty").chunks == 0
    shown = {
        "|".join(
            str(r[f] or "all")
            for f in ("kpi", "window", "period_start", "dimension", "dimension_value")
        )
        for r in h.out[topics.METRICS_KPI]
    }  # each cell published, emptied ones too
    assert marked <= shown  # and the CRR cells the publish round recomputes
    assert all(ident.startswith("crr|") for ident in shown - marked)


def test_a_quiet_new_day_publishes_its_retention_without_any_event():
    h = harness()
    h.send(*events())
    h.advance(INTERVAL)
    days = {r["period_start"] for r in h.out[topics.METRICS_KPI] if r["kpi"] == "crr"}
    tomorrow = (NOW + timedelta(days=1)).date().isoformat()
    assert tomorrow not in days
    h.clock.advance(timedelta(days=1))  # the day changes; no event arrives
    h.advance(INTERVAL)
    days = {r["period_start"] for r in h.out[topics.METRICS_KPI] if r["kpi"] == "crr"}
    assert tomorrow in days


def test_a_case_is_retracted_as_it_was_counted_after_the_calendar_changed():
    def runtime_with(seconds: float, clock: FakeClock):
        return metrics_runtime(
            SETTINGS,
            NO_DATABASE,
            tz=TZ,
            business_seconds=lambda start, end: seconds,
            today=clock,
            publish_interval_s=SETTINGS.publish_interval_s,
            clock=clock,
        )

    clock = FakeClock(NOW)
    h = RuleHarness(runtime_with(100.0, clock), clock)
    at = "2026-12-01T09:00:00+07:00"
    h.send(parsed(s.classified("c1", "u1", at, channel="zalo", legal_field="land")))
    h.send(parsed(s.care_completed("c1", at)))
    h.runtime = runtime_with(200.0, clock)  # the calendar file changed, the service restarted
    h.send(parsed(s.assigned("c1", at, "law-1", "land")))  # the case's facts move (a lawyer)
    h.advance(INTERVAL)
    rows = published(h)
    # Retracted as counted (100 s), counted again with today's calendar (200 s): never a
    # cell left with a count of 0 and a sum of -100.
    for key in ("frt_business|all|all|all|all", "frt_business|all|all|channel|zalo"):
        assert (rows[key]["count"], rows[key]["value"]) == (1, 200.0), key


def parsed(raw: dict) -> Event:
    """A wire event as its model."""
    return EVENT_MODELS[raw["event_type"]].model_validate(raw)


def test_a_cell_back_at_earlier_figures_in_a_later_round_gets_a_new_id():
    """A reader that deduplicates by event id sees every change (A, B, then A again), and
    a round fired again after a crash sends the ids it sent before."""
    key = ("open_cases", Window.ALL, None, "all", "all")
    one, two = KpiValue(1.0, 1.0, 1.0, 1, {}), KpiValue(2.0, 2.0, 1.0, 2, {})
    rounds = [NOW + INTERVAL * n for n in range(3)]
    sent = [
        kpi_event(key, value, producer="metrics", now=at, round_at=at)
        for value, at in zip((one, two, one), rounds, strict=True)
    ]
    assert len({e.event_id for e in sent}) == 3
    refired = kpi_event(key, one, producer="metrics", now=rounds[0] + INTERVAL, round_at=rounds[0])
    assert refired.event_id == sent[0].event_id
