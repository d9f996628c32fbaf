"""Metrics' wiring: frt_business counts time on the same care calendar as followup."""

import orjson

from services.followup.app import FollowupSettings
from services.metrics.app import MetricsSettings, build_engine
from services.metrics.domain import entry_of
from services.metrics.kpis import cell_row
from shared.events import EVENT_MODELS
from tests.integration.metrics import scenario as s


def test_followup_and_metrics_read_the_same_calendar_file():
    assert MetricsSettings().care_calendar_path == FollowupSettings().care_calendar_path


def test_frt_business_skips_tet_2027():
    """Opened Wed 3 Feb 2027 16:00, reached Thu 11 Feb 09:30: 30 + 30 minutes of care windows."""
    engine = build_engine(MetricsSettings())
    for raw in [
        s.classified(
            "case-tet", "cus-tet", "2027-02-03T16:00:00+07:00", channel="zalo", legal_field="land"
        ),
        s.care_completed("case-tet", "2027-02-11T09:30:00+07:00"),
    ]:
        engine.ingest(
            entry_of(EVENT_MODELS[raw["event_type"]].model_validate_json(orjson.dumps(raw)))
        )
    [row] = [
        cell_row(k, c)
        for k, c in engine.cells.items()
        if k[0] == "frt_business" and k[1] == "all" and k[3] == "all"
    ]
    assert row["value"] == 3600
