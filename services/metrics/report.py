"""`make kpi`: today's and this month's KPIs as a table, read from the running service."""

import urllib.parse
import urllib.request
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from services.metrics.kpis import DURATIONS, KPIS, PERCENTS

HEADERS = ("kpi", "today", "this month", "all time", "numerator / denominator (month)")


def format_value(kpi: str, value: float | None) -> str:
    """A KPI value as people read it: durations as h:mm:ss, percentages with %."""
    if value is None:
        return "-"
    if kpi in DURATIONS:
        seconds = round(value)
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if kpi in PERCENTS:
        return f"{value:.1f} %"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3f}"


def kpi_table(
    today: list[dict[str, Any]],
    month: list[dict[str, Any]],
    all_time: list[dict[str, Any]] | None = None,
) -> str:
    """Rows of dimension `all` for today, this month and all time, one line per KPI."""
    columns = [
        {r["kpi"]: r for r in rows if r["dimension"] == "all"}
        for rows in (today, month, all_time or [])
    ]
    lines = [HEADERS]
    for kpi in KPIS:
        values = [format_value(kpi, c[kpi]["value"] if kpi in c else None) for c in columns]
        mon = columns[1].get(kpi)
        ratio = f"{mon['numerator']:g} / {mon['denominator']:g}" if mon else "-"
        lines.append((kpi, *values, ratio))
    widths = [max(len(row[i]) for row in lines) for i in range(len(HEADERS))]
    rendered = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in lines
    ]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rendered)


def fetch(base_url: str, **query: str) -> list[dict[str, Any]]:
    """GET /kpis with `query` from the running metrics service."""
    url = f"{base_url}/kpis?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return orjson.loads(response.read())["kpis"]


def print_kpis(base_url: str, tz: ZoneInfo, now: datetime | None = None) -> None:
    """Print today's, this month's and all-time KPIs (dimension all)."""
    today: date = (now or datetime.now(tz)).astimezone(tz).date()
    first = today.replace(day=1).isoformat()
    day_rows = fetch(
        base_url, window="day", dimension="all", **{"from": str(today), "to": str(today)}
    )
    month_rows = fetch(base_url, window="month", dimension="all", **{"from": first, "to": first})
    all_rows = fetch(base_url, window="all", dimension="all")
    print(f"lexcare KPIs — {today.isoformat()} ({tz.key})")
    print(kpi_table(day_rows, month_rows, all_rows))
