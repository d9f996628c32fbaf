"""Public holidays from the `holidays` package and the firm's own changes (shared/calendar.py)."""

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.calendar import CareCalendar, load_calendar, log_calendar_loaded

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CONFIG = Path(__file__).parents[3] / "deploy" / "config" / "care_windows.yaml"
deployed = load_calendar(CONFIG)


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=VN)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "care_windows.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the deployed calendar knows every year's public holidays -----------------------------


@pytest.mark.parametrize(
    "day",
    [
        *days(date(2027, 2, 4), date(2027, 2, 10)),  # Tết 2027 (Thu 4 – Wed 10 Feb)
        *days(date(2028, 1, 24), date(2028, 1, 29)),  # Tết 2028 (Mon 24 – Sat 29 Jan)
        date(2027, 4, 16),  # Giỗ Tổ Hùng Vương 2027
        date(2026, 11, 24),  # Ngày Văn hóa Việt Nam, a public holiday since 2026
        date(2026, 8, 31),  # day off swapped with Saturday 22 Aug 2026
        date(2027, 1, 1),
        date(2027, 9, 2),
    ],
    ids=str,
)
def test_public_holidays_are_not_working_days(day: date) -> None:
    assert not deployed.is_working_day(day)
    assert deployed.windows_on(day) == []


@pytest.mark.parametrize("day", [date(2027, 2, 3), date(2027, 2, 11), date(2028, 1, 31)], ids=str)
def test_the_days_around_tet_are_working_days(day: date) -> None:
    assert deployed.is_working_day(day)


def test_a_contact_due_before_tet_2027_waits_until_after_it() -> None:
    assert deployed.next_care_slot(vn(2027, 2, 3, 17, 0)) == vn(2027, 2, 11, 9, 0)


def test_no_business_time_passes_during_tet_2027() -> None:
    assert deployed.business_seconds(vn(2027, 2, 3, 16, 30), vn(2027, 2, 11, 9, 0)) == 0


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31)))
def test_the_next_slot_never_falls_on_a_public_holiday(t: datetime) -> None:
    moment = t.replace(tzinfo=VN)
    slot = deployed.next_care_slot(moment)
    assert slot >= moment
    assert deployed.is_open(slot)
    assert not deployed.is_holiday(slot.date())
    assert deployed.business_seconds(moment, slot) == 0


# --- the firm's own changes ----------------------------------------------------------------


FIRM = """\
country: VN
working_days: [mon, tue, wed, thu, fri, sat]
extra_days_off:
  - 2027-01-02  # Saturday after New Year's Day: the firm bridges it...
extra_working_days:
  - 2027-01-10  # ...and works Sunday 10 January instead
  - 2028-01-03  # the Monday off in lieu of Saturday 1 January 2028: the firm works
"""


def test_a_firms_extra_day_off_is_honoured(tmp_path: Path) -> None:
    firm = load_calendar(write(tmp_path, FIRM))
    assert not firm.is_working_day(date(2027, 1, 2))
    assert firm.next_care_slot(vn(2026, 12, 31, 17, 0)) == vn(2027, 1, 4, 9, 0)


def test_a_replacement_working_day_is_honoured(tmp_path: Path) -> None:
    firm = load_calendar(write(tmp_path, FIRM))
    assert firm.is_working_day(date(2027, 1, 10))  # a Sunday
    assert firm.next_care_slot(vn(2027, 1, 9, 17, 0)) == vn(2027, 1, 10, 9, 0)
    assert firm.business_seconds(vn(2027, 1, 10), vn(2027, 1, 11)) == 4 * 3600


def test_a_public_day_off_in_lieu_can_be_worked(tmp_path: Path) -> None:
    firm = load_calendar(write(tmp_path, FIRM))
    assert not deployed.is_working_day(date(2028, 1, 3))
    assert firm.is_working_day(date(2028, 1, 3))
    assert not firm.is_working_day(date(2028, 1, 1))  # the holiday itself stays


def test_public_holidays_stay_under_the_firms_changes(tmp_path: Path) -> None:
    firm = load_calendar(write(tmp_path, FIRM))
    assert not firm.is_working_day(date(2027, 2, 8))
    assert not firm.is_working_day(date(2026, 11, 24))


def test_the_old_holidays_key_still_reads_as_extra_days_off(tmp_path: Path) -> None:
    old = load_calendar(write(tmp_path, "holidays:\n  - 2026-12-24\n"))
    assert old.extra_days_off == [date(2026, 12, 24)]
    assert not old.is_working_day(date(2026, 12, 24))
    assert not old.is_working_day(date(2027, 2, 5))  # the public holidays come on top


def test_no_country_means_no_public_holidays(tmp_path: Path) -> None:
    none = load_calendar(write(tmp_path, "country: null\nextra_days_off: [2026-12-24]\n"))
    assert none.is_working_day(date(2026, 11, 24))
    assert not none.is_working_day(date(2026, 12, 24))
    assert CareCalendar(country="none").is_working_day(date(2027, 2, 8))


def test_another_countrys_public_holidays(tmp_path: Path) -> None:
    fr = load_calendar(write(tmp_path, "country: fr\ntimezone: Europe/Paris\n"))
    assert fr.country == "FR"
    assert not fr.is_working_day(date(2027, 7, 14))
    assert fr.is_working_day(date(2027, 2, 8))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("country: XX\n", "unknown country 'XX'"),
        ("country: NO\n", "quote"),  # YAML 1.1 reads an unquoted NO (Norway) as false
        ("extra_day_off: [2027-01-02]\n", "extra_day_off"),
        ("extra_days_off: [tomorrow]\n", "extra_days_off"),
        ("extra_days_off: 2027-01-02\n", "extra_days_off"),
        (
            "extra_days_off: [2027-01-02]\nextra_working_days: [2027-01-02]\n",
            "2027-01-02 is both a day off and a working day",
        ),
        (
            "holidays: [2027-01-02]\nextra_days_off: [2027-01-03]\n",
            "`holidays` is the old name of `extra_days_off`",
        ),
    ],
)
def test_a_bad_calendar_file_is_refused_with_a_clear_error(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        load_calendar(write(tmp_path, text))


# --- what the services log at start --------------------------------------------------------


def test_the_next_twelve_months_holidays_are_logged_once() -> None:
    with structlog.testing.capture_logs() as logs:
        log_calendar_loaded(deployed, now=vn(2026, 12, 1, 8, 0))
    [entry] = [e for e in logs if e["event"] == "care_calendar_loaded"]
    # 2027: 1 Jan, Tết 4–10 Feb (7), 16 Apr, 30 Apr, 1 May, 3 May (in lieu), 2–3 Sep, 24 Nov.
    assert entry["holidays_next_12_months"] == 15
    assert entry["next_holiday"] == "2027-01-01"
    assert entry["country"] == "VN"
    assert entry["extra_days_off"] == 0
    assert entry["extra_working_days"] == 0
    assert entry["log_level"] == "info"


def test_the_firms_changes_count_in_the_logged_holidays(tmp_path: Path) -> None:
    firm = load_calendar(write(tmp_path, FIRM))
    with structlog.testing.capture_logs() as logs:
        log_calendar_loaded(firm, now=vn(2026, 12, 1, 8, 0))
    [entry] = logs
    assert entry["holidays_next_12_months"] == 16  # + Saturday 2 January 2027
    assert entry["extra_days_off"] == 1
    assert entry["extra_working_days"] == 2
