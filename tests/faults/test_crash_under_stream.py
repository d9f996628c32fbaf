"""Each service in turn is SIGKILLed mid-stream and restarted, or joined mid-stream by a
second instance that takes a share of its partitions and then leaves, while contacts go
through their whole life cycle (classified, assigned, quoted, contracted, cared for,
resolved, surveyed). At the end: one case per contact, no duplicate request for one
request id, every KPI equal to the value computed from the input, nothing dead-lettered.

The issue asks for 2,000 contacts; CI runs LEXCARE_FAULTS_CONTACTS (default 100) to keep
the tier within minutes on a 2-core machine:
    LEXCARE_FAULTS_CONTACTS=2000 uv run pytest tests/faults/test_crash_under_stream.py
"""

import asyncio
import json
import os
import signal
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from shared import topics
from tests.conftest import eventually
from tests.faults.tools import (
    SERVICES,
    ServiceProcess,
    assigned,
    handled,
    pipeline,
    pipeline_process,
)
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.faults

CONTACTS = int(os.environ.get("LEXCARE_FAULTS_CONTACTS", "100"))
CHANNELS = ["zalo", "facebook", "website", "phone", "email", "walk_in"]
MESSAGES = [
    "Tôi muốn hỏi về tranh chấp đất đai với hàng xóm",
    "Tôi muốn ly hôn đơn phương, chồng tôi không đồng ý",
    "Công ty nợ lương ba tháng, tôi muốn khởi kiện",
    "Tôi bị phạt vi phạm giao thông, muốn khiếu nại",
    "Thủ tục thành lập doanh nghiệp cần những gì",
]


def envelope(event_type: str, at: str, **payload: object) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": at,
        "producer": "stream-test",
        **payload,
    }


