"""Followup's settings and clock wiring."""

from datetime import UTC, datetime, timedelta

from services.followup.app import DEFAULT_CALENDAR, FollowupSettings, OffsetClock
from shared.calendar import load_calendar


def test_settings_read_lexcare_variables(monkeypatch):
    monkeypatch.setenv("LEXCARE_CARE_EVERY_DAYS", "3")
    monkeypatch.setenv("LEXCARE_MAX_RETRIES", "2")
    monkeypatch.setenv("LEXCARE_FOLLOWUP_CLOCK_OFFSET_S", "-60")
    settings = FollowupSettings()
    assert settings.care_every_days == 3
    assert settings.max_retries == 2
    assert settings.followup_clock_offset_s == -60
    assert settings.http_port == 8083
    assert settings.mongo_db.endswith("_followup")


def test_the_default_calendar_file_exists_and_loads():
    assert DEFAULT_CALENDAR.is_file()
    assert load_calendar(DEFAULT_CALENDAR).timezone == "Asia/Ho_Chi_Minh"


def test_offset_clock_is_the_system_time_shifted():
    clock = OffsetClock(timedelta(days=-3))
    shifted = clock.now()
    assert shifted.tzinfo is not None
    assert datetime.now(UTC) - shifted > timedelta(days=3) - timedelta(minutes=1)
