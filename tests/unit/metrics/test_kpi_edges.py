"""KPI definitions at their edges: CRR within 0-100 %, quote conversion within 0-1, revenue
new vs returning from the contracts metrics has seen, in any order, merged or not."""

import random
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.metrics.domain import CaseEntry, CustomerMerge, EntryKind
from services.metrics.engine import MetricsEngine
from services.metrics.kpis import KPIS, UNITS, kpi_value
from services.metrics.windows import Window, local_day
from shared.clock import FakeClock
from shared.events import KpiUnit, KpiUpdated

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
START = datetime(2025, 1, 1, 9, tzinfo=TZ)
NOW = START + timedelta(days=1000)


def new_engine() -> MetricsEngine:
    """An engine whose today is NOW."""
    return MetricsEngine(TZ, clock=FakeClock(NOW))


def contact(case: str, customer: str, day: float, *, new_case: bool = True) -> CaseEntry:
    """A case.classified entry `day` days after START."""
    return CaseEntry(
        id=f"c-{case}-{customer}-{day}-{new_case}",
        case_id=case,
        kind=EntryKind.CONTACT,
        at=START + timedelta(days=day),
        channel="zalo",
        customer_id=customer,
        new_case=new_case,
    )


def quote(case: str, day: float, amount: int) -> CaseEntry:
    """A fee.quoted entry (amount: its highest price; 0 for legal aid)."""
    return CaseEntry(
        id=f"q-{case}-{day}-{amount}",
        case_id=case,
        kind=EntryKind.QUOTED,
        at=START + timedelta(days=day),
        amount=amount,
        legal_aid=amount == 0,
    )


def contract(case: str, day: float, ref: str, amount: int = 1_000) -> CaseEntry:
    """A contract.signed entry."""
    return CaseEntry(
        id=f"k-{case}-{ref}-{day}-{amount}",
        case_id=case,
        kind=EntryKind.CONTRACT,
        at=START + timedelta(days=day),
        ref=ref,
        amount=amount,
    )


def merge(survivor: str, other: str) -> CustomerMerge:
    """A customer.merged."""
    return CustomerMerge(id=f"m-{survivor}-{other}", survivor=survivor, merged=(other,))


def fed(items: list, engine: MetricsEngine | None = None) -> MetricsEngine:
    """`engine` (a new one by default) after ingesting `items` in order."""
    engine = engine or new_engine()
    for item in items:
        engine.ingest(item)
    engine.refresh_crr()
    return engine


def revenue(engine: MetricsEngine, dimension: str = "all", value: str = "all") -> dict:
    """All-time revenue split of a dimension value."""
    cell = engine.cells[("revenue_vnd", Window.ALL, None, dimension, value)]
    return {k: v for k, v in cell.parts.items() if v}


def test_a_lapsed_customer_who_never_signed_brings_new_revenue_then_returning():
    engine = fed(
        [
            contact("old", "cus-1", 0),  # a customer long ago, never signed
            contact("back", "cus-1", 500),
            contract("back", 502, "HD-2", 300),
            contract("back", 501, "HD-1", 200),  # delivered later, signed earlier
        ]
    )
    assert revenue(engine) == {"new": 200, "returning": 300}


def test_an_earlier_contract_of_another_case_makes_a_later_one_returning():
    engine = new_engine()
    fed([contact("late", "cus-1", 10), contract("late", 20, "HD-2", 500)], engine)
    fed([contact("other", "cus-9", 30)], engine)
    fed([contact("early", "cus-1", 1), contract("early", 2, "HD-1", 700)], engine)
    assert revenue(engine) == {"new": 700, "returning": 500}


def test_an_earlier_contract_of_the_same_case_makes_its_later_one_returning():
    engine = fed([contact("one", "cus-1", 1), contract("one", 20, "HD-2", 500)])
    assert revenue(engine) == {"new": 500}
    fed([contract("one", 5, "HD-1", 700)], engine)
    assert revenue(engine) == {"new": 700, "returning": 500}


def test_a_merge_makes_the_later_first_contract_of_two_customers_returning_in_any_order():
    items = [
        contact("a", "cus-1", 1),
        contract("a", 5, "HD-A", 100),
        contact("b", "cus-2", 2),
        contract("b", 3, "HD-B", 10),
        merge("cus-1", "cus-2"),
    ]
    for order in (items, items[::-1], items[2:] + items[:2]):
        assert revenue(fed(order)) == {"new": 10, "returning": 100}


