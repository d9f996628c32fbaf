"""The KPI dashboard: metrics' `GET /kpis` rows shaped into charts and tables (never recomputed)."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

WINDOWS = {"week": "Theo tuần", "month": "Theo tháng", "day": "Theo ngày"}
DIMENSIONS = {
    "all": "Toàn văn phòng",
    "channel": "Kênh",
    "legal_field": "Lĩnh vực",
    "lawyer": "Luật sư",
}
SCORES = ("nps", "csat", "ces")
FRT = ("frt", "frt_business")
FUNNEL = ("tft", "quote_conversion")


class MetricsUnavailable(Exception):
    """Metrics did not answer (or refused the query)."""


@dataclass(frozen=True)
class Filters:
    """What the manager chose: the period size, a dimension value, a date range."""

    window: str = "week"
    dimension: str = "all"
    value: str = "all"
    start: str = ""
    end: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "Filters":
        """The filters of the page's query string (unknown values fall back to defaults)."""
        window = query.get("window", "week")
        dimension = query.get("dimension", "all")
        value = query.get("value", "").strip() or "all"
        if dimension == "all":
            value = "all"
        return cls(
            window=window if window in WINDOWS else "week",
            dimension=dimension if dimension in DIMENSIONS else "all",
            value=value[:100],
            start=_day(query.get("from", "")),
            end=_day(query.get("to", "")),
        )

    def params(self, kpis: Iterable[str], *, dimension: str | None = None) -> dict[str, str]:
        """The /kpis query for `kpis` under these filters (`dimension`: a fixed breakdown)."""
        params = {"kpi": ",".join(kpis), "window": self.window}
        if dimension is not None:
            params["dimension"] = dimension
        else:
            params |= {"dimension": self.dimension, "value": self.value}
        if self.start:
            params["from"] = self.start
        if self.end:
            params["to"] = self.end
        return params


def _day(value: str) -> str:
    value = value.strip()
    return value if len(value) == 10 and value[4] == "-" and value[7] == "-" else ""


