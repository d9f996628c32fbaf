"""Each service alone at saturation: its input topics pre-loaded, time to drain them.

The inputs are the real events the pipeline run produced (contacts, the services' own
outputs, the life-cycle events), copied byte for byte with their keys to a fresh topic
prefix; the service then starts on a fresh database and its consumer groups' committed
offsets are sampled until they reach the ends of its input topics and of the internal
topics it passes events on through (or the time cap). Then: its CPU time per input event,
the runtime's database round trips per consumed record (from /metrics), and, restarted,
how long restoring its partitions' state took.

The service drains its input topics concurrently (one consumer per topic), so a
life-cycle event may be handled before the case it is about exists (the unknown-case path,
cheaper, sometimes a dead letter): the rate of the first input topic (contacts for
intake, case.classified for routing, ...) is reported next to the all-topics rate.
"""

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.infra import (
    Kafka,
    ServiceProcess,
    cpu_seconds,
    document_counts,
    rss_mib,
    scrape,
    wait_ready,
)
from tests.infra import Infra

INPUTS: dict[str, tuple[str, ...]] = {
    "intake": ("contact.received", "case.resolved", "contract.signed", "case.reclassified"),
    "routing": ("case.classified", "case.resolved", "contract.signed", "sla.breached"),
    "followup": (
        "case.classified",
        "case.resolved",
        "care.contact.completed",
        "customer.segment_changed",
        "case.assigned",
        "case.waiting_on_customer",
        "case.customer_replied",
    ),
    "survey": ("case.classified", "case.assigned", "case.resolved", "survey.answered"),
    "metrics": (
        "case.classified",
        "customer.merged",
        "case.assigned",
        "fee.quoted",
        "contract.signed",
        "case.resolved",
        "care.contact.completed",
        "survey.requested",
        "survey.reminded",
        "survey.expired",
        "survey.scored",
        "sla.met",
        "sla.breached",
    ),
}
"""The topics each service consumes (its subscribers)."""


async def copy_topics(
    bootstrap: str, source_prefix: str, target_prefix: str, names: tuple[str, ...], limit: int
) -> int:
    """Copy up to `limit` records per topic (0: all) from one prefix to another; the count."""
    kafka = Kafka(bootstrap)
    async with kafka:
        await kafka.create([target_prefix + n for n in names])
        ends = await kafka.end_offsets([source_prefix + n for n in names])
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    writer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await reader.start()
    await writer.start()
    copied = 0
    try:
        live = {tp: end for tp, end in ends.items() if end > 0}
        if not live:
            return 0
        reader.assign(list(live))
        await reader.seek_to_beginning(*live)
        per_topic: dict[str, int] = {}
        futures = []
        while live:
            batch = await reader.getmany(timeout_ms=500, max_records=2000)
            for tp, records in batch.items():
                name = tp.topic.removeprefix(source_prefix)
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    if limit and per_topic.get(name, 0) >= limit:
                        continue
                    per_topic[name] = per_topic.get(name, 0) + 1
                    futures.append(
                        await writer.send(
                            target_prefix + name,
                            record.value,
                            key=record.key,
                            partition=tp.partition,
                        )
                    )
                    copied += 1
                if await reader.position(tp) >= ends[tp]:
                    live.pop(tp, None)
                    reader.pause(tp)
        await asyncio.gather(*futures)
        return copied
    finally:
        await reader.stop()
        await writer.stop()


async def behind(kafka: Kafka, committed: dict[Any, int]) -> int:
    """Records of the committed topics (inputs and internal ones) not committed yet."""
    topics = sorted({tp.topic for tp in committed})
    ends = await kafka.end_offsets(topics) if topics else {}
    return sum(max(end - committed.get(tp, 0), 0) for tp, end in ends.items())


@dataclass(frozen=True)
class Alone:
    """One service's saturation run."""

    service: str
    events: int
    handled: int
    seconds: float
    per_second: float
    drained: bool
    handled_by_topic: dict[str, int]
    primary_per_second: float
    """Rate of the service's first input (contacts for intake, new cases for routing...)."""
    rss_mib: float | None
    documents: int
    collections: dict[str, int]
    cpu_us_per_event: float | None = None
    """CPU time of the service per input event, while it drained them."""
    round_trips_per_record: float | None = None
    """Database round trips per record consumed (internal hops included), on the runtime."""
    restore_ms: float | None = None
    """Restart after the drain: time to restore its partitions' state (on the runtime)."""