def test_a_reassignment_moves_the_first_contract_with_its_case():
    engine = fed(
        [
            contact("a", "cus-1", 1),
            CaseEntry(id="as-1", case_id="a", kind=EntryKind.ASSIGNED, at=START, lawyer_id="law-1"),
            contract("a", 5, "HD-A", 100),
            CaseEntry(
                id="as-2",
                case_id="a",
                kind=EntryKind.ASSIGNED,
                at=START + timedelta(days=6),
                lawyer_id="law-2",
            ),
            contact("b", "cus-1", 1),
            contract("b", 2, "HD-B", 10),  # earlier: the first contract is now b's
        ]
    )
    assert revenue(engine, "lawyer", "law-2") == {"returning": 100}
    assert ("revenue_vnd", Window.ALL, None, "lawyer", "law-1") not in engine.cells


def assigned(case: str, day: float, lawyer: str) -> CaseEntry:
    """A case.assigned entry."""
    return CaseEntry(
        id=f"a-{case}-{day}",
        case_id=case,
        kind=EntryKind.ASSIGNED,
        at=START + timedelta(days=day),
        lawyer_id=lawyer,
    )


@pytest.mark.parametrize("seed", range(40))
def test_a_case_seen_under_a_merged_customers_two_ids_counts_its_first_contract_once(seed):
    items = [
        contact("x", "cus-2", 1, new_case=False),  # before the merge
        contact("x", "cus-0", 5, new_case=False),  # after it, under the survivor's id
        assigned("x", 0, "law-1"),
        contract("x", 3, "HD-X", 100),
        assigned("x", 6, "law-2"),
        contact("y", "cus-0", 0),
        contract("y", 10, "HD-Y", 10),
        merge("cus-0", "cus-2"),
    ]
    random.Random(seed).shuffle(items)
    engine = fed(items)
    assert revenue(engine) == {"new": 100, "returning": 10}
    assert revenue(engine, "lawyer", "law-2") == {"new": 100}
    assert engine.cells == fed(sorted(items, key=lambda i: i.id)).cells


def test_the_days_crr_covers_grow_with_the_clock_without_new_events():
    clock = FakeClock(START + timedelta(days=3))
    engine = MetricsEngine(TZ, clock=clock)
    engine.ingest(contact("a", "cus-1", 0))
    engine.refresh_crr()
    today = ("crr", Window.DAY, local_day(START + timedelta(days=3), TZ), "all", "all")
    assert today in engine.cells and engine.take_dirty_cells()
    clock.advance(timedelta(days=2))
    dirty = engine.take_dirty_cells()
    later = [k for k in dirty if k[0] == "crr" and k[1] is Window.DAY]
    assert len(later) == 2 and all(k[2] > today[2] for k in later)
    assert not engine.take_dirty_cells()


def test_every_kpi_has_one_unit_on_the_wire():
    assert set(UNITS) == set(KPIS)
    assert UNITS["crr"] is KpiUnit.PERCENT and UNITS["quote_conversion"] is KpiUnit.RATIO
    assert UNITS["frt_business"] is KpiUnit.SECONDS and UNITS["revenue_vnd"] is KpiUnit.VND
    assert UNITS["ces"] is KpiUnit.SCORE and UNITS["legal_aid_referrals"] is KpiUnit.COUNT
    schema = KpiUpdated.model_json_schema()
    assert "unit" in schema["required"]
    assert schema["properties"]["unit"]["description"]


# --- random streams ------------------------------------------------------------------

CASES = [f"case-{n}" for n in range(6)]
CUSTOMERS = [f"cus-{n}" for n in range(5)]
OWNER = {case: CUSTOMERS[n % 4] for n, case in enumerate(CASES)}
"""A case's contacts are its customer's (intake changes it only by a merge)."""
DAYS = st.integers(0, 900)


def owned_contact(case: str, day: int, new_case: bool) -> CaseEntry:
    """A contact of the case's own customer."""
    return contact(case, OWNER[case], day, new_case=new_case)


contacts = st.builds(owned_contact, st.sampled_from(CASES), DAYS, st.booleans())
quotes = st.builds(quote, st.sampled_from(CASES), DAYS, st.sampled_from([0, 500_000]))
contracts = st.builds(
    contract,
    st.sampled_from(CASES),
    DAYS,
    st.sampled_from(["HD-1", "HD-2", "HD-3"]),
    st.integers(1, 9),
)
merges = st.builds(merge, st.sampled_from(CUSTOMERS), st.sampled_from(CUSTOMERS))
streams = st.lists(st.one_of(contacts, contacts, quotes, contracts, merges), max_size=40)


