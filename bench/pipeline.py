"""The whole pipeline: saturation throughput, latency at fractions of it, cost growth.

One `Tracker` reads what the services publish (case.classified, case.assigned,
survey.requested, metrics.kpi) with a group-less aiokafka consumer: it times each contact's
case.assigned against the contact's send time, follows the `tft` all-time KPI on
metrics.kpi, and plays the customers and staff: once a new case is assigned it publishes
the case's life cycle (contract.signed, care.contact.completed, case.resolved: staff act
on assigned cases), and it answers surveys.
"""

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from bench import cpu
from bench.generator import (
    RESOLVED_SHARE,
    ContactFactory,
    Publisher,
    answer_for_survey,
    lifecycle_for_case,
)

TFT_ALL = b"tft|all|all|all|all"


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile `q` (0..1) of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
    return ordered[rank - 1]


@dataclass
class Tracker:
    """Follows the pipeline's outputs and publishes the life cycle the system asks for."""

    bootstrap: str
    prefix: str
    publisher: Publisher
    lifecycle: bool = True
    resolved: float = RESOLVED_SHARE
    """The share of new cases resolved."""
    sent_at: dict[str, float] = field(default_factory=dict)
    case_of_contact: dict[str, str] = field(default_factory=dict)
    contact_of_case: dict[str, str] = field(default_factory=dict)
    assigned_at: dict[str, float] = field(default_factory=dict)
    classified_at: dict[str, float] = field(default_factory=dict)
    """When each case's first case.classified was read (intake's last hop), by case id."""
    answered: set[str] = field(default_factory=set)
    waiting: dict[str, dict[str, Any]] = field(default_factory=dict)
    """case.classified of new cases not assigned yet (their life cycle waits)."""
    tft: float = 0.0
    tft_history: list[tuple[float, float]] = field(default_factory=list)
    lifecycle_sent: int = 0
    _task: asyncio.Task | None = None
    _consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Subscribe (from the beginning) and start reading in the background."""
        topics = ("case.classified", "case.assigned", "survey.requested", "metrics.kpi")
        self._consumer = AIOKafkaConsumer(
            *(self.prefix + t for t in topics),
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        while not self._consumer.assignment():
            await self._consumer.getmany(timeout_ms=100)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop reading."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100, max_records=1000)
            now = time.monotonic()
            for tp, records in batch.items():
                topic = tp.topic.removeprefix(self.prefix)
                for record in records:
                    await self._on(topic, record.key, record.value, now)

    async def _on(self, topic: str, key: bytes | None, value: bytes, now: float) -> None:
        if topic == "metrics.kpi":
            if key == TFT_ALL and value:
                numerator = float(orjson.loads(value)["numerator"])
                if numerator > self.tft:
                    self.tft = numerator
                    self.tft_history.append((now, numerator))
            return
        event: dict[str, Any] = orjson.loads(value)
        if topic == "case.classified":
            case_id, contact_id = event["case_id"], event["contact_id"]
            if contact_id in self.case_of_contact:
                return  # a redelivery
            self.case_of_contact[contact_id] = case_id
            self.contact_of_case.setdefault(case_id, contact_id)
            self.classified_at.setdefault(case_id, now)
            if case_id in self.assigned_at:
                await self._live(event)
            else:
                self.waiting[case_id] = event
        elif topic == "case.assigned":
            self.assigned_at.setdefault(event["case_id"], now)
            classified = self.waiting.pop(event["case_id"], None)
            if classified is not None:
                await self._live(classified)
        elif topic == "survey.requested" and self.lifecycle:
            if event["survey_id"] in self.answered:
                return
            self.answered.add(event["survey_id"])
            answer = answer_for_survey(event)
            if answer:
                await self.publisher.send(*answer)
                self.lifecycle_sent += 1

    async def _live(self, classified: dict[str, Any]) -> None:
        """Once a case is assigned, staff and customers act on it: publish its life cycle."""
        if not self.lifecycle:
            return
        for life_topic, life_event in lifecycle_for_case(classified, resolved=self.resolved):
            await self.publisher.send(life_topic, life_event)
            self.lifecycle_sent += 1

    def assigned(self, contact_ids: list[str]) -> list[float]:
        """Assignment times of those contacts whose case was assigned."""
        times = []
        for contact_id in contact_ids:
            case_id = self.case_of_contact.get(contact_id)
            if case_id is not None and case_id in self.assigned_at:
                times.append(self.assigned_at[case_id])
        return times

    def latencies_ms(self, contact_ids: list[str], *, upto: str = "assigned") -> list[float]:
        """contact sent → case.assigned read (or case.classified, `upto="classified"`), in ms,
        for the contacts whose case was assigned."""
        reached = self.classified_at if upto == "classified" else self.assigned_at
        out = []
        for contact_id in contact_ids:
            case_id = self.case_of_contact.get(contact_id)
            if case_id is not None and case_id in self.assigned_at and case_id in reached:
                out.append((reached[case_id] - self.sent_at[contact_id]) * 1000)
        return out

    def tft_reached(self, target: float) -> float | None:
        """When the tft all-time KPI first reached `target` (monotonic), if it did."""
        for at, value in self.tft_history:
            if value >= target:
                return at
        return None


async def wait_for(predicate: Any, timeout: float, step: float = 0.1) -> bool:
    """Poll `predicate()` until true or the deadline; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


