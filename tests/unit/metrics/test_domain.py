"""Metrics' pure rules: which KPI facts a case sheet yields, windows, sketch, CRR."""

import dataclasses
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.metrics.activity import CustomerActivity
from services.metrics.domain import CaseEntry, EntryKind, case_facts, frt_bucket, nps_group
from services.metrics.kpis import Cell, kpi_value, quantile, sketch_bucket
from services.metrics.windows import Window, period_end, periods_of

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=TZ)


def entry(kind: EntryKind, hours: float, **fields: object) -> CaseEntry:
    """An entry of case-1, `hours` after T0."""
    return CaseEntry(
        id=f"{kind}-{hours}", case_id="case-1", kind=kind, at=T0 + timedelta(hours=hours), **fields
    )


def opened(**fields: object) -> CaseEntry:
    """The contact that opened case-1."""
    defaults = {"channel": "zalo", "legal_field": "land", "customer_id": "cus-1", "new_case": True}
    return entry(EntryKind.CONTACT, 0, **{**defaults, **fields})


def kpis(facts: Counter) -> dict[str, list]:
    """Facts grouped by KPI."""
    grouped: dict[str, list] = {}
    for fact, n in facts.items():
        grouped.setdefault(fact.kpi, []).extend([fact] * n)
    return grouped


def test_an_instant_falls_in_its_local_day_iso_week_and_month():
    late_evening_utc = datetime(2026, 11, 30, 18, 30, tzinfo=ZoneInfo("UTC"))  # Tue 01:30 local
    assert dict(periods_of(late_evening_utc, TZ)) == {
        Window.DAY: date(2026, 12, 1),
        Window.WEEK: date(2026, 11, 30),
        Window.MONTH: date(2026, 12, 1),
        Window.ALL: None,
    }
    assert period_end(Window.MONTH, date(2026, 12, 1)) == date(2027, 1, 1)
    assert period_end(Window.WEEK, date(2026, 11, 30)) == date(2026, 12, 7)


def test_a_contact_counts_for_tft_by_its_own_channel_and_for_the_complaint_rate():
    facts = kpis(
        case_facts([opened(), entry(EntryKind.CONTACT, 1, channel="phone", complaint=True)])
    )
    assert sorted(dict(f.dims)["channel"] for f in facts["tft"]) == ["phone", "zalo"]
    assert sorted(f.numerator for f in facts["complaint_rate"]) == [0, 1]
    assert all(f.denominator == 1 for f in facts["complaint_rate"])


def test_ttr_atht_and_frt_run_from_opening_assignment_and_first_reach():
    sheet = [
        opened(),
        entry(EntryKind.ASSIGNED, 1, lawyer_id="law-1"),
        entry(EntryKind.REACHED, 5),
        entry(EntryKind.REACHED, 6),
        entry(EntryKind.RESOLVED, 72, lawyer_id="law-1"),
    ]
    facts = kpis(case_facts(sheet, business_seconds=lambda a, b: 7200.0))
    assert [f.sample_ms for f in facts["ttr"]] == [72 * 3_600_000]
    assert [f.sample_ms for f in facts["atht"]] == [71 * 3_600_000]
    assert [(f.sample_ms, f.parts) for f in facts["frt"]] == [(5 * 3_600_000, (("4-8h", 1),))]
    assert [f.sample_ms for f in facts["frt_business"]] == [7_200_000]
    assert facts["frt"][0].at == T0 + timedelta(hours=5)  # counted when the customer is reached
    assert "open_cases" not in facts
    assert dict(facts["resolved_cases"][0].dims)["lawyer"] == "law-1"


def test_an_unresolved_case_is_open_for_its_current_lawyer():
    sheet = [
        opened(),
        entry(EntryKind.ASSIGNED, 1, lawyer_id="law-1"),
        entry(EntryKind.ASSIGNED, 2, lawyer_id="law-2"),
    ]
    [open_case] = kpis(case_facts(sheet))["open_cases"]
    assert open_case.at is None and dict(open_case.dims)["lawyer"] == "law-2"


def test_a_duplicate_contract_id_counts_once_as_new_revenue_naming_its_first_event():
    first = entry(EntryKind.CONTRACT, 3, ref="HD-1", amount=5_000_000)
    again = dataclasses.replace(first, id="other-event")
    facts = kpis(case_facts([opened(), first, again]))
    # The split into new and returning is the totals' (they know the customer's first).
    assert [(f.parts, f.ref) for f in facts["revenue_vnd"]] == [((("new", 5_000_000),), first.id)]


