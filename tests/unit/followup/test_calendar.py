"""The care calendar: next care slot and time inside windows (shared/calendar.py)."""

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.calendar import CareCalendar, load_calendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CONFIG = Path(__file__).parents[3] / "deploy" / "config" / "care_windows.yaml"

# 2026-11-23 is a Monday; 2026-11-28 a Saturday; 2026-12-31 a Thursday. Hand-picked
# holidays only (no country's public holidays): test_public_holidays.py covers those.
calendar = CareCalendar(country=None, extra_days_off=[date(2026, 11, 25), date(2027, 1, 1)])


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=VN)


@pytest.mark.parametrize(
    ("moment", "slot"),
    [
        (vn(2026, 11, 23, 0, 0), vn(2026, 11, 23, 9, 0)),
        (vn(2026, 11, 23, 8, 59), vn(2026, 11, 23, 9, 0)),
        (vn(2026, 11, 23, 8, 59, 59), vn(2026, 11, 23, 9, 0)),
        (vn(2026, 11, 23, 9, 0), vn(2026, 11, 23, 9, 0)),
        (vn(2026, 11, 23, 10, 17), vn(2026, 11, 23, 10, 17)),
        (vn(2026, 11, 23, 10, 59, 59), vn(2026, 11, 23, 10, 59, 59)),
        (vn(2026, 11, 23, 11, 0), vn(2026, 11, 23, 14, 30)),
        (vn(2026, 11, 23, 12, 0), vn(2026, 11, 23, 14, 30)),
        (vn(2026, 11, 23, 14, 29), vn(2026, 11, 23, 14, 30)),
        (vn(2026, 11, 23, 14, 30), vn(2026, 11, 23, 14, 30)),
        (vn(2026, 11, 23, 16, 29), vn(2026, 11, 23, 16, 29)),
        (vn(2026, 11, 23, 16, 30), vn(2026, 11, 24, 9, 0)),
        (vn(2026, 11, 23, 23, 59), vn(2026, 11, 24, 9, 0)),
    ],
    ids=lambda v: v.strftime("%a %H:%M:%S"),
)
def test_next_care_slot_on_a_working_day(moment: datetime, slot: datetime) -> None:
    assert calendar.next_care_slot(moment) == slot


def test_microseconds_inside_a_window_stay_as_they_are() -> None:
    moment = vn(2026, 11, 23, 9, 30) + timedelta(microseconds=5)
    assert calendar.next_care_slot(moment) == moment


def test_saturday_is_a_working_day() -> None:
    assert calendar.next_care_slot(vn(2026, 11, 28, 7, 0)) == vn(2026, 11, 28, 9, 0)
    assert calendar.next_care_slot(vn(2026, 11, 28, 15, 0)) == vn(2026, 11, 28, 15, 0)


def test_saturday_evening_moves_to_monday_morning() -> None:
    assert calendar.next_care_slot(vn(2026, 11, 28, 16, 30)) == vn(2026, 11, 30, 9, 0)
    assert calendar.next_care_slot(vn(2026, 11, 28, 20, 0)) == vn(2026, 11, 30, 9, 0)


def test_sunday_moves_to_monday_morning() -> None:
    assert calendar.next_care_slot(vn(2026, 11, 29, 10, 0)) == vn(2026, 11, 30, 9, 0)


def test_a_holiday_is_skipped() -> None:
    # Wednesday 2026-11-25 is a holiday in this calendar.
    assert calendar.next_care_slot(vn(2026, 11, 24, 17, 0)) == vn(2026, 11, 26, 9, 0)
    assert calendar.next_care_slot(vn(2026, 11, 25, 10, 0)) == vn(2026, 11, 26, 9, 0)


def test_a_holiday_before_a_weekend_skips_to_the_next_working_day() -> None:
    friday_holiday = CareCalendar(holidays=[date(2026, 11, 27), date(2026, 11, 28)])
    assert friday_holiday.next_care_slot(vn(2026, 11, 26, 16, 45)) == vn(2026, 11, 30, 9, 0)


def test_across_months() -> None:
    # Monday 2026-11-30 evening → Tuesday 2026-12-01 morning.
    assert calendar.next_care_slot(vn(2026, 11, 30, 18, 0)) == vn(2026, 12, 1, 9, 0)


def test_across_years_and_past_new_year_holiday() -> None:
    # Thursday 2026-12-31 evening; 2027-01-01 (Friday) is a holiday → Saturday 2027-01-02.
    assert calendar.next_care_slot(vn(2026, 12, 31, 16, 30)) == vn(2027, 1, 2, 9, 0)


