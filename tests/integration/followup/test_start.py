"""Followup's start: the care calendar it loaded is announced once."""

import pytest
import structlog

from services.followup.app import FollowupSettings, create_app
from shared.clock import FakeClock
from tests.unit.followup.builders import vn

pytestmark = pytest.mark.integration


async def test_start_logs_the_next_twelve_months_holidays_once(infra, settings_for, run_app):
    app = create_app(settings_for(FollowupSettings), clock=FakeClock(vn(2026, 12, 1, 8, 0)))
    with structlog.testing.capture_logs() as logs:
        await run_app(app)
    loaded = [e for e in logs if e["event"] == "care_calendar_loaded"]
    assert len(loaded) == 1
    assert loaded[0]["country"] == "VN"
    assert loaded[0]["holidays_next_12_months"] == 15  # 2027: New Year, Tết (7), 7 more
