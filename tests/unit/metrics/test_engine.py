"""The reference engine: exact under duplicates and any delivery order; the API's filters."""

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.metrics.api import rows_as_csv, select_kpis
from services.metrics.domain import CaseChange, Fact, entry_of
from services.metrics.engine import MetricsEngine, Totals
from services.metrics.kpis import cell_row
from services.metrics.report import format_value, kpi_table
from services.metrics.windows import Window
from shared.clock import FakeClock
from shared.events import EVENT_MODELS
from tests.integration.metrics import scenario as s
from tests.integration.metrics.test_golden_scenario import NOW, golden_events

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CLOCK = FakeClock(NOW)


def parsed(raw: dict):
    """A wire event as its model."""
    return EVENT_MODELS[raw["event_type"]].model_validate_json(orjson.dumps(raw))


def engine_after(events: list) -> MetricsEngine:
    """An engine fed `events` in the given order."""
    engine = MetricsEngine(
        TZ, clock=CLOCK, business_seconds=lambda a, b: (b - a).total_seconds() / 2
    )
    for event in events:
        engine.ingest(entry_of(event))
    engine.refresh_crr()
    return engine


GOLDEN = [parsed(raw) for raw in golden_events()]


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(0, len(GOLDEN)))
def test_any_order_with_duplicates_gives_the_same_cells(rng: random.Random, repeats: int):
    reference = engine_after(GOLDEN).cells
    shuffled = GOLDEN + [rng.choice(GOLDEN) for _ in range(repeats)]
    rng.shuffle(shuffled)
    assert engine_after(shuffled).cells == reference


def test_a_late_event_moves_its_contribution_to_its_own_window():
    events = [
        parsed(
            s.classified(
                "c1", "u1", "2026-12-01T09:00:00+07:00", channel="zalo", legal_field="land"
            )
        )
    ]
    engine = engine_after(events)
    assert engine.cells[("tft", "month", datetime(2026, 12, 1).date(), "all", "all")].count == 1
    engine.ingest(
        entry_of(
            parsed(
                s.classified(
                    "c2", "u2", "2026-11-15T09:00:00+07:00", channel="zalo", legal_field="land"
                )
            )
        )
    )
    assert engine.cells[("tft", "month", datetime(2026, 11, 1).date(), "all", "all")].count == 1
    assert engine.cells[("tft", "month", datetime(2026, 12, 1).date(), "all", "all")].count == 1


def test_the_api_filters_rows_and_writes_csv():
    engine = engine_after(GOLDEN)
    board = [cell_row(key, cell) for key, cell in engine.cells.items()]
    rows = select_kpis(board, {"kpi": ["nps,ces"], "window": ["all"], "dimension": ["all"]})
    assert [(r["kpi"], r["value"], r["unit"]) for r in rows] == [
        ("ces", 3.5, "score"),
        ("nps", 0.0, "percent"),
    ]
    november = select_kpis(
        board,
        {
            "kpi": ["tft"],
            "from": ["2026-11-01"],
            "to": ["2026-11-30"],
            "window": ["month"],
            "dimension": ["channel"],
            "value": ["zalo"],
        },
    )
    assert [(r["period_start"], r["value"]) for r in november] == [("2026-11-01", 2.0)]
    csv = rows_as_csv(rows).decode().splitlines()
    assert (
        csv[0] == "kpi,window,period_start,dimension,dimension_value,value,unit,numerator,"
        "denominator,count,extra"
    )
    assert csv[1].startswith("ces,all,,all,all,3.5,score,7.0,2.0,2,")


def test_the_terminal_table_shows_durations_and_percentages_readably():
    assert format_value("frt", 5400.0) == "1:30:00"
    assert format_value("complaint_rate", 28.5714) == "28.6 %"
    assert format_value("revenue_vnd", 8_000_000.0) == "8,000,000"
    assert format_value("nps", None) == "-"
    row = {"kpi": "tft", "dimension": "all", "value": 4.0, "numerator": 4.0, "denominator": 1.0}
    gauge = {**row, "kpi": "open_cases", "value": 2.0}
    table = kpi_table([row], [row], [row, gauge]).splitlines()
    assert table[0].split() == [
        "kpi",
        "today",
        "this",
        "month",
        "all",
        "time",
        "numerator",
        "/",
        "denominator",
        "(month)",
    ]
    assert next(line for line in table if line.startswith("tft")).split() == [
        "tft",
        "4",
        "4",
        "4",
        "4",
        "/",
        "1",
    ]
    assert next(line for line in table if line.startswith("open_cases")).split() == [
        "open_cases",
        "-",
        "-",
        "2",
        "-",
    ]


def test_a_change_touches_only_the_cells_whose_sums_move():
    """A case assigned to a lawyer retracts its facts and adds them again with the lawyer:
    the cells of every period's "all" and of its unchanged channel are neither rewritten
    nor marked for publishing; the lawyer's cells are, and every sum is exact."""
    at = datetime(2026, 3, 4, 9, tzinfo=TZ)
    before = Fact("open_cases", None, (("channel", "zalo"),), numerator=1, sample_ms=1_500)
    after = Fact(
        "open_cases", None, (("channel", "zalo"), ("lawyer", "ls-01")), numerator=1, sample_ms=1_500
    )
    timed = Fact("tft", at, (("channel", "zalo"),), numerator=1)
    totals = Totals(TZ)
    totals.apply(CaseChange("c1", (), ((before, 1), (timed, 1)), None, "cu-1"))
    first = dict(totals.cells)
    assert len(totals.take_dirty()) == len(first) == 2 + 4 * 2  # all-time ×2; 4 periods ×2
    totals.apply(CaseChange("c1", ((before, 1),), ((after, 1),), "cu-1", "cu-1"))
    lawyer = ("open_cases", Window.ALL, None, "lawyer", "ls-01")
    assert totals.take_dirty() == {lawyer}
    assert {k: v for k, v in totals.cells.items() if k != lawyer} == first
    cell = totals.cells[lawyer]
    assert (cell.count, cell.numerator, sum(cell.sketch.values())) == (1, 1, 1)
    totals.apply(CaseChange("c1", ((after, 1), (timed, 1)), (), "cu-1", "cu-1"))
    assert totals.cells == {} and len(totals.take_dirty()) == len(first) + 1
