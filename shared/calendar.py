"""The care calendar: when the care team works (windows, working days, holidays).

Calendar arithmetic over configuration, shared by followup (when to contact a customer)
and metrics (first-response time counted only inside care windows). Windows are half-open
`[start, end)` in the calendar's timezone: 11:00 is already outside 09:00–11:00.

Public holidays come from the `holidays` package for the configured country, computed for
every year (lunar dates, days off in lieu, the government's swapped days it knows); the
configuration only adds the firm's own changes: extra days off and extra working days.
"""

from datetime import date, datetime, time, timedelta
from functools import cache, cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

log = structlog.get_logger("lexcare.calendar")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names in ISO order: Monday is 1, Sunday is 7."""

SEARCH_DAYS = 3 * 366
"""How far ahead a slot is looked for before the configuration is declared impossible."""


class CareWindow(BaseModel):
    """One daily window `[start, end)` in local time, written "09:00-11:00"."""

    model_config = ConfigDict(frozen=True)

    start: time = Field(description="Local opening time.", examples=["09:00"])
    end: time = Field(description="Local closing time (excluded).", examples=["11:00"])

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            start, sep, end = data.partition("-")
            if not sep:
                raise ValueError(f"window {data!r} is not written as HH:MM-HH:MM")
            return {"start": start.strip(), "end": end.strip()}
        return data

    @field_validator("start", "end", mode="before")
    @classmethod
    def _text_time(cls, value: Any) -> Any:
        if isinstance(value, int):  # YAML 1.1 reads an unquoted 09:00 as 540
            raise ValueError("write window times as quoted text, e.g. '09:00'")
        return value

    @model_validator(mode="after")
    def _opens_before_it_closes(self) -> "CareWindow":
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are local: no offset")
        if self.start >= self.end:
            raise ValueError(f"window {self.start}-{self.end} closes before it opens")
        return self


def _default_windows() -> list[CareWindow]:
    return [
        CareWindow(start=time(9), end=time(11)),
        CareWindow(start=time(14, 30), end=time(16, 30)),
    ]


@cache
def public_holidays(country: str, year: int) -> frozenset[date]:
    """The public holidays of `country` (ISO 3166 code) in `year`, days off in lieu included."""
    return frozenset(holidays.country_holidays(country, years=year))


class CareCalendar(BaseModel):
    """Care windows on working days in one timezone, minus holidays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = Field(default="Asia/Ho_Chi_Minh", description="IANA timezone of the windows.")
    windows: list[CareWindow] = Field(
        default_factory=_default_windows,
        min_length=1,
        description="Daily windows, e.g. ['09:00-11:00', '14:30-16:30'].",
    )
    working_days: list[int] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5, 6],
        min_length=1,
        description="ISO weekdays (1 = Monday) or names (mon..sun) the team works.",
    )
    country: str | None = Field(
        default="VN",
        description="ISO 3166 code whose public holidays are days off (None: no public holidays).",
        examples=["VN"],
    )
    extra_days_off: list[date] = Field(
        default_factory=list,
        description="The firm's own days off on top of the public holidays.",
    )
    extra_working_days: list[date] = Field(
        default_factory=list,
        description="Days the firm works although they are off by weekday or public holiday.",
    )

    @model_validator(mode="before")
    @classmethod
    def _old_holidays_key(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "holidays" not in data:
            return data
        if "extra_days_off" in data:
            raise ValueError(
                "`holidays` is the old name of `extra_days_off`: list the days in one of them"
            )
        data = dict(data)
        data["extra_days_off"] = data.pop("holidays")
        return data

    @field_validator("country", mode="before")
    @classmethod
    def _country_code(cls, value: Any) -> Any:
        if isinstance(value, bool):  # YAML 1.1 reads an unquoted NO (Norway) as false
            raise ValueError("quote the country code, e.g. 'NO'")
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        if isinstance(value, str):
            code = value.strip().upper()
            try:
                holidays.country_holidays(code)
            except NotImplementedError as e:
                raise ValueError(
                    f"unknown country {code!r}: an ISO 3166 code the holidays package knows "
                    "(e.g. VN), or none for no public holidays"
                ) from e
            return code
        return value

    @model_validator(mode="after")
    def _off_or_working_not_both(self) -> "CareCalendar":
        both = sorted(set(self.extra_days_off) & set(self.extra_working_days))
        if both:
            raise ValueError(f"{both[0]} is both a day off and a working day")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown timezone {value!r}") from e
        return value

    @field_validator("working_days", mode="before")
    @classmethod
    def _day_names(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        days = []
        for day in value:
            if isinstance(day, str) and day.strip().lower()[:3] in WEEKDAYS:
                day = WEEKDAYS.index(day.strip().lower()[:3]) + 1
            days.append(day)
        return days

    @field_validator("working_days")
    @classmethod
    def _iso_weekdays(cls, value: list[int]) -> list[int]:
        if any(not 1 <= day <= 7 for day in value):
            raise ValueError("working days are ISO weekdays 1 (Monday) .. 7 (Sunday)")
        return sorted(set(value))

    @field_validator("windows")
    @classmethod
    def _ordered_and_apart(cls, value: list[CareWindow]) -> list[CareWindow]:
        ordered = sorted(value, key=lambda w: w.start)
        for earlier, later in pairwise(ordered):
            if later.start < earlier.end:
                raise ValueError(f"windows overlap: {earlier.start} and {later.start}")
        return ordered

    @cached_property
    def tz(self) -> ZoneInfo:
        """The calendar's timezone."""
        return ZoneInfo(self.timezone)

    @cached_property
    def _days_off(self) -> frozenset[date]:
        return frozenset(self.extra_days_off)

    @cached_property
    def _days_on(self) -> frozenset[date]:
        return frozenset(self.extra_working_days)

    def is_holiday(self, day: date) -> bool:
        """True when `day` is a public holiday or a firm's day off it does not work."""
        if day in self._days_on:
            return False
        if day in self._days_off:
            return True
        return self.country is not None and day in public_holidays(self.country, day.year)

    def is_working_day(self, day: date) -> bool:
        """True when the team works on `day` (a working weekday, not a holiday, or an extra one)."""
        if day in self._days_on:
            return True
        return day.isoweekday() in self.working_days and not self.is_holiday(day)

    def holidays_between(self, first: date, end: date) -> list[date]:
        """The holidays in `[first, end)`, in order."""
        count = max((end - first).days, 0)
        return [d for d in (first + timedelta(days=k) for k in range(count)) if self.is_holiday(d)]

    def windows_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's windows as tz-aware `[start, end)` pairs (none on a day off)."""
        if not self.is_working_day(day):
            return []
        return [
            (datetime.combine(day, w.start, self.tz), datetime.combine(day, w.end, self.tz))
            for w in self.windows
        ]

    def is_open(self, moment: datetime) -> bool:
        """True when `moment` falls inside a window."""
        return self.next_care_slot(moment) == moment

    def next_care_slot(self, after: datetime) -> datetime:
        """The first moment inside a window at or after `after` (in the calendar's tz)."""
        local = _aware(after).astimezone(self.tz)
        day = local.date()
        for _ in range(SEARCH_DAYS):
            for start, end in self.windows_on(day):
                if local < end:
                    return max(local, start)
            day += timedelta(days=1)
        raise ValueError(f"no care window within {SEARCH_DAYS} days of {after.isoformat()}")

    def next_window_opening(self, after: datetime) -> datetime:
        """The opening of the first window that opens strictly after `after`."""
        local = _aware(after).astimezone(self.tz)
        day = local.date()
        for _ in range(SEARCH_DAYS):
            for start, _end in self.windows_on(day):
                if start > local:
                    return start
            day += timedelta(days=1)
        raise ValueError(f"no care window within {SEARCH_DAYS} days of {after.isoformat()}")

    def first_slot_on_or_after(self, day: date) -> datetime:
        """The opening of the first window of the first working day on or after `day`."""
        return self.next_care_slot(datetime.combine(day, time(0), self.tz))

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """The first moment at which `seconds` of window time have passed since `start`."""
        local = _aware(start).astimezone(self.tz)
        if seconds <= 0:
            return local
        left, day = timedelta(seconds=seconds), local.date()
        for _ in range(SEARCH_DAYS):
            for opens, closes in self.windows_on(day):
                begin = max(opens, local)
                if begin >= closes:
                    continue
                if left <= closes - begin:
                    return begin + left
                left -= closes - begin
            day += timedelta(days=1)
        raise ValueError(f"no care window within {SEARCH_DAYS} days of {start.isoformat()}")

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds of `[start, end)` that fall inside windows (0 when end <= start)."""
        start, end = _aware(start), _aware(end)
        if end <= start:
            return 0.0
        day, last = start.astimezone(self.tz).date(), end.astimezone(self.tz).date()
        total = timedelta(0)
        while day <= last:
            for opens, closes in self.windows_on(day):
                total += max(min(end, closes) - max(start, opens), timedelta(0))
            day += timedelta(days=1)
        return total.total_seconds()


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("care calendar needs tz-aware datetimes")
    return moment


def load_calendar(path: str | Path) -> CareCalendar:
    """Read a care calendar from YAML (see deploy/config/care_windows.yaml)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return CareCalendar.model_validate(data)


def log_calendar_loaded(calendar: CareCalendar, *, now: datetime) -> None:
    """Log where the holidays come from and how many fall in the next 12 months."""
    today = _aware(now).astimezone(calendar.tz).date()
    ahead = calendar.holidays_between(today, _a_year_after(today))
    log.info(
        "care_calendar_loaded",
        country=calendar.country or "none",
        holidays_package=holidays.__version__,
        holidays_next_12_months=len(ahead),
        next_holiday=ahead[0].isoformat() if ahead else None,
        extra_days_off=len(calendar.extra_days_off),
        extra_working_days=len(calendar.extra_working_days),
    )


def _a_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return date(day.year + 1, 3, 1)
