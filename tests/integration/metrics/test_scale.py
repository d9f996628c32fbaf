"""Two metrics instances share the partitions and publish what one would — over the real
broker and database, with one of them leaving in the middle of the stream."""

import orjson
import pytest

from services.metrics.app import MetricsSettings, build_engine, create_app
from services.metrics.domain import entry_of
from services.metrics.kpis import cell_row
from services.metrics.rebuild import compare
from services.metrics.state import cell_id
from shared.clock import FakeClock
from shared.events import EVENT_MODELS
from tests.conftest import eventually
from tests.integration.metrics.test_golden_scenario import NOW, golden_events
from tests.integration.metrics.test_replay import live_rows
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
async def test_two_instances_then_one_publish_exactly_the_reference_values(
    infra, settings_for, run_app
):
    settings = settings_for(MetricsSettings, publish_interval_s=0.2)
    sent = golden_events()
    engine = build_engine(settings, clock=FakeClock(NOW))
    for raw in sent:
        engine.ingest(entry_of(EVENT_MODELS[raw["event_type"]].model_validate(raw)))
    engine.refresh_crr()
    expected = {cell_id(k): cell_row(k, c) for k, c in engine.cells.items()}

    differences: list = []

    async def live_matches() -> bool:
        differences[:] = compare(await live_rows(settings), expected)
        return not differences

    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        first = await run_app(create_app(settings, FakeClock(NOW)))
        await run_app(create_app(settings, FakeClock(NOW)))
        half = len(sent) // 2
        for raw in sent[:half]:
            await kafka.send(raw["event_type"], raw, key=raw.get("case_id") or raw["event_id"])
        await kafka.read(
            "metrics.kpi", until=lambda rs: any(b'"count":0' not in r.value for r in rs)
        )
        await first.stop()  # its partitions, the totals' perhaps, go to the other
        for raw in sent[half:]:
            await kafka.send(raw["event_type"], raw, key=raw.get("case_id") or raw["event_id"])
        try:
            await eventually(live_matches, timeout=120)
        except AssertionError as e:
            raise AssertionError(f"{len(differences)} differ: {differences[:10]}") from e
        records = await kafka.settle("metrics.kpi", quiet=1.0)
    latest = {r.key.decode(): orjson.loads(r.value) for r in records}
    assert {k for k, v in latest.items() if v["count"] or v["value"] is not None} == set(expected)
