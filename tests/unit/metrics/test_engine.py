"""The engine: exact under duplicates and any delivery order; the live loop over a fake store."""

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from faststream.kafka import TestKafkaBroker
from hypothesis import given, settings
from hypothesis import strategies as st

from services.metrics.api import rows_as_csv, select_kpis
from services.metrics.app import MetricsSettings
from services.metrics.domain import CaseEntry, CustomerMerge, entry_of
from services.metrics.engine import MetricsEngine
from services.metrics.handlers import build_router
from services.metrics.live import Checkpointer, KpiPublisher
from services.metrics.report import format_value, kpi_table
from shared.clock import FakeClock
from shared.delivery import DeliveryGuard
from shared.events import EVENT_MODELS
from shared.kafka import make_broker
from shared.logging import configure_logging
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


class FakeStore:
    """MetricsStore in memory."""

    def __init__(self) -> None:
        self.entries: dict[str, CaseEntry] = {}
        self.merges: dict[str, CustomerMerge] = {}
        self.kpis: dict = {}

    async def add(self, *, entries: list, merges: list) -> None:
        self.entries.update({e.id: e for e in entries})
        self.merges.update({m.id: m for m in merges})

    async def put_kpis(self, values: dict) -> None:
        for key, value in values.items():
            self.kpis[key] = value

    async def stream_entries(self):
        for entry in sorted(self.entries.values(), key=lambda e: e.case_id):
            yield entry

    async def case_entries(self, case_id: str) -> list:
        return [e for e in self.entries.values() if e.case_id == case_id]

    async def load_merges(self) -> list:
        return list(self.merges.values())


async def test_handlers_store_each_event_once_and_publish_changed_values_once():
    settings = MetricsSettings()
    store = FakeStore()
    engine = MetricsEngine(TZ, clock=CLOCK)
    checkpointer = Checkpointer(engine, store)  # type: ignore[arg-type]
    router, publish = build_router(settings, engine, checkpointer)
    broker = make_broker(settings, configure_logging("metrics"), DeliveryGuard(settings))
    broker.include_router(router)
    messages: list[dict] = []

    @broker.subscriber("metrics.kpi")
    async def sink(message: dict) -> None:
        messages.append(message)

    publisher = KpiPublisher(checkpointer, publish, interval_s=3600)
    contact = s.classified(
        "case-1", "cus-1", "2026-11-28T09:00:00+07:00", channel="zalo", legal_field="land"
    )
    await checkpointer.start()
    try:
        async with TestKafkaBroker(broker) as test_broker:
            await test_broker.publish(contact, topic="case.classified")
            await test_broker.publish(contact, topic="case.classified")  # a redelivery
            assert list(store.entries) == [contact["event_id"]]
            sent = await publisher.publish_changes()
            assert sent > 0 and await publisher.publish_changes() == 0
    finally:
        await checkpointer.stop()
    tft = [m for m in messages if m["kpi"] == "tft" and m["dimension_value"] == "zalo"]
    assert {m["window"] for m in tft} == {"day", "week", "month", "all"}
    assert all(m["value"] == 1 and m["count"] == 1 for m in tft)
    assert "cus-1" not in str(messages) and s.PERSONAL["name"] not in str(messages)
    restored = MetricsEngine(TZ, clock=CLOCK)
    await Checkpointer(restored, store).restore()  # type: ignore[arg-type]
    assert restored.cells == engine.cells


def test_the_api_filters_rows_and_writes_csv():
    engine = engine_after(GOLDEN)
    rows = select_kpis(engine, {"kpi": ["nps,ces"], "window": ["all"], "dimension": ["all"]})
    assert [(r["kpi"], r["value"], r["unit"]) for r in rows] == [
        ("ces", 3.5, "score"),
        ("nps", 0.0, "percent"),
    ]
    november = select_kpis(
        engine,
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


class FlakyStore(FakeStore):
    """A store whose first write fails, as a database outage would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def add(self, *, entries: list, merges: list) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unreachable")
        await super().add(entries=entries, merges=merges)


async def test_a_failed_checkpoint_keeps_the_entry_for_the_redelivery():
    store = FlakyStore()
    engine = MetricsEngine(TZ, clock=CLOCK)
    checkpointer = Checkpointer(engine, store)  # type: ignore[arg-type]
    contact = parsed(
        s.classified(
            "case-1", "cus-1", "2026-11-28T09:00:00+07:00", channel="zalo", legal_field="land"
        )
    )
    await checkpointer.start()
    try:
        assert engine.ingest(entry_of(contact))
        with pytest.raises(ConnectionError):
            await checkpointer.durable()  # the handler fails: its offset is not committed
        assert not engine.ingest(entry_of(contact))  # the redelivery is a duplicate in memory
        await checkpointer.durable()  # ... and still waits until the entry is stored
    finally:
        await checkpointer.stop()
    assert list(store.entries) == [str(contact.event_id)]
    restored = MetricsEngine(TZ, clock=CLOCK)
    await Checkpointer(restored, store).restore()  # type: ignore[arg-type]
    engine.refresh_crr()
    assert restored.cells == engine.cells


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 4))
async def test_cases_set_aside_and_brought_back_leave_every_cell_exact(rng, max_cases):
    events = GOLDEN * 2  # every event delivered twice
    rng.shuffle(events)
    store = FakeStore()
    engine = MetricsEngine(
        TZ,
        clock=CLOCK,
        business_seconds=lambda a, b: (b - a).total_seconds() / 2,
        max_cases=max_cases,
    )
    checkpointer = Checkpointer(engine, store)  # type: ignore[arg-type]
    for event in events:
        entry = entry_of(event)
        await checkpointer.ensure_sheet(entry)
        engine.ingest(entry)
        if rng.random() < 0.5:
            await checkpointer.checkpoint()  # stores, then sets aside beyond max_cases
    await checkpointer.checkpoint()
    engine.refresh_crr()
    assert engine.evicted, "some cases were set aside and brought back"
    assert len(engine.sheets) <= max_cases
    assert engine.cells == engine_after(GOLDEN).cells

    restarted = MetricsEngine(
        TZ,
        clock=CLOCK,
        business_seconds=lambda a, b: (b - a).total_seconds() / 2,
        max_cases=max_cases,
    )
    await Checkpointer(restarted, store).restore()  # type: ignore[arg-type]
    assert len(restarted.sheets) <= max_cases
    assert restarted.cells == engine.cells


def test_an_entry_for_a_case_set_aside_is_refused_until_its_sheet_is_back():
    engine = MetricsEngine(TZ, clock=CLOCK, max_cases=1)
    first, second = GOLDEN[0], next(e for e in GOLDEN if e.case_id != GOLDEN[0].case_id)
    engine.ingest(entry_of(first))
    engine.ingest(entry_of(second))
    engine.take_new()  # as a checkpoint does once they are stored
    assert engine.evict() == 1
    assert engine.needs_sheet(entry_of(first)) == first.case_id
    with pytest.raises(LookupError):
        engine.ingest(entry_of(first))