def unique_contracts(items: list) -> list[CaseEntry]:
    """Contracts once per (case, contract id): the earliest by (occurred_at, event id)."""
    seen: dict[tuple[str, str | None], CaseEntry] = {}
    for e in sorted(
        (i for i in items if getattr(i, "kind", None) is EntryKind.CONTRACT),
        key=lambda e: (e.at, e.id),
    ):
        seen.setdefault((e.case_id, e.ref), e)
    return list(seen.values())


def groups_of(items: list) -> dict[str, str]:
    """Every customer's group representative after all merges (brute force)."""
    group = {c: c for c in CUSTOMERS}
    for m in (i for i in items if isinstance(i, CustomerMerge)):
        a, b = group[m.survivor], group[m.merged[0]]
        group = {c: (a if g == b else g) for c, g in group.items()}
    return group


def expected_revenue(items: list) -> dict[str, int]:
    """New vs returning revenue by brute force: a contract is new when no contract of its
    customer's group comes before it."""
    group = groups_of(items)
    case_contacts = [i for i in items if getattr(i, "kind", None) is EntryKind.CONTACT]
    customer_of = {}
    for case in CASES:
        mine = sorted((c for c in case_contacts if c.case_id == case), key=lambda e: (e.at, e.id))
        origin = next((c for c in mine if c.new_case), mine[0] if mine else None)
        if origin:
            customer_of[case] = group[origin.customer_id]
    split: Counter[str] = Counter()
    signed = unique_contracts(items)
    for k in signed:
        customer = customer_of.get(k.case_id)
        earlier = [
            o
            for o in signed
            if customer and customer_of.get(o.case_id) == customer and (o.at, o.id) < (k.at, k.id)
        ]
        split["returning" if earlier else "new"] += k.amount
    return {k: v for k, v in split.items() if v}


def active(days: set[date], boundary: date) -> bool:
    """A contact on one of the 365 days before `boundary`."""
    return any(boundary - timedelta(days=365) <= d < boundary for d in days)


def check_crr_by_brute_force(engine: MetricsEngine, items: list) -> None:
    """Every CRR cell: kept = active at both ends, start = active at the start."""
    group = groups_of(items)
    days: dict[str, set[date]] = {}
    for i in items:
        if getattr(i, "kind", None) is EntryKind.CONTACT:
            days.setdefault(group[i.customer_id], set()).add(local_day(i.at, TZ))
    for key, cell in engine.cells.items():
        if key[0] != "crr":
            continue
        start, end = key[2], (key[2] + {"day": 1, "week": 7}.get(key[1], 0) * timedelta(days=1))
        if key[1] is Window.MONTH:
            end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        at_start = {g for g, d in days.items() if active(d, start)}
        at_end = {g for g, d in days.items() if active(d, end)}
        assert (cell.numerator, cell.denominator) == (len(at_start & at_end), len(at_start)), key


@settings(max_examples=60, deadline=None)
@given(streams, st.randoms(use_true_random=False))
def test_crr_stays_within_0_and_100_and_quote_conversion_within_0_and_1(items, rng):
    engine = fed(items)
    for key, cell in engine.cells.items():
        value = kpi_value(key[0], cell).value
        if key[0] == "crr" and value is not None:
            assert 0 <= value <= 100, key
        if key[0] == "quote_conversion":
            assert value is not None and 0 <= value <= 1, key
    check_crr_by_brute_force(engine, items)
    if unique_contracts(items):
        assert revenue(engine) == expected_revenue(items)

    shuffled = items + [rng.choice(items) for _ in range(len(items) // 3)] if items else []
    rng.shuffle(shuffled)
    assert fed(shuffled).cells == engine.cells  # any order, duplicates included


def random_items(rng: random.Random, n: int = 60) -> list:
    """n random contacts, quotes, contracts and merges over the CASES and CUSTOMERS."""
    items: list = []
    for _ in range(n):
        case, customer, day = rng.choice(CASES), rng.choice(CUSTOMERS), rng.randrange(900)
        pick = rng.random()
        if pick < 0.4:
            items.append(owned_contact(case, day, rng.random() < 0.5))
        elif pick < 0.6:
            items.append(quote(case, day, rng.choice([0, 500_000])))
        elif pick < 0.9:
            items.append(contract(case, day, rng.choice(["HD-1", "HD-2"]), rng.randrange(1, 9)))
        else:
            items.append(merge(customer, rng.choice(CUSTOMERS)))
    return items