class Story:
    """The input, and the KPI values it implies."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.contacts = [
            envelope(
                "contact.received",
                f"2026-11-23T{8 + n % 9:02d}:{n % 60:02d}:00+07:00",
                channel=CHANNELS[n % len(CHANNELS)],
                sender_id=f"sender-{n}",
                kind="complaint" if n % 7 == 0 else "inquiry",
                message=MESSAGES[n % len(MESSAGES)],
            )
            for n in range(count)
        ]
        self.index = {c["event_id"]: n for n, c in enumerate(self.contacts)}

    @staticmethod
    def amount(n: int) -> int | None:
        return 1_000_000 * (n % 5 + 1) if n % 2 == 0 else None

    @staticmethod
    def scores(n: int) -> dict[str, int]:
        return {"nps": n % 11, "csat": n % 5 + 1, "ces": n % 7 + 1}

    def expected(self) -> dict[str, tuple[float, float]]:
        """(numerator, denominator) of all-time KPIs, from the input alone."""
        n = len(self.contacts)
        nps = [self.scores(i)["nps"] for i in range(n)]
        promoters = sum(1 for s in nps if s >= 9)
        detractors = sum(1 for s in nps if s <= 6)
        amounts = [a for i in range(n) if (a := self.amount(i)) is not None]
        return {
            "tft": (n, 1),
            "complaint_rate": (sum(1 for i in range(n) if i % 7 == 0), n),
            "resolved_cases": (n, 1),
            "revenue_vnd": (sum(amounts), 1),
            "survey_response_rate": (n, n),
            "nps": (promoters - detractors, n),
            "csat": (sum(1 for i in range(n) if self.scores(i)["csat"] >= 4), n),
        }


async def _reader(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    reader = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await reader.start()
    return reader


async def react(
    infra, prefix: str, kafka: RawKafka, story: Story, stop: asyncio.Event, *, twice: bool = False
) -> None:
    """Play the staff and the adapters: contract, care, resolution, survey answers.

    With `twice`, every event is published two times, and every third case gets its
    resolution before its contract and care report (disorder)."""
    cases: dict[str, int] = {}
    assigned: set[str] = set()
    answered: set[str] = set()
    waiting: list[dict] = []  # assignments and surveys read before their classification
    readers = {
        t: await _reader(infra.kafka, prefix + t)
        for t in (topics.CASE_CLASSIFIED, topics.CASE_ASSIGNED, topics.SURVEY_REQUESTED)
    }
    try:
        while not stop.is_set():
            for reader in readers.values():
                batch = await reader.getmany(timeout_ms=100)
                for records in batch.values():
                    waiting.extend(orjson.loads(record.value) for record in records)
            later = []
            for event in waiting:
                case = event["case_id"]
                if event["event_type"] == topics.CASE_CLASSIFIED:
                    cases.setdefault(case, story.index[event["contact_id"]])
                elif case not in cases:
                    later.append(event)
                elif event["event_type"] == topics.CASE_ASSIGNED and case not in assigned:
                    assigned.add(case)
                    await act_on_case(kafka, story, case, cases[case], twice=twice)
                elif (
                    event["event_type"] == topics.SURVEY_REQUESTED
                    and event["survey_id"] not in answered
                ):
                    answered.add(event["survey_id"])
                    answer = envelope(
                        "survey.answered",
                        "2026-11-24T10:00:00+07:00",
                        case_id=case,
                        survey_id=event["survey_id"],
                        **story.scores(cases[case]),
                    )
                    for _ in range(2 if twice else 1):
                        await kafka.send("survey.answered", answer, key=case)
            waiting = later
    finally:
        for reader in readers.values():
            await reader.stop()


async def act_on_case(
    kafka: RawKafka, story: Story, case: str, n: int, *, twice: bool = False
) -> None:
    at = "2026-11-23T18:00:00+07:00"
    events = []
    if (amount := story.amount(n)) is not None:
        contract = envelope(
            "contract.signed",
            at,
            case_id=case,
            contract_id=f"ct-{n}",
            amount_vnd=amount,
            delivery_method="office",
        )
        events.append(contract)
    care = envelope(
        "care.contact.completed", at, case_id=case, agent_id="agent-1", outcome="reached"
    )
    events.append(care)
    resolved = envelope("case.resolved", "2026-11-23T20:00:00+07:00", case_id=case, outcome="won")
    events.append(resolved)
    if twice and n % 3 == 0:
        events.reverse()
    for event in events:
        for _ in range(2 if twice else 1):
            await kafka.send(event["event_type"], event, key=case)


def fetch_kpis(port: int) -> dict[str, dict]:
    url = f"http://127.0.0.1:{port}/kpis?window=all&dimension=all"
    with urllib.request.urlopen(url, timeout=5) as reply:
        return {row["kpi"]: row for row in json.loads(reply.read())["kpis"]}


def mismatches(port: int, expected: dict[str, tuple[float, float]]) -> dict[str, object]:
    try:
        rows = fetch_kpis(port)
    except OSError as e:
        return {"http": str(e)}
    wrong = {}
    for kpi, (numerator, denominator) in expected.items():
        row = rows.get(kpi, {})
        got = (row.get("numerator"), row.get("denominator"))
        if got != (numerator, denominator):
            wrong[kpi] = {"got": got, "expected": (numerator, denominator)}
    return wrong


@dataclass
class EndState:
    """What the pipeline produced once every survey was scored and the KPIs settled."""

    scored: list[dict]
    kpi_wrong: dict[str, object]
    classified: list
    requested: list
    care: list
    dead: dict[str, int]


async def end_state(
    kafka: RawKafka,
    story: "Story",
    stop: asyncio.Event,
    reactor: asyncio.Task,
    metrics_port: int,
    *,
    timeout: float,
) -> EndState:
    """Wait for every contact's survey score and the KPIs, stop the staff, read the outputs.

    The staff dying (its own broker client failing) fails the test at once, with its error:
    the services would otherwise look stalled, waiting for answers nobody sends."""
    waiting = asyncio.ensure_future(
        kafka.distinct("survey.scored", count=story.count, timeout=timeout)
    )
    await asyncio.wait({waiting, reactor}, return_when=asyncio.FIRST_COMPLETED)
    if reactor.done() and not waiting.done():
        waiting.cancel()
        reactor.result()  # its exception, raised here
        raise AssertionError("the staff stopped before every survey was scored")
    scored = await waiting
    expected = story.expected()
    await eventually(lambda: not mismatches(metrics_port, expected), timeout=90, interval=1)
    kpi_wrong = mismatches(metrics_port, expected)
    stop.set()
    await reactor
    return EndState(
        scored=scored,
        kpi_wrong=kpi_wrong,
        classified=await kafka.settle("case.classified", quiet=1.0),
        requested=await kafka.settle("survey.requested", quiet=0.5),
        care=await kafka.settle("care.contact.requested", quiet=0.5),
        dead={t: len(await kafka.settle(f"{t}.dlq", quiet=0.2)) for t in topics.EVENT_TOPICS},
    )


def assert_one_outcome_per_contact(end: EndState, story: "Story") -> None:
    """One case per contact, one survey request per survey, every case scored, KPIs exact,
    nothing dead-lettered."""
    per_contact = by_id(end.classified, "contact_id")
    assert set(per_contact) == set(story.index), "every contact classified"
    assert all(len(ids) == 1 for ids in per_contact.values()), "one case.classified per contact"
    assert len({orjson.loads(r.value)["case_id"] for r in end.classified}) == story.count
    assert all(len(ids) == 1 for ids in by_id(end.requested, "survey_id").values()), (
        "a survey requested twice"
    )
    assert len({s["case_id"] for s in end.scored}) == story.count
    dead = end.dead
    assert sum(dead.values()) == 0, f"dead letters: { {t: n for t, n in dead.items() if n} }"
    assert end.kpi_wrong == {}


def by_id(records: list, field: str) -> dict[str, set[str]]:
    """Distinct event ids per value of `field` (a request id, a contact id)."""
    ids: dict[str, set[str]] = defaultdict(set)
    for record in records:
        event = orjson.loads(record.value)
        ids[event[field]].add(event["event_id"])
    return ids


Send = Callable[[list[dict]], Awaitable[None]]


async def run_story(
    infra,
    namespace: str,
    tmp_path: Path,
    story: Story,
    turn: Callable[[str, list[dict], dict[str, ServiceProcess], Send], Awaitable[None]],
) -> EndState:
    """Run the five services on the story while the staff reacts; the contacts go in one
    chunk per service, each chunk through `turn(service, chunk, services, send)`, which
    sends it and disturbs that service on the way. Return what the pipeline produced."""
    prefix = f"{namespace}."
    services = pipeline(
        kafka=infra.kafka, mongo_url=infra.mongo_url, namespace=namespace, logs=tmp_path
    )
    stop = asyncio.Event()
    try:
        for service in services.values():
            service.start()
        await asyncio.gather(*(s.wait_ready(timeout=90) for s in services.values()))
        async with RawKafka(infra.kafka, prefix) as kafka:
            reactor = asyncio.create_task(react(infra, prefix, kafka, story, stop))

            async def send(contacts: list[dict]) -> None:
                for contact in contacts:
                    await kafka.send("contact.received", contact, key=contact["sender_id"])
                    await asyncio.sleep(0.01)  # a steady stream, not one burst

            chunk = -(-story.count // len(SERVICES))
            for n, name in enumerate(SERVICES):
                await turn(name, story.contacts[n * chunk : (n + 1) * chunk], services, send)
                assert not reactor.done(), reactor.exception()
            return await end_state(
                kafka, story, stop, reactor, services["metrics"].port, timeout=240 + story.count
            )
    finally:
        stop.set()
        for service in services.values():
            await service.terminate()


def assert_the_whole_story(end: EndState, story: Story) -> None:
    """One outcome per contact, every case surveyed once, every care request made once."""
    assert_one_outcome_per_contact(end, story)
    assert len(by_id(end.requested, "survey_id")) == story.count
    assert all(len(ids) == 1 for ids in by_id(end.care, "request_id").values())


@pytest.mark.timeout(900)  # a deadline for slow shared machines, not a timing check
async def test_each_service_killed_mid_stream_loses_and_double_counts_nothing(
    infra, namespace, tmp_path
):
    story = Story(CONTACTS)
    restarted: list[int] = []

    async def kill(name: str, contacts: list[dict], services, send: Send) -> None:
        await send(contacts)
        services[name].kill()  # SIGKILL mid-stream
        services[name].start()
        await services[name].wait_ready(timeout=90)
        restarted.append(services[name].starts - 1)

    end = await run_story(infra, namespace, tmp_path, story, kill)

    assert_the_whole_story(end, story)
    print(
        f"\n{CONTACTS} contacts, {len(restarted)} SIGKILLs and restarts, 0 lost, 0 KPI mismatches"
    )
    assert restarted == [1] * len(SERVICES)


@pytest.mark.timeout(900)  # a deadline for slow shared machines, not a timing check
async def test_a_second_instance_of_each_service_joining_and_leaving_mid_stream_changes_nothing(
    infra, namespace, tmp_path
):
    story = Story(CONTACTS)
    owned: dict[str, list[list[int]]] = {}
    done: dict[str, float] = {}

    async def join_and_leave(name: str, contacts: list[dict], services, send: Send) -> None:
        await send(contacts[: len(contacts) // 2])
        joiner = pipeline_process(
            name,
            kafka=infra.kafka,
            mongo_url=infra.mongo_url,
            namespace=namespace,
            log=tmp_path / f"{name}-joiner.log",
        )
        joiner.start()  # the same consumer group: the partitions are shared
        await joiner.wait_ready(timeout=90)
        await eventually(lambda: any(assigned(joiner)), timeout=60)
        await send(contacts[len(contacts) // 2 :])
        await eventually(lambda: handled(joiner) > 0, timeout=60)  # a share of the work
        owned[name], done[name] = assigned(joiner), handled(joiner)
        # Leaves mid-stream (uvicorn re-raises the SIGTERM once shut down).
        assert await joiner.terminate() in (0, -signal.SIGTERM), joiner.tail()

    end = await run_story(infra, namespace, tmp_path, story, join_and_leave)

    assert_the_whole_story(end, story)
    shared = {name: [p for p in rounds if p] for name, rounds in owned.items()}
    assert set(shared) == set(SERVICES) and all(shared.values()), owned
    # A clean rebalance hands each partition over whole: no instance ever ran on a state
    # another one had moved past (which fencing would catch and repair).
    fenced = [log.name for log in tmp_path.glob("*.log") if "partition_fenced" in log.read_text()]
    assert fenced == [], f"fenced in {fenced}"
    print(f"\n{CONTACTS} contacts; second instances owned {shared}, handled {done}; 0 lost")