def test_moment_given_in_utc() -> None:
    # 01:59 UTC = 08:59 in Vietnam (UTC+7).
    assert calendar.next_care_slot(datetime(2026, 11, 23, 1, 59, tzinfo=UTC)) == vn(
        2026, 11, 23, 9, 0
    )
    # 04:00 UTC = 11:00 in Vietnam: outside, the afternoon window.
    assert calendar.next_care_slot(datetime(2026, 11, 23, 4, 0, tzinfo=UTC)) == vn(
        2026, 11, 23, 14, 30
    )


def test_utc_date_differs_from_local_date() -> None:
    # Saturday 2026-11-28 20:00 UTC is already Sunday 03:00 in Vietnam → Monday.
    assert calendar.next_care_slot(datetime(2026, 11, 28, 20, 0, tzinfo=UTC)) == vn(
        2026, 11, 30, 9, 0
    )
    # Sunday 2026-11-29 23:00 UTC is Monday 06:00 in Vietnam → Monday 09:00.
    assert calendar.next_care_slot(datetime(2026, 11, 29, 23, 0, tzinfo=UTC)) == vn(
        2026, 11, 30, 9, 0
    )


def test_moment_given_in_another_timezone() -> None:
    paris = ZoneInfo("Europe/Paris")  # UTC+1 in November
    # 03:30 Paris = 09:30 Vietnam: inside.
    moment = datetime(2026, 11, 23, 3, 30, tzinfo=paris)
    assert calendar.next_care_slot(moment) == vn(2026, 11, 23, 9, 30)
    tokyo = timezone(timedelta(hours=9))
    # 13:00 in UTC+9 = 11:00 in Vietnam: outside.
    assert calendar.next_care_slot(datetime(2026, 11, 23, 13, 0, tzinfo=tokyo)) == vn(
        2026, 11, 23, 14, 30
    )


def test_slot_is_tz_aware_in_the_calendar_timezone() -> None:
    slot = calendar.next_care_slot(datetime(2026, 11, 23, 0, 0, tzinfo=UTC))
    assert slot.tzinfo is not None
    assert slot.utcoffset() == timedelta(hours=7)


def test_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        calendar.next_care_slot(datetime(2026, 11, 23, 9, 0))


def test_first_slot_on_or_after_a_day() -> None:
    assert calendar.first_slot_on_or_after(date(2026, 11, 23)) == vn(2026, 11, 23, 9, 0)
    assert calendar.first_slot_on_or_after(date(2026, 11, 29)) == vn(2026, 11, 30, 9, 0)
    assert calendar.first_slot_on_or_after(date(2026, 11, 25)) == vn(2026, 11, 26, 9, 0)


def test_is_open_follows_half_open_windows() -> None:
    assert calendar.is_open(vn(2026, 11, 23, 9, 0))
    assert not calendar.is_open(vn(2026, 11, 23, 11, 0))
    assert not calendar.is_open(vn(2026, 11, 29, 9, 30))


# --- business_seconds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "seconds"),
    [
        (vn(2026, 11, 23, 9, 0), vn(2026, 11, 23, 9, 10), 600),
        (vn(2026, 11, 23, 8, 0), vn(2026, 11, 23, 9, 10), 600),
        (vn(2026, 11, 23, 10, 50), vn(2026, 11, 23, 14, 40), 1200),
        (vn(2026, 11, 23, 11, 0), vn(2026, 11, 23, 14, 30), 0),
        (vn(2026, 11, 23, 0, 0), vn(2026, 11, 24, 0, 0), 4 * 3600),
        (vn(2026, 11, 23, 16, 29), vn(2026, 11, 24, 9, 1), 120),
        (vn(2026, 11, 28, 16, 0), vn(2026, 11, 30, 9, 30), 3600),  # Sat → Mon
        (vn(2026, 11, 29, 0, 0), vn(2026, 11, 30, 0, 0), 0),  # Sunday
        (vn(2026, 11, 25, 0, 0), vn(2026, 11, 26, 0, 0), 0),  # holiday
        (vn(2026, 12, 31, 10, 0), vn(2027, 1, 2, 9, 30), 3600 + 7200 + 1800),  # new year
    ],
)
def test_business_seconds(start: datetime, end: datetime, seconds: float) -> None:
    assert calendar.business_seconds(start, end) == seconds


def test_business_seconds_of_a_week() -> None:
    # Mon 23 → Mon 30: six working days minus the Wednesday holiday, 4 h each.
    assert calendar.business_seconds(vn(2026, 11, 23), vn(2026, 11, 30)) == 5 * 4 * 3600


def test_business_seconds_empty_or_reversed_interval_is_zero() -> None:
    assert calendar.business_seconds(vn(2026, 11, 23, 9, 30), vn(2026, 11, 23, 9, 30)) == 0
    assert calendar.business_seconds(vn(2026, 11, 23, 10), vn(2026, 11, 23, 9, 30)) == 0