class MetricsClient:
    """Reads metrics' HTTP API."""

    def __init__(self, base_url: str, *, timeout_s: float) -> None:
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)

    async def rows(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """KPI rows for `params`."""
        try:
            reply = await self.http.get("/kpis", params=dict(params))
            reply.raise_for_status()
            return reply.json()["kpis"]
        except (httpx.HTTPError, KeyError, ValueError) as error:
            raise MetricsUnavailable(type(error).__name__) from error

    async def csv(self, params: Mapping[str, str]) -> bytes:
        """Metrics' own CSV of `params`."""
        try:
            reply = await self.http.get("/kpis", params={**params, "format": "csv"})
            reply.raise_for_status()
            return reply.content
        except httpx.HTTPError as error:
            raise MetricsUnavailable(type(error).__name__) from error

    async def close(self) -> None:
        """Close the connections."""
        await self.http.aclose()


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: its label, value as shown, and length in 0..100."""

    label: str
    shown: str
    length: float
    negative: bool = False


@dataclass
class Chart:
    """A titled bar chart with the table of its numbers."""

    title: str
    unit: str
    bars: list[Bar] = field(default_factory=list)
    columns: tuple[str, ...] = ()
    rows: list[tuple[str, ...]] = field(default_factory=list)


def shown(value: float | None, unit: str) -> str:
    """A KPI value as a manager reads it."""
    if value is None:
        return "–"
    if unit == "percent":
        return f"{value:.1f} %".replace(".", ",")
    if unit == "ratio":
        return f"{value * 100:.1f} %".replace(".", ",")
    if unit == "seconds":
        return duration(value)
    if unit == "score":
        return f"{value:.2f}".replace(".", ",")
    return f"{value:,.0f}".replace(",", ".")


def duration(seconds: float) -> str:
    """Seconds as hours and minutes (or minutes and seconds under an hour)."""
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} giờ {minutes:02d} phút"
    return f"{minutes} phút {sec:02d} giây"


def bars(points: list[tuple[str, float | None]], unit: str) -> list[Bar]:
    """Bars scaled to the largest absolute value (NPS may be negative)."""
    top = max((abs(v) for _, v in points if v is not None), default=0.0) or 1.0
    return [
        Bar(label, shown(v, unit), 0.0 if v is None else abs(v) / top * 100, (v or 0) < 0)
        for label, v in points
    ]


def _period(row: Mapping[str, Any]) -> str:
    return row.get("period_start") or "toàn thời gian"


def trend_chart(rows: list[dict[str, Any]], kpi: str, title: str) -> Chart:
    """One KPI over the periods, oldest first."""
    mine = sorted((r for r in rows if r["kpi"] == kpi), key=_period)
    unit = mine[0]["unit"] if mine else "count"
    points = [(_period(r), r["value"]) for r in mine]
    return Chart(
        title,
        unit,
        bars(points, unit),
        ("Kỳ", "Giá trị", "Tử số", "Mẫu số", "Số sự kiện"),
        [
            (
                _period(r),
                shown(r["value"], unit),
                _num(r["numerator"]),
                _num(r["denominator"]),
                str(r["count"]),
            )
            for r in mine
        ],
    )


def frt_chart(rows: list[dict[str, Any]], kpi: str, title: str) -> Chart:
    """First response time per period: p50 as the bar, mean, p50 and p90 in the table."""
    mine = sorted((r for r in rows if r["kpi"] == kpi), key=_period)
    points = [(_period(r), r["extra"].get("p50")) for r in mine]
    return Chart(
        title,
        "seconds",
        bars(points, "seconds"),
        ("Kỳ", "Trung bình", "p50", "p90", "Số ca"),
        [
            (
                _period(r),
                shown(r["value"], "seconds"),
                shown(r["extra"].get("p50"), "seconds"),
                shown(r["extra"].get("p90"), "seconds"),
                str(r["count"]),
            )
            for r in mine
        ],
    )


def per_lawyer_chart(rows: list[dict[str, Any]], kpi: str, title: str) -> Chart:
    """A count per lawyer in the latest period that has one, largest first."""
    mine = [r for r in rows if r["kpi"] == kpi and r["dimension"] == "lawyer"]
    latest = max((_period(r) for r in mine), default=None)
    current = sorted((r for r in mine if _period(r) == latest), key=lambda r: -(r["value"] or 0))
    points = [(r["dimension_value"], r["value"]) for r in current]
    return Chart(
        f"{title} ({latest})" if latest else title,
        "count",
        bars(points, "count"),
        ("Luật sư", "Số vụ việc"),
        [(r["dimension_value"], shown(r["value"], "count")) for r in current],
    )


def funnel_chart(rows: list[dict[str, Any]]) -> Chart:
    """Contacts → cases quoted → cases with a contract, in the latest period."""
    latest = max((_period(r) for r in rows if r["kpi"] in FUNNEL), default=None)
    pick = {r["kpi"]: r for r in rows if _period(r) == latest}
    contacts = pick.get("tft", {}).get("value")
    conversion = pick.get("quote_conversion", {})
    quoted, signed = conversion.get("denominator"), conversion.get("numerator")
    steps = [("Liên hệ", contacts), ("Được báo phí", quoted), ("Ký hợp đồng", signed)]
    return Chart(
        f"Phễu: liên hệ → báo phí → hợp đồng ({latest})" if latest else "Phễu",
        "count",
        bars(steps, "count"),
        ("Bước", "Số lượng"),
        [(label, shown(value, "count")) for label, value in steps],
    )


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}".rstrip("0").rstrip(".").replace(",", " ")


async def dashboard_charts(client: MetricsClient, filters: Filters) -> list[Chart]:
    """Every chart of the dashboard, from three reads of metrics' API."""
    trends = await client.rows(filters.params((*SCORES, "complaint_rate", *FRT)))
    resolved = await client.rows(filters.params(("resolved_cases",), dimension="lawyer"))
    # Open cases are a count of now: metrics keeps them in the all-time window only.
    now = replace(filters, window="all", start="", end="")
    workload = await client.rows(now.params(("open_cases",), dimension="lawyer"))
    funnel = await client.rows(filters.params(FUNNEL, dimension="all"))
    return [
        trend_chart(trends, "nps", "NPS (−100..100)"),
        trend_chart(trends, "csat", "CSAT (% hài lòng 4–5 điểm)"),
        trend_chart(trends, "ces", "CES (mức độ dễ dàng, 1–7)"),
        frt_chart(trends, "frt", "Thời gian phản hồi đầu tiên (FRT, giờ thực)"),
        frt_chart(trends, "frt_business", "FRT theo giờ làm việc"),
        trend_chart(trends, "complaint_rate", "Tỷ lệ khiếu nại (% liên hệ)"),
        per_lawyer_chart(resolved, "resolved_cases", "Vụ việc đã giải quyết theo luật sư"),
        per_lawyer_chart(workload, "open_cases", "Vụ việc đang xử lý theo luật sư"),
        funnel_chart(funnel),
    ]