def quote(hours: float, amount: int, **fields: object) -> CaseEntry:
    """A fee.quoted entry of case-1 whose highest price is `amount`."""
    return entry(EntryKind.QUOTED, hours, amount=amount, **fields)


def contract(hours: float, ref: str) -> CaseEntry:
    """A contract.signed entry of case-1."""
    return entry(EntryKind.CONTRACT, hours, ref=ref, amount=1_000_000)


def test_a_case_converts_once_however_many_contracts_at_its_first_priced_quote():
    sheet = [opened(), quote(1, 500_000), quote(30, 700_000), contract(50, "HD-1")]
    [one] = kpis(case_facts([*sheet, contract(60, "HD-2")]))["quote_conversion"]
    assert (one.at, one.numerator, one.denominator) == (T0 + timedelta(hours=1), 1, 1)
    [pending] = kpis(case_facts(sheet[:2]))["quote_conversion"]
    assert (pending.numerator, pending.denominator) == (0, 1)


def test_a_legal_aid_quote_of_0_vnd_is_not_a_quote_that_can_convert():
    sheet = [opened(legal_aid=True), quote(1, 0, legal_aid=True), contract(5, "HD-1")]
    assert "quote_conversion" not in kpis(case_facts(sheet))


def test_legal_aid_counts_once_at_its_first_sign():
    sheet = [opened(legal_aid=True), entry(EntryKind.QUOTED, 1, legal_aid=True)]
    assert [f.at for f in kpis(case_facts(sheet))["legal_aid_referrals"]] == [T0]


def test_survey_answers_give_nps_csat_ces_and_the_response_rate():
    sheet = [
        opened(),
        entry(EntryKind.SURVEY_REQUESTED, 1, ref="s1", channel="zalo"),
        entry(EntryKind.SURVEY_SCORED, 2, ref="s1", nps=6, csat=4, ces=3),
    ]
    facts = kpis(case_facts(sheet))
    assert [(f.numerator, f.parts) for f in facts["nps"]] == [(-1, (("detractors", 1),))]
    assert [f.numerator for f in facts["csat"]] == [1]
    assert [f.numerator for f in facts["csat_mean"]] == [4]
    assert [f.numerator for f in facts["ces"]] == [3]
    assert sorted((f.numerator, f.denominator) for f in facts["survey_response_rate"]) == [
        (0, 1),
        (1, 0),
    ]


def test_the_facts_of_a_sheet_do_not_depend_on_the_order_of_its_entries():
    sheet = [
        opened(),
        entry(EntryKind.ASSIGNED, 1, lawyer_id="law-1"),
        entry(EntryKind.RESOLVED, 5, lawyer_id="law-1"),
        entry(EntryKind.REACHED, 2),
    ]
    assert case_facts(sheet) == case_facts(list(reversed(sheet)))


@pytest.mark.parametrize(
    ("score", "group"), [(0, "detractors"), (6, "detractors"), (7, "passives"), (9, "promoters")]
)
def test_nps_groups(score, group):
    assert nps_group(score) == group


@pytest.mark.parametrize(
    ("minutes", "bucket"),
    [
        (0, "0-1h"),
        (59, "0-1h"),
        (60, "1-4h"),
        (239, "1-4h"),
        (300, "4-8h"),
        (600, "8-24h"),
        (24 * 60, ">24h"),
    ],
)
def test_frt_buckets(minutes, bucket):
    assert frt_bucket(minutes * 60_000) == bucket


def test_sketch_percentiles_are_within_one_percent_of_the_nearest_rank():
    samples = [1_000 * i for i in range(1, 101)]
    sketch = Counter(sketch_bucket(ms) for ms in samples)
    assert quantile(sketch, 0.5) == pytest.approx(50_000, rel=0.01)
    assert quantile(sketch, 0.9) == pytest.approx(90_000, rel=0.01)
    assert quantile(Counter(), 0.5) is None


def test_values_scale_percentages_and_express_durations_in_seconds():
    cell = Cell(numerator=1, denominator=4, count=4)
    assert kpi_value("complaint_rate", cell).value == 25.0
    assert kpi_value("quote_conversion", cell).value == 0.25
    duration = Cell(numerator=7_200_000, denominator=2, count=2)
    assert kpi_value("ttr", duration).value == 3600.0
    assert kpi_value("ttr", duration).numerator == 7200.0
    assert kpi_value("tft", Cell(numerator=3, count=3)).denominator == 1.0
    assert kpi_value("csat", Cell()).value is None


