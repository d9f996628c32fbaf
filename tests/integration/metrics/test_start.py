"""Metrics' start: the care calendar frt_business counts on is announced once."""

import pytest
import structlog

from services.metrics.app import MetricsSettings, create_app

pytestmark = pytest.mark.integration


async def test_start_logs_the_next_twelve_months_holidays_once(infra, settings_for, run_app):
    app = create_app(settings_for(MetricsSettings))
    with structlog.testing.capture_logs() as logs:
        await run_app(app)
    loaded = [e for e in logs if e["event"] == "care_calendar_loaded"]
    assert len(loaded) == 1
    assert loaded[0]["country"] == "VN"
    assert loaded[0]["holidays_next_12_months"] >= 10  # Vietnam has 11 public holidays a year