def test_business_seconds_with_bounds_in_utc() -> None:
    start = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 08:00 local
    end = datetime(2026, 11, 23, 7, 45, tzinfo=UTC)  # 14:45 local
    assert calendar.business_seconds(start, end) == 2 * 3600 + 15 * 60


def test_business_seconds_across_a_utc_midnight() -> None:
    # 16:00 UTC Saturday = 23:00 local; 03:00 UTC Monday = 10:00 local.
    start = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
    end = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    assert calendar.business_seconds(start, end) == 3600


moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


@given(moments)
def test_next_care_slot_is_open_not_earlier_and_nothing_open_in_between(t: datetime) -> None:
    slot = calendar.next_care_slot(t)
    assert slot >= t
    assert calendar.is_open(slot)
    assert calendar.business_seconds(t, slot) == 0


@given(moments, st.integers(min_value=0, max_value=20 * 86400), st.integers(0, 20 * 86400))
def test_business_seconds_adds_up_over_a_split(t: datetime, a: int, b: int) -> None:
    middle, end = t + timedelta(seconds=a), t + timedelta(seconds=a + b)
    whole = calendar.business_seconds(t, end)
    parts = calendar.business_seconds(t, middle) + calendar.business_seconds(middle, end)
    assert whole == pytest.approx(parts, abs=1e-6)
    assert 0 <= whole <= (end - t).total_seconds()


# --- configuration ------------------------------------------------------------------------


def test_defaults_are_the_firms_windows() -> None:
    default = CareCalendar()
    assert default.timezone == "Asia/Ho_Chi_Minh"
    assert [(w.start.isoformat(), w.end.isoformat()) for w in default.windows] == [
        ("09:00:00", "11:00:00"),
        ("14:30:00", "16:30:00"),
    ]
    assert default.working_days == [1, 2, 3, 4, 5, 6]


def test_the_deployed_config_loads() -> None:
    loaded = load_calendar(CONFIG)
    assert loaded.timezone == "Asia/Ho_Chi_Minh"
    assert loaded.windows == CareCalendar().windows
    assert loaded.working_days == [1, 2, 3, 4, 5, 6]
    assert loaded.country == "VN"
    assert not loaded.is_working_day(date(2026, 9, 2))


def test_config_with_names_numbers_and_dicts(tmp_path: Path) -> None:
    path = tmp_path / "cal.yaml"
    path.write_text(
        "timezone: Europe/Paris\n"
        "windows:\n  - {start: '08:00', end: '12:00'}\n"
        "working_days: [Monday, 2, wed]\n"
        "holidays: [2026-11-24]\n"
    )
    loaded = load_calendar(path)
    assert loaded.working_days == [1, 2, 3]
    paris = ZoneInfo("Europe/Paris")
    assert loaded.next_care_slot(datetime(2026, 11, 23, 13, 0, tzinfo=paris)) == datetime(
        2026, 11, 25, 8, 0, tzinfo=paris
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"timezone": "Mars/Olympus"},
        {"windows": ["11:00-09:00"]},
        {"windows": ["09:00"]},
        {"windows": ["09:00-11:00", "10:00-12:00"]},
        {"windows": [{"start": 540, "end": 660}]},
        {"windows": []},
        {"working_days": []},
        {"working_days": [0]},
        {"working_days": ["someday"]},
    ],
)
def test_bad_configuration_is_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        CareCalendar.model_validate(bad)


def test_calendar_without_any_open_day_is_an_error_not_a_hang() -> None:
    closed = CareCalendar(working_days=[1], holidays=[])
    every_monday = [vn(2026, 11, 23) + timedelta(weeks=k) for k in range(170)]
    closed_forever = CareCalendar(working_days=[1], holidays=[d.date() for d in every_monday])
    assert closed.next_care_slot(vn(2026, 11, 24)) == vn(2026, 11, 30, 9, 0)
    with pytest.raises(ValueError, match="no care window"):
        closed_forever.next_care_slot(vn(2026, 11, 22))


@pytest.mark.parametrize(
    ("moment", "opening"),
    [
        (vn(2026, 11, 23, 8, 0), vn(2026, 11, 23, 9, 0)),
        (vn(2026, 11, 23, 9, 0), vn(2026, 11, 23, 14, 30)),
        (vn(2026, 11, 23, 9, 30), vn(2026, 11, 23, 14, 30)),
        (vn(2026, 11, 23, 14, 30), vn(2026, 11, 24, 9, 0)),
        (vn(2026, 11, 24, 15, 0), vn(2026, 11, 26, 9, 0)),  # holiday in between
        (vn(2026, 11, 28, 15, 0), vn(2026, 11, 30, 9, 0)),  # Saturday afternoon
    ],
)
def test_next_window_opening_is_strictly_later(moment: datetime, opening: datetime) -> None:
    assert calendar.next_window_opening(moment) == opening