@dataclass(frozen=True)
class Saturation:
    """Contacts per second through the pipeline when they arrive all at once."""

    contacts: int
    assigned: int
    to_assigned_per_s: float
    kpi_per_s: float | None
    lifecycle_events: int
    complete: bool
    cpu: dict[str, float] = field(default_factory=dict)
    """Share of a core of each process group until the last contact was assigned."""
    cpu_to_kpi: dict[str, float] = field(default_factory=dict)
    """The same until the KPI counted them all (or 15 s more)."""


async def saturation(
    tracker: Tracker,
    factory: ContactFactory,
    first: int,
    count: int,
    timeout: float,
    pids: dict[str, int],
    *,
    kpi: bool = True,
) -> Saturation:
    """Publish `count` contacts as fast as possible; time until all are assigned and (`kpi`)
    on the KPI, and where the CPU went meanwhile, for the services `pids` names."""
    tft_before = tracker.tft
    ids_before = set(tracker.sent_at)
    lifecycle_before = tracker.lifecycle_sent
    cpu_start = cpu.read(pids)
    started = time.monotonic()
    await tracker.publisher.contacts(factory, first, count, sent_at=tracker.sent_at)
    ids = [i for i in tracker.sent_at if i not in ids_before]
    complete = await wait_for(lambda: len(tracker.assigned(ids)) >= count, timeout)
    cpu_assigned = cpu.read(pids)
    times = tracker.assigned(ids)
    last = max(times) if times else time.monotonic()
    if kpi:
        await wait_for(lambda: tracker.tft >= tft_before + count, 15.0)
    cpu_kpi = cpu.read(pids)
    kpi_at = tracker.tft_reached(tft_before + count)
    return Saturation(
        contacts=count,
        assigned=len(times),
        to_assigned_per_s=len(times) / (last - started) if times else 0.0,
        kpi_per_s=count / (kpi_at - started) if kpi_at else None,
        lifecycle_events=tracker.lifecycle_sent - lifecycle_before,
        complete=complete,
        cpu=cpu.shares(cpu_start, cpu_assigned),
        cpu_to_kpi=cpu.shares(cpu_start, cpu_kpi),
    )


@dataclass(frozen=True)
class Latency:
    """contact → case.assigned latency at one offered rate."""

    fraction: float
    rate: float
    contacts: int
    assigned: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    classified_p50_ms: float | None = None
    """contact → case.classified (intake's part of the way), median."""
    classified_p99_ms: float | None = None


async def latency(
    tracker: Tracker,
    factory: ContactFactory,
    first: int,
    *,
    fraction: float,
    rate: float,
    seconds: float,
    drain: float,
) -> Latency:
    """Publish contacts at `rate`/s for `seconds`; percentiles of contact → case.assigned."""
    ids_before = set(tracker.sent_at)
    count = max(1, int(rate * seconds))
    await tracker.publisher.contacts(factory, first, count, rate=rate, sent_at=tracker.sent_at)
    ids = [i for i in tracker.sent_at if i not in ids_before]
    await wait_for(lambda: len(tracker.assigned(ids)) >= count, drain)
    lat = tracker.latencies_ms(ids)
    intake = tracker.latencies_ms(ids, upto="classified")
    return Latency(
        fraction=fraction,
        rate=rate,
        contacts=count,
        assigned=len(lat),
        p50_ms=percentile(lat, 0.50),
        p95_ms=percentile(lat, 0.95),
        p99_ms=percentile(lat, 0.99),
        classified_p50_ms=percentile(intake, 0.50),
        classified_p99_ms=percentile(intake, 0.99),
    )
