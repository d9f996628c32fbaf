"""Service-level arithmetic in business time: the care calendar's windows, weekends, Tết,
pauses and a policy changed mid-clock (services/followup/sla.py, shared/calendar.py)."""

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.followup import sla
from services.followup.sla import SlaPolicy, SlaTarget
from shared.calendar import CareCalendar
from shared.events import Channel, LegalField, SlaPriority
from tests.unit.followup.builders import VN, vn

# Monday 30 Nov 2026 .. Saturday 5 Dec are working days; Tết 2027 is Thu 4 – Wed 10 Feb
# (the holidays package).
calendar = CareCalendar()
FR, RES = SlaTarget.FIRST_RESPONSE, SlaTarget.RESOLUTION
HOUR = 3600.0


def policy(**rows: tuple[str, str]) -> SlaPolicy:
    """A policy whose rows are (first_response, resolution); unnamed rows 4h / 24h."""
    priorities = {p.value: {"first_response": "4h", "resolution": "24h"} for p in SlaPriority}
    for name, (first, resolution) in rows.items():
        priorities[name] = {"first_response": first, "resolution": resolution}
    return SlaPolicy.model_validate({"warning_share": 0.8, "priorities": priorities})


def clocks_opened(at: datetime, the_policy: SlaPolicy | None = None) -> sla.SlaClocks:
    return sla.open_clocks(
        opened_at=at,
        priority=SlaPriority.NORMAL,
        legal_field=LegalField.LAND,
        channel=Channel.ZALO,
        policy=the_policy or policy(),
        planned_with="p1",
    )


@pytest.mark.parametrize(
    ("start", "seconds", "moment"),
    [
        (vn(2026, 11, 30, 9, 30), HOUR, vn(2026, 11, 30, 10, 30)),  # inside a window
        (vn(2026, 11, 30, 10, 30), HOUR, vn(2026, 11, 30, 15, 0)),  # over the lunch break
        (vn(2026, 11, 30, 10, 0), HOUR, vn(2026, 11, 30, 11, 0)),  # exactly at closing
        (vn(2026, 11, 30, 7, 0), 1800, vn(2026, 11, 30, 9, 30)),  # before opening
        (vn(2026, 12, 5, 16, 0), HOUR, vn(2026, 12, 7, 9, 30)),  # Saturday → Monday
        (vn(2026, 12, 6, 12, 0), 60, vn(2026, 12, 7, 9, 1)),  # from a Sunday
        (vn(2026, 11, 23, 16, 0), HOUR, vn(2026, 11, 25, 9, 30)),  # over 24/11 (a holiday)
        (vn(2027, 2, 3, 16, 0), HOUR, vn(2027, 2, 11, 9, 30)),  # over Tết 2027
        (vn(2026, 11, 30, 9, 30), 0, vn(2026, 11, 30, 9, 30)),  # nothing to add
    ],
)
def test_adding_business_seconds_skips_what_is_outside_windows(start, seconds, moment):
    assert calendar.add_business_seconds(start, seconds) == moment


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)),
    seconds=st.integers(min_value=1, max_value=60 * 3600),
)
def test_added_business_seconds_are_counted_back_and_reached_no_earlier(start, seconds):
    start = start.replace(tzinfo=VN)
    moment = calendar.add_business_seconds(start, seconds)
    assert calendar.business_seconds(start, moment) == pytest.approx(seconds, abs=1e-3)
    assert calendar.business_seconds(start, moment - timedelta(seconds=1)) < seconds
    assert calendar.is_open(moment - timedelta(microseconds=1))


def test_a_normal_case_warns_at_80_percent_and_breaches_at_its_target():
    clocks = clocks_opened(vn(2026, 11, 30, 8, 0))
    # 4h first response: 2h in the morning window, 1h12m / 2h in the afternoon one.
    assert sla.moment_of(clocks, clocks.clocks[FR].warning_s, calendar) == vn(2026, 11, 30, 15, 42)
    assert sla.moment_of(clocks, clocks.clocks[FR].target_s, calendar) == vn(2026, 11, 30, 16, 30)
    # 24h resolution: six working days of 4h: Saturday 5 Dec, closing time.
    assert sla.moment_of(clocks, clocks.clocks[RES].target_s, calendar) == vn(2026, 12, 5, 16, 30)


def test_a_case_opened_before_tet_breaches_after_it():
    clocks = clocks_opened(vn(2027, 2, 3, 14, 30))  # Wed before Tết, 2h left that day
    # 4h: 2h on Wed 3 Feb, then nothing until Thu 11 Feb: 2h more → 11:00.
    assert sla.moment_of(clocks, 4 * HOUR, calendar) == vn(2027, 2, 11, 11, 0)


