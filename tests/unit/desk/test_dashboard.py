"""The dashboard shapes metrics' rows as they come: nothing recomputed."""

from services.desk.dashboard import Filters, frt_chart, funnel_chart, per_lawyer_chart, shown


def row(kpi: str, period: str | None, value: float | None, **fields) -> dict:
    return {
        "kpi": kpi,
        "window": "week",
        "period_start": period,
        "dimension": fields.pop("dimension", "all"),
        "dimension_value": fields.pop("dimension_value", "all"),
        "value": value,
        "unit": fields.pop("unit", "count"),
        "numerator": fields.pop("numerator", value or 0),
        "denominator": fields.pop("denominator", 1),
        "count": fields.pop("count", 1),
        "extra": fields.pop("extra", {}),
    }


def test_frt_shows_metrics_p50_and_p90_per_period_oldest_first():
    rows = [
        row("frt", "2026-11-30", 5400, unit="seconds", extra={"p50": 3600, "p90": 9000}),
        row("frt", "2026-11-23", 600, unit="seconds", extra={"p50": 500, "p90": 700}),
    ]
    chart = frt_chart(rows, "frt", "FRT")
    assert [b.label for b in chart.bars] == ["2026-11-23", "2026-11-30"]
    assert chart.rows[1] == ("2026-11-30", "1 giờ 30 phút", "1 giờ 00 phút", "2 giờ 30 phút", "1")
    assert chart.bars[1].length == 100.0


def test_the_funnel_reads_contacts_and_the_quote_conversion_parts_of_the_latest_period():
    rows = [
        row("tft", "2026-11-30", 40),
        row("quote_conversion", "2026-11-30", 0.25, numerator=3, denominator=12, unit="ratio"),
        row("tft", "2026-11-23", 10),
    ]
    chart = funnel_chart(rows)
    assert [(b.label, b.shown) for b in chart.bars] == [
        ("Liên hệ", "40"),
        ("Được báo phí", "12"),
        ("Ký hợp đồng", "3"),
    ]


def test_per_lawyer_keeps_the_latest_period_largest_first_and_nps_may_be_negative():
    rows = [
        row("resolved_cases", "2026-11-30", 2, dimension="lawyer", dimension_value="a"),
        row("resolved_cases", "2026-11-30", 5, dimension="lawyer", dimension_value="b"),
        row("resolved_cases", "2026-11-23", 9, dimension="lawyer", dimension_value="c"),
    ]
    assert [b.label for b in per_lawyer_chart(rows, "resolved_cases", "x").bars] == ["b", "a"]
    assert shown(-33.333, "percent") == "-33,3 %" and shown(None, "score") == "–"


def test_filters_fall_back_to_defaults_and_pass_the_dimension_through():
    filters = Filters.from_query({"window": "year", "dimension": "channel", "value": "zalo"})
    assert filters.params(["nps"]) == {
        "kpi": "nps",
        "window": "week",
        "dimension": "channel",
        "value": "zalo",
    }
    assert Filters.from_query({"from": "2026-11-01", "to": "bad"}).params(["nps"])["from"] == (
        "2026-11-01"
    )