TODAY = date(2026, 12, 10)
NOVEMBER = ("crr", Window.MONTH, date(2026, 11, 1), "all", "all")


def test_crr_counts_customers_active_at_start_and_end_and_the_new_ones():
    activity = CustomerActivity()
    activity.add_contact("lapsing", date(2025, 11, 20))
    activity.add_contact("kept", date(2026, 10, 5))
    activity.add_contact("newcomer", date(2026, 11, 10))
    cell = activity.totals.crr_cells(TODAY)[NOVEMBER]
    assert dict(cell.parts) == {"start": 2, "end": 2, "new": 1, "lost": 1}
    assert kpi_value("crr", cell).value == 50.0


def test_a_customer_back_after_more_than_365_days_is_not_retained():
    activity = CustomerActivity()
    activity.add_contact("kept", date(2026, 10, 5))
    activity.add_contact("back", date(2025, 10, 1))  # inactive from 2026-10-02
    activity.add_contact("back", date(2026, 11, 15))
    cell = activity.totals.crr_cells(TODAY)[NOVEMBER]
    assert dict(cell.parts) == {"start": 1, "end": 2, "new": 1, "lost": 0}
    assert kpi_value("crr", cell).value == 100.0  # (E - first contacts) / S gave 200 %


def test_a_customer_active_at_both_ends_is_retained_though_inactive_in_between():
    activity = CustomerActivity()
    activity.add_contact("gap", date(2025, 11, 1))  # active at boundaries up to 2026-11-01
    activity.add_contact("gap", date(2026, 11, 20))  # active again from 2026-11-21
    cell = activity.totals.crr_cells(TODAY)[NOVEMBER]
    assert dict(cell.parts) == {"start": 1, "end": 1, "new": 0, "lost": 0}
    day = activity.totals.crr_cells(TODAY)[("crr", Window.DAY, date(2026, 11, 1), "all", "all")]
    assert dict(day.parts) == {"start": 1, "end": 0, "new": 0, "lost": 1}


def test_crr_covers_every_period_from_the_first_contact_to_today_quiet_ones_included():
    activity = CustomerActivity()
    activity.add_contact("once", date(2026, 1, 30))
    cells = activity.totals.crr_cells(date(2026, 3, 2))
    days = sorted(k[2] for k in cells if k[1] is Window.DAY)
    assert (days[0], days[-1], len(days)) == (date(2026, 1, 30), date(2026, 3, 2), 32)
    months = sorted(k[2] for k in cells if k[1] is Window.MONTH)
    assert months == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    weeks = sorted(k[2] for k in cells if k[1] is Window.WEEK)
    assert (weeks[0], weeks[-1], len(weeks)) == (date(2026, 1, 26), date(2026, 3, 2), 6)
    february = cells[("crr", Window.MONTH, date(2026, 2, 1), "all", "all")]
    assert kpi_value("crr", february).value == 100.0
    assert CustomerActivity().totals.crr_cells(TODAY) == {}


def test_a_merge_makes_two_customers_one_in_any_order():
    def crr_parts(steps: list) -> dict:
        activity = CustomerActivity()
        for step in steps:
            step(activity)
        return dict(activity.totals.crr_cells(TODAY)[NOVEMBER].parts)

    old = lambda a: a.add_contact("cus-5", date(2025, 12, 15))  # noqa: E731
    new = lambda a: a.add_contact("cus-1", date(2026, 11, 28))  # noqa: E731
    merge = lambda a: a.merge("cus-1", ("cus-5",))  # noqa: E731
    expected = {"start": 1, "end": 1, "new": 0, "lost": 0}
    assert crr_parts([old, new, merge]) == expected
    assert crr_parts([merge, new, old]) == expected
    assert crr_parts([new, merge, old, merge]) == expected


def test_a_survey_without_its_case_still_counts_under_the_survey_dimensions():
    sheet = [
        entry(
            EntryKind.SURVEY_REQUESTED,
            1,
            ref="s1",
            channel="zalo",
            legal_field="labor",
            lawyer_id="law-9",
        ),
    ]
    [requested] = kpis(case_facts(sheet))["survey_response_rate"]
    assert dict(requested.dims) == {"channel": "zalo", "legal_field": "labor", "lawyer": "law-9"}
