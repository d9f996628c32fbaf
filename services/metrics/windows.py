"""KPI windows: the day, ISO week and month an instant falls in, on the local calendar."""

from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Window(StrEnum):
    """A KPI window (the wire values of KpiWindow)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    ALL = "all"


CALENDAR_WINDOWS = (Window.DAY, Window.WEEK, Window.MONTH)

Period = tuple[Window, date | None]
"""A window and the first day of its period (None for all-time)."""


def local_day(at: datetime, tz: ZoneInfo) -> date:
    """The calendar day of `at` in `tz`."""
    return at.astimezone(tz).date()


def period_start(window: Window, day: date) -> date | None:
    """First day of the `window` period that contains `day` (None for all-time)."""
    if window is Window.DAY:
        return day
    if window is Window.WEEK:
        return day - timedelta(days=day.weekday())
    if window is Window.MONTH:
        return day.replace(day=1)
    return None


def period_end(window: Window, start: date) -> date:
    """The first day after the period that starts on `start`."""
    if window is Window.DAY:
        return start + timedelta(days=1)
    if window is Window.WEEK:
        return start + timedelta(days=7)
    if window is Window.MONTH:
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    raise ValueError("the all-time window has no end")


def periods_of_day(day: date) -> tuple[Period, ...]:
    """Every period (day, week, month, all-time) that contains `day`."""
    return (
        *((w, period_start(w, day)) for w in CALENDAR_WINDOWS),
        (Window.ALL, None),
    )


def periods_of(at: datetime, tz: ZoneInfo) -> tuple[Period, ...]:
    """Every period (day, week, month, all-time) that contains the instant `at`."""
    return periods_of_day(local_day(at, tz))