ROUND_TRIPS = "lexcare_runtime_db_round_trips"
CONSUMED = "lexcare_runtime_records_consumed"
RESTORE = "lexcare_runtime_restore_seconds"
KEYS = "lexcare_runtime_keys_in_memory"
RELOADS = "lexcare_runtime_keys_reloaded"
TIMERS = "lexcare_runtime_timers_pending"
LEDGER = "lexcare_runtime_ledger_ids"


async def restore_ms(svc: ServiceProcess, log_dir: Path, timeout: float = 120.0) -> float | None:
    """Start the stopped service again and read how long restoring its partitions took."""
    svc.profile_to = None  # the drain's profile stays: the restart is not profiled
    svc.start(log_dir)
    try:
        await wait_ready([svc])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = await asyncio.to_thread(scrape, svc.port, (RESTORE, KEYS))
            # Restored: the gauge is set once every new partition is in (the keys gauge
            # can be read between two partitions: that read 0 ms in sessions 6 and 7).
            if seen.get(KEYS, 0) > 0 and seen.get(RESTORE, 0.0) > 0:
                return seen[RESTORE] * 1000
            if RESTORE not in seen:
                return None  # not on the runtime
            await asyncio.sleep(0.5)
        return None
    finally:
        await asyncio.to_thread(svc.stop)


async def run_alone(
    infra: Infra,
    service: str,
    source_prefix: str,
    run: str,
    log_dir: Path,
    *,
    max_seconds: float,
    limit: int,
    profile_to: Path | None = None,
) -> Alone:
    """Pre-load the service's inputs, start it, sample its progress until drained or capped."""
    prefix = f"{run}-{service}-"
    db_prefix = f"{run}_{service}"
    names = INPUTS[service]
    total = await copy_topics(infra.kafka, source_prefix, prefix, names, limit)
    svc = ServiceProcess(service, infra, prefix, db_prefix, profile_to=profile_to)
    samples: list[tuple[float, int, int]] = []
    by_topic: dict[str, int] = {}
    group_prefix = f"lexcare-{prefix}{service}"
    cpu: list[float | None] = []
    runtime: dict[str, float] = {}
    try:
        svc.start(log_dir)
        await wait_ready([svc])
        started = time.monotonic()
        cpu.append(cpu_seconds(svc.pid))
        async with Kafka(infra.kafka) as kafka:
            while True:
                committed = await kafka.committed(group_prefix)
                by_topic = {}
                for tp, offset in committed.items():
                    name = tp.topic.removeprefix(prefix)
                    by_topic[name] = by_topic.get(name, 0) + offset
                handled = sum(by_topic.get(n, 0) for n in names)
                now = time.monotonic()
                samples.append((now, handled, by_topic.get(names[0], 0)))
                # Drained: every input committed, and what the service passed on to its own
                # internal topics too (a service on the runtime decides there).
                if handled >= total and await behind(kafka, committed) == 0:
                    break
                if now - started > max_seconds:
                    break
                await asyncio.sleep(0.5)
        rss = rss_mib(svc.pid)
        cpu.append(cpu_seconds(svc.pid))
        runtime = await asyncio.to_thread(scrape, svc.port, (ROUND_TRIPS, CONSUMED))
    finally:
        await asyncio.to_thread(svc.stop)
    restored = await restore_ms(svc, log_dir) if runtime else None
    counts = (await document_counts(infra.mongo_url, db_prefix)).get(service, {})
    end_t, handled, primary = samples[-1]
    moving = [s for s in samples if s[1] > 0]
    if len(moving) >= 3:
        first_t, first_h, first_p = moving[0]
        seconds = end_t - first_t
    else:
        first_h = first_p = 0
        seconds = end_t - samples[0][0] + 0.5
    rate = (handled - first_h) / seconds if seconds > 0 else 0.0
    primary_rate = (primary - first_p) / seconds if seconds > 0 else 0.0
    used = cpu[-1] - cpu[0] if len(cpu) == 2 and None not in cpu else None  # type: ignore[operator]
    consumed = runtime.get(CONSUMED, 0.0)
    return Alone(
        cpu_us_per_event=used / handled * 1e6 if used is not None and handled else None,
        round_trips_per_record=runtime[ROUND_TRIPS] / consumed if consumed else None,
        restore_ms=restored,
        service=service,
        events=total,
        handled=handled,
        seconds=round(seconds, 2),
        per_second=rate,
        drained=handled >= total,
        handled_by_topic=by_topic,
        primary_per_second=primary_rate,
        rss_mib=rss,
        documents=sum(counts.values()),
        collections=counts,
    )