def test_a_wait_on_the_customer_stops_the_clock_and_moves_the_breach():
    clocks = clocks_opened(vn(2026, 11, 30, 9, 0))
    clocks = sla.paused_at(clocks, vn(2026, 11, 30, 10, 0))  # 1h used
    assert clocks.paused
    assert sla.moment_of(clocks, 4 * HOUR, calendar) is None  # paused: no breach planned
    assert sla.plan(clocks, "c1", calendar=calendar, grace_s=0) == {
        "sla.warning:c1:first_response": (None, sla.WARNING, FR),
        "sla.breach:c1:first_response": (None, sla.BREACH, FR),
        "sla.warning:c1:resolution": (None, sla.WARNING, RES),
        "sla.breach:c1:resolution": (None, sla.BREACH, RES),
    }
    clocks = sla.resumed_at(clocks, vn(2026, 12, 1, 10, 0))  # a day later
    assert sla.elapsed_s(clocks, vn(2026, 12, 1, 10, 0), calendar) == HOUR
    # 3h left from Tue 10:00: 1h to 11:00, 2h in the afternoon.
    assert sla.moment_of(clocks, 4 * HOUR, calendar) == vn(2026, 12, 1, 16, 30)


def test_pausing_twice_and_resuming_twice_changes_nothing_more():
    clocks = clocks_opened(vn(2026, 11, 30, 9, 0))
    once = sla.paused_at(clocks, vn(2026, 11, 30, 10, 0))
    assert sla.paused_at(once, vn(2026, 11, 30, 10, 30)) == once
    resumed = sla.resumed_at(once, vn(2026, 11, 30, 15, 0))
    assert sla.resumed_at(resumed, vn(2026, 11, 30, 16, 0)) == resumed
    assert sla.resumed_at(clocks, vn(2026, 11, 30, 16, 0)) == clocks


def test_a_policy_changed_mid_clock_keeps_the_time_used_and_moves_the_moments():
    clocks = clocks_opened(vn(2026, 11, 30, 9, 0))  # resolution 24h
    # Tuesday 09:00, 4h used; the resolution target becomes 6h: 2h left → Tue 11:00.
    shorter = policy(normal=("4h", "6h"))
    clocks = sla.retarget(clocks, priority=SlaPriority.NORMAL, policy=shorter, planned_with="p2")
    assert sla.moment_of(clocks, clocks.clocks[RES].target_s, calendar) == vn(2026, 12, 1, 11, 0)
    assert clocks.planned_with == "p2"
    # Cut below what was used: the breach moment is in the past, the timer fires at once.
    shortest = policy(normal=("4h", "3h"))
    clocks = sla.retarget(clocks, priority=SlaPriority.NORMAL, policy=shortest, planned_with="p3")
    due = sla.plan(clocks, "c1", calendar=calendar, grace_s=60)
    assert due["sla.breach:c1:resolution"][0] == vn(2026, 11, 30, 15, 31)


def test_a_clock_stopped_a_second_before_its_target_is_met_and_at_it_breached():
    clocks = clocks_opened(vn(2026, 11, 30, 8, 0))  # first response due 16:30
    met, outcome = sla.stopped(clocks, FR, vn(2026, 11, 30, 16, 29, 59), calendar)
    assert outcome == "met"
    assert met.clocks[FR].stopped_at == vn(2026, 11, 30, 16, 29, 59)
    assert sla.stopped(met, FR, vn(2026, 11, 30, 16, 45), calendar) == (met, None)
    _, late = sla.stopped(clocks, FR, vn(2026, 11, 30, 16, 30), calendar)
    assert late == "breached"
    announced = sla.announced(clocks, FR, sla.BREACH)
    assert sla.stopped(announced, FR, vn(2026, 12, 1, 9, 0), calendar)[1] is None


def test_a_refinement_narrows_a_target_for_a_field_or_channel():
    the_policy = SlaPolicy.model_validate(
        {
            "priorities": {
                p.value: {"first_response": "4h", "resolution": 86400} for p in SlaPriority
            },
            "refinements": [
                {"legal_field": "criminal", "first_response": "1h"},
                {"channel": "walk_in", "priority": "normal", "first_response": "2h30m"},
            ],
        }
    )
    target = the_policy.target_s
    assert target(FR, SlaPriority.NORMAL, LegalField.CRIMINAL, Channel.WALK_IN) == HOUR
    assert target(FR, SlaPriority.NORMAL, LegalField.LAND, Channel.WALK_IN) == 2.5 * HOUR
    assert target(FR, SlaPriority.DISPUTE, LegalField.LAND, Channel.WALK_IN) == 4 * HOUR
    assert target(RES, SlaPriority.NORMAL, LegalField.CRIMINAL, Channel.ZALO) == 86400


def test_the_shipped_policy_loads_and_a_bad_one_is_refused(tmp_path):
    shipped = sla.load_policy(sla.Path(__file__).parents[3] / "deploy" / "config" / "sla.yaml")
    assert shipped.warning_share == 0.8
    bad = tmp_path / "sla.yaml"
    bad.write_text("priorities:\n  normal: {first_response: 4 hours, resolution: 24h}\n")
    with pytest.raises(ValidationError):
        sla.load_policy(bad)


def test_the_fingerprint_changes_with_the_policy_or_the_calendar():
    base = sla.fingerprint(policy(), calendar)
    assert sla.fingerprint(policy(), calendar) == base
    assert sla.fingerprint(policy(normal=("2h", "24h")), calendar) != base
    other = CareCalendar(extra_days_off=[date(2026, 12, 24)])
    assert sla.fingerprint(policy(), other) != base
