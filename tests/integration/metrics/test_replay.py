"""Replay equality, duplicates, out-of-order delivery, a restart, and no personal data on
metrics.kpi — over the real broker and database."""

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from services.metrics.app import MetricsSettings, build_engine, create_app
from services.metrics.board import KpiBoard
from services.metrics.domain import entry_of
from services.metrics.kpis import cell_row
from services.metrics.rebuild import compare, rebuild
from services.metrics.state import cell_id
from shared.clock import FakeClock
from shared.events import EVENT_MODELS
from tests.conftest import eventually
from tests.integration.metrics import scenario as s
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CHANNELS = ("zalo", "facebook", "website", "phone", "email", "walk_in")
FIELDS = ("land", "family", "labor", "criminal", "traffic")
LAWYERS = ("law-1", "law-2", "law-3")


def random_story(rng: random.Random, case: int) -> list[dict]:
    """One case's events at random business times over about two months (one case in ten
    from more than a year before: those customers come back after 365 days idle)."""
    case_id, customer = f"case-{case}", f"cus-{rng.randrange(25)}"
    channel, field, lawyer = rng.choice(CHANNELS), rng.choice(FIELDS), rng.choice(LAWYERS)
    t = datetime(2026, 10, 20, 8, tzinfo=TZ) + timedelta(minutes=rng.randrange(60 * 24 * 60))
    if rng.random() < 0.1:
        t -= timedelta(days=rng.randrange(366, 500))
    legal_aid = rng.random() < 0.1

    def at(hours: float) -> str:
        return (t + timedelta(hours=hours)).isoformat()

    events = [
        s.classified(
            case_id,
            customer,
            at(0),
            channel=channel,
            legal_field=field,
            complaint=rng.random() < 0.2,
            legal_aid=legal_aid,
            segment=rng.choice(["new", "potential", "customer", "lapsed"]),
        )
    ]
    if rng.random() < 0.5:
        events.append(
            s.classified(
                case_id,
                customer,
                at(rng.uniform(1, 48)),
                channel=channel,
                legal_field=field,
                new_case=False,
            )
        )
    if rng.random() < 0.9:
        events.append(s.assigned(case_id, at(rng.uniform(0, 2)), lawyer, field))
        events.append(s.quoted(case_id, at(rng.uniform(2, 3)), field, legal_aid=legal_aid))
    for hours in sorted(rng.uniform(0, 72) for _ in range(rng.randrange(3))):
        events.append(s.care_completed(case_id, at(hours), rng.choice(["reached", "no_answer"])))
    for _ in range(rng.choice([0, 0, 1, 2])):  # two contracts on one case count once
        events.append(s.contract(case_id, at(rng.uniform(3, 100)), rng.randrange(1, 50) * 100_000))
    if rng.random() < 0.6:
        done = rng.uniform(100, 400)
        events.append(s.resolved(case_id, at(done), lawyer))
        survey = f"srv-{case}"
        events.append(s.survey_requested(survey, case_id, at(done + 0.1), channel))
        if rng.random() < 0.6:
            events.append(
                s.survey_scored(
                    survey,
                    case_id,
                    at(done + rng.uniform(1, 30)),
                    channel=channel,
                    legal_field=field,
                    lawyer=lawyer,
                    nps=rng.randrange(11),
                    csat=rng.randrange(1, 6),
                    ces=rng.randrange(1, 8),
                )
            )
        else:
            events.append(s.survey_expired(survey, case_id, at(done + 168), channel))
    return events


def comeback() -> list[dict]:
    """A customer who never signed, back after more than 365 days idle, signs twice."""
    where = {"channel": "zalo", "legal_field": "land"}
    return [
        s.classified("case-old", "cus-30", "2025-09-01T10:00:00+07:00", **where),
        s.classified("case-back", "cus-30", "2026-11-20T10:00:00+07:00", **where, segment="lapsed"),
        s.quoted("case-back", "2026-11-20T11:00:00+07:00", "land"),
        s.contract("case-back", "2026-11-22T10:00:00+07:00", 1_000_000),
        s.contract("case-back", "2026-11-21T10:00:00+07:00", 2_000_000),
    ]


