"""The synthetic feed of the metrics memory benchmark is a valid, complete life cycle."""

from zoneinfo import ZoneInfo

from bench.metrics_growth import END, EVENTS_PER_CASE, case_entries
from services.metrics.engine import MetricsEngine
from services.metrics.windows import Window
from shared.clock import FakeClock


def test_every_synthetic_case_counts_as_contacted_resolved_contracted_and_surveyed():
    engine = MetricsEngine(ZoneInfo("Asia/Ho_Chi_Minh"), clock=FakeClock(END))
    for n in range(60):
        entries = case_entries(n)
        assert len(entries) == EVENTS_PER_CASE
        assert all(engine.ingest(e) for e in entries)
        assert not engine.ingest(entries[0])  # a duplicate counts once

    def all_time(kpi: str):
        return engine.cells[(kpi, Window.ALL, None, "all", "all")]

    assert all_time("tft").numerator == 60
    assert all_time("resolved_cases").numerator == 60
    assert (
        all_time("survey_response_rate").numerator,
        all_time("survey_response_rate").denominator,
    ) == (60, 60)
    assert all_time("revenue_vnd").numerator == sum(3_000_000 + n % 7 * 500_000 for n in range(60))
    assert ("open_cases", Window.ALL, None, "all", "all") not in engine.cells