def random_log(seed: int, cases: int = 30) -> tuple[list[dict], list[dict]]:
    """(unique events, what is sent: shuffled, with duplicates)."""
    rng = random.Random(seed)
    unique = [e for case in range(cases) for e in random_story(rng, case)]
    unique += [
        s.merged(f"cus-{a}", [f"cus-{a + 1}"], "2026-11-01T12:00:00+07:00") for a in (3, 7, 8)
    ]
    unique += comeback()
    sent = unique + rng.sample(unique, len(unique) // 6)
    rng.shuffle(sent)
    return unique, sent


NOW = datetime(2026, 12, 31, 12, tzinfo=TZ)
"""Today for the live and the rebuilt engines: CRR runs for every period up to it."""


def expected_docs(settings: MetricsSettings, events: list[dict]) -> dict[str, dict]:
    """KPI rows the reference engine computes from the unique events, by cell id."""
    engine = build_engine(settings, clock=FakeClock(NOW))
    for raw in events:
        model = EVENT_MODELS[raw["event_type"]]
        engine.ingest(entry_of(model.model_validate_json(orjson.dumps(raw))))
    engine.refresh_crr()
    return {cell_id(k): cell_row(k, c) for k, c in engine.cells.items()}


async def live_rows(settings: MetricsSettings) -> dict[str, dict]:
    """The latest value of every key on metrics.kpi, as a BI tool reads them now."""
    board = KpiBoard(settings)
    try:
        await board.read_to_end()
    finally:
        await board.stop()
    return {key.decode(): row for key, row in board.rows.items()}


@pytest.mark.timeout(600)
async def test_live_equals_rebuilt_after_duplicates_reordering_and_a_restart(
    infra, settings_for, run_app
):
    settings = settings_for(MetricsSettings, publish_interval_s=0.2)
    unique, sent = random_log(seed=7)
    expected = expected_docs(settings, unique)
    values = [(d["kpi"], d["value"]) for d in expected.values() if d["value"] is not None]
    assert all(0 <= v <= 100 for k, v in values if k == "crr")
    assert all(0 <= v <= 1 for k, v in values if k == "quote_conversion")
    differences: list = []

    async def live_matches() -> bool:
        differences[:] = compare(await live_rows(settings), expected)
        return not differences

    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        first = await run_app(create_app(settings, FakeClock(NOW)))
        half = len(sent) // 2
        for raw in sent[:half]:
            await kafka.send(raw["event_type"], raw, key=raw.get("case_id") or raw["event_id"])
        # A restart in the middle of the stream, once the first instance has published.
        await kafka.read("metrics.kpi", until=bool, timeout=60)
        await first.stop()  # state comes back from MongoDB
        await run_app(create_app(settings, FakeClock(NOW)))
        for raw in sent[half:]:
            await kafka.send(raw["event_type"], raw, key=raw.get("case_id") or raw["event_id"])

        # A deadline for slow machines, not a timing check: a wrong aggregate never
        # matches, whatever the wait.
        try:
            await eventually(live_matches, timeout=240)
        except AssertionError as e:
            raise AssertionError(f"{len(differences)} differ: {differences[:10]}") from e
        report = await rebuild(settings, FakeClock(NOW))
        assert report.events == len(sent)
        assert report.kpis == len(expected)
        assert report.differences == []

        records = await kafka.settle("metrics.kpi", quiet=1.0)

    assert records
    latest = {r.key.decode(): orjson.loads(r.value) for r in records}
    for ident, doc in expected.items():
        assert latest[ident]["value"] == doc["value"], ident
        assert latest[ident]["count"] == doc["count"], ident
    everything = b"\n".join(r.value + b"|" + r.key for r in records).decode()
    for personal in s.PERSONAL.values():
        assert personal not in everything
    assert "cus-" not in everything and "case-" not in everything
    assert "912345678" not in everything and "@" not in everything
    fields = set().union(*(orjson.loads(r.value).keys() for r in records))
    assert not fields & {"name", "phone", "email", "customer_id", "contact", "message"}
