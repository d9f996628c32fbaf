"""`python -m bench`: baseline, each service alone, the whole pipeline, cost growth, gateway.

Prints one table (each throughput also as a ratio of the raw pass-through baseline
measured in the same run) and writes it as JSON to bench/results/<timestamp>.json.
See docs/benchmarks.md.
"""

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import alone, baseline, classifier, cpu, desk, gateway, pipeline, stalls
from bench.alone import KEYS, LEDGER, RELOADS, TIMERS, restore_ms
from bench.generator import ContactFactory, Publisher, contact_key, load_corpus, utc_now
from bench.infra import (
    SERVICES,
    Kafka,
    ServiceProcess,
    document_counts,
    drop_databases,
    provide_infra,
    rss_mib,
    running,
    scrape,
)
from bench.report import render_table, rows_from
from tests.infra import Infra

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Sizes of every phase; defaults finish in about ten minutes on a 2-core machine."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--baseline-events", type=int, default=20_000)
    p.add_argument("--baseline-repeats", type=int, default=3, help="the best run counts")
    p.add_argument("--contacts", type=int, default=500, help="saturation run: contacts at once")
    p.add_argument("--saturation-timeout", type=float, default=150.0)
    p.add_argument("--latency-levels", default="0.25,0.5,0.75", help="fractions of saturation")
    p.add_argument(
        "--latency-rates",
        default="",
        help="contacts/s for the latency runs instead of fractions of saturation (A/B runs)",
    )
    p.add_argument("--latency-seconds", type=float, default=20.0)
    p.add_argument("--alone-seconds", type=float, default=40.0, help="cap per service")
    p.add_argument("--alone-limit", type=int, default=0, help="records per input topic (0: all)")
    p.add_argument(
        "--growth", default="10000", help="events handled at which to sample RSS and documents"
    )
    p.add_argument("--growth-timeout", type=float, default=150.0)
    p.add_argument(
        "--growth-contacts",
        default="",
        help="contacts of history at which to sample RSS and documents (instead of --growth): "
        "fed at --growth-rate of saturation, sampled once every service has caught up",
    )
    p.add_argument("--growth-rate", type=float, default=0.6, help="fraction of saturation")
    p.add_argument(
        "--growth-restore",
        action="store_true",
        help="after growth, restart each service on its grown state and time the restore",
    )
    p.add_argument("--large", action="store_true", help="growth at 10k, 100k and 1M events")
    p.add_argument("--no-lifecycle", action="store_true", help="contacts only")
    p.add_argument(
        "--resolved",
        type=float,
        default=0.7,
        help="share of new cases the life cycle resolves (1.0: every case ends)",
    )
    p.add_argument(
        "--phases",
        default="classifier,baseline,pipeline,alone,gateway,desk",
        help="comma list of phases to run",
    )
    p.add_argument("--gateway-requests", type=int, default=2000, help="signed webhooks posted")
    p.add_argument("--gateway-concurrency", type=int, default=32, help="HTTP clients at once")
    p.add_argument("--desk-cases", type=int, default=100_000, help="cases in the desk's read model")
    p.add_argument("--services", default=",".join(SERVICES), help="services for 'alone'")
    p.add_argument(
        "--pipeline-services",
        default=",".join(SERVICES),
        help="services the pipeline runs (intake,routing: the way to case.assigned alone, as "
        "if the others ran on other cores; saturation then skips the KPI)",
    )
    p.add_argument(
        "--profile",
        default="",
        help="services to run under pyinstrument (comma list): in 'alone', or in the pipeline "
        "when 'alone' is not among the phases",
    )
    p.add_argument(
        "--trace-memory",
        action="store_true",
        help="run the pipeline's services under tracemalloc; each growth sample writes "
        "<out>/<run>-memory/<service>-<n>.txt (what holds memory, what grew since the last)",
    )
    p.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="SERVICE:NAME=VALUE",
        help="an environment variable for one pipeline service only (repeatable), e.g. "
        "metrics:LEXCARE_RUNTIME_FETCH_WAIT_MS=500",
    )
    p.add_argument(
        "--trim-memory",
        action="store_true",
        help="run the pipeline's services under bench.trimmed: each growth sample reads RSS, "
        "has every service return its free heap (malloc_trim), and reads RSS again",
    )
    p.add_argument(
        "--stalls",
        type=float,
        default=0.0,
        metavar="MS",
        help="watch each pipeline service's event loop (bench.stalls): per latency run, its "
        "stalls over MS ms, their total length and the CPU it got during them (0: off)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--keep", action="store_true", help="keep topics and databases")
    args = p.parse_args(argv)
    if args.large:
        args.growth = "10000,100000,1000000"
        args.growth_timeout = max(args.growth_timeout, 6 * 3600.0)
    return args


PHASES = ("wait", "rules", "persist", "publish", "commit")
_PHASE = "lexcare_runtime_phase_seconds"


async def phase_totals(procs: list[ServiceProcess]) -> dict[str, dict[str, float]]:
    """Each service's runtime cycle phases so far: seconds and cycles, by phase."""
    names = tuple(f'{_PHASE}_{kind}{{phase="{p}"}}' for p in PHASES for kind in ("sum", "count"))
    return {p.name: await asyncio.to_thread(scrape, p.port, names) for p in procs}


def cycle_phases(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Mean milliseconds per cycle of each phase between two `phase_totals`, per service."""
    means: dict[str, dict[str, float]] = {}
    for service, totals in after.items():
        old = before.get(service, {})
        row: dict[str, float] = {}
        for phase in PHASES:
            total, count = (f'{_PHASE}_{kind}{{phase="{phase}"}}' for kind in ("sum", "count"))
            cycles = totals.get(count, 0.0) - old.get(count, 0.0)
            if cycles > 0:
                row[phase] = round(
                    (totals.get(total, 0.0) - old.get(total, 0.0)) / cycles * 1000, 2
                )
        means[service] = row
    return means


async def settled(kafka: Kafka, prefix: str, timeout: float, slack: int = 50) -> bool:
    """Wait until every service's group has committed all but `slack` records of what it
    consumes (the tracker's life-cycle answers keep trickling in); False past `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        groups = await kafka.committed_by_group(f"lexcare-{prefix}")
        lag = {group: await alone.behind(kafka, offsets) for group, offsets in groups.items()}
        if sum(lag.values()) <= slack:
            return True
        if time.monotonic() >= deadline:
            log(f"records not committed yet, by consumer group: {lag}")
            return False
        await asyncio.sleep(2.0)


def log(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def run_baseline(
    infra: Infra, run: str, factory: ContactFactory, n: int, repeats: int
) -> dict:
    """Pre-load n contacts and pass them through with raw aiokafka `repeats` times; the best."""
    prefix = f"{run}-base-"
    async with Kafka(infra.kafka) as kafka:
        await kafka.create([prefix + "contact.received", prefix + "out"])
    publisher = Publisher(infra.kafka, prefix)
    await publisher.start()
    try:
        futures = []
        for i in range(n):
            contact = factory.contact(1_000_000_000 + i)
            futures.append(await publisher.send("contact.received", contact, contact_key(contact)))
        await asyncio.gather(*futures)
    finally:
        await publisher.stop()
    runs = [
        await baseline.pass_through(
            infra.kafka, prefix + "contact.received", prefix + "out", f"{prefix}group{i}", n
        )
        for i in range(max(1, repeats))
    ]
    best = max(runs, key=lambda r: r.per_second)  # the ceiling: the least disturbed run
    return {
        "events": best.events,
        "seconds": best.seconds,
        "per_second": best.per_second,
        "all_runs_per_second": [r.per_second for r in runs],
    }


async def snapshot(
    infra: Infra, kafka: Kafka, prefix: str, db_prefix: str, procs: list[ServiceProcess]
) -> dict:
    """Events handled so far (all services), RSS per service, documents per service."""
    handled = sum((await kafka.committed(f"lexcare-{prefix}")).values())
    counts = await document_counts(infra.mongo_url, db_prefix)
    for p in procs:
        if p.trace_to is not None:
            p.sample()  # with --trace-memory: where each service's memory is, now
    names = (KEYS, RELOADS, TIMERS, LEDGER)
    gauges = {p.name: await asyncio.to_thread(scrape, p.port, names) for p in procs}
    rss = {p.name: rss_mib(p.pid) for p in procs}
    trimmed: dict[str, float | None] = {}
    heaps: dict[str, dict[str, float]] = {}
    if any(p.trim for p in procs):
        for p in procs:
            if p.trim:
                p.sample()
        await asyncio.sleep(2.0)  # the signal runs between two of the service's bytecodes
        trimmed = {p.name: rss_mib(p.pid) for p in procs}
        heaps = {p.name: p.heap() for p in procs if p.trim}
    return {
        "events_handled": handled,
        "rss_mib": rss,
        "rss_given_back_mib": trimmed,
        "heap_mib": heaps,
        "keys_in_memory": {name: g.get(KEYS) for name, g in gauges.items()},
        "keys_reloaded": {name: g.get(RELOADS) for name, g in gauges.items()},
        "timers_pending": {name: g.get(TIMERS) for name, g in gauges.items()},
        "ledger_ids": {name: g.get(LEDGER) for name, g in gauges.items()},
        "documents": {svc: sum(c.values()) for svc, c in counts.items()},
        "collections": counts,
    }


async def settle(tracker: pipeline.Tracker, kafka: Kafka, prefix: str, timeout: float) -> None:
    """Wait until every contact sent so far is assigned and every service's consumer group
    has caught up with its input: a backlog anywhere would skew latencies."""
    started = time.monotonic()
    sent = list(tracker.sent_at)
    if not await pipeline.wait_for(lambda: len(tracker.assigned(sent)) >= len(sent), timeout):
        log(f"backlog not drained in {timeout:.0f}s: {len(tracker.assigned(sent))}/{len(sent)}")
    if not await settled(kafka, prefix, max(1.0, timeout - (time.monotonic() - started))):
        log(f"services not caught up in {timeout:.0f}s")
    log(f"settled in {time.monotonic() - started:.1f}s")


def service_env(pairs: list[str], service: str) -> dict[str, str]:
    """The `--service-env` variables meant for `service` ("service:NAME=VALUE" each)."""
    env: dict[str, str] = {}
    for pair in pairs:
        target, _, assignment = pair.partition(":")
        name, equals, value = assignment.partition("=")
        if not equals or not name:
            raise SystemExit(f"--service-env {pair!r}: expected SERVICE:NAME=VALUE")
        if target == service:
            env[name] = value
    return env


def latency_levels(args: argparse.Namespace, saturation: float) -> list[tuple[float, float]]:
    """(fraction of saturation, contacts/s) of each latency run: `--latency-rates` when
    given (the same load for runs whose saturation differs), else `--latency-levels`."""
    if args.latency_rates:
        rates = [float(r) for r in args.latency_rates.split(",") if r]
        return [(r / saturation, r) for r in rates]
    return [(float(f), saturation * float(f)) for f in args.latency_levels.split(",") if f]


async def run_pipeline(
    infra: Infra, run: str, factory: ContactFactory, args: argparse.Namespace, log_dir: Path
) -> dict:
    """All five services: saturation, latency at fractions of it, cost growth."""
    prefix = f"{run}-pipe-"
    db_prefix = f"{run}_pipe"
    traced = args.out / f"{run}-memory" if args.trace_memory else None
    profiled = set() if "alone" in args.phases.split(",") else set(args.profile.split(","))
    procs = [
        ServiceProcess(
            name,
            infra,
            prefix,
            db_prefix,
            profile_to=args.out / f"{run}-pipeline-profile-{name}.txt"
            if name in profiled
            else None,
            trace_to=traced,
            trim=args.trim_memory,
            stalls_to=log_dir / f"{prefix}{name}-stalls.jsonl" if args.stalls else None,
            stalls_ms=args.stalls,
            extra_env=service_env(args.service_env, name),
        )
        for name in SERVICES
        if name in args.pipeline_services.split(",")
    ]
    out: dict[str, Any] = {"prefix": prefix}
    async with running(procs, log_dir), Kafka(infra.kafka) as kafka:
        publisher = Publisher(infra.kafka, prefix)
        await publisher.start()
        tracker = pipeline.Tracker(
            infra.kafka,
            prefix,
            publisher,
            lifecycle=not args.no_lifecycle,
            resolved=args.resolved,
        )
        await tracker.start()
        try:
            out["start"] = await snapshot(infra, kafka, prefix, db_prefix, procs)
            next_contact = 0
            log(f"pipeline saturation: {args.contacts} contacts at once")
            pids = {p.name: p.pid for p in procs}
            sat = await pipeline.saturation(
                tracker,
                factory,
                next_contact,
                args.contacts,
                args.saturation_timeout,
                pids,
                kpi="metrics" in pids,
            )
            next_contact += args.contacts
            out["saturation"] = asdict(sat)
            log(f"saturation: {sat}")
            rate = max(sat.to_assigned_per_s, 0.5)
            out["latency"] = []
            for fraction, level_rate in latency_levels(args, rate):
                await settle(tracker, kafka, prefix, args.saturation_timeout)
                log(f"latency at {fraction:.0%} of saturation: {level_rate:.1f} contacts/s")
                before = await phase_totals(procs)
                cpu_before = cpu.read(pids)
                began = time.time()
                lat = await pipeline.latency(
                    tracker,
                    factory,
                    next_contact,
                    fraction=fraction,
                    rate=level_rate,
                    seconds=args.latency_seconds,
                    drain=30.0,
                )
                next_contact += lat.contacts
                out["latency"].append(
                    asdict(lat)
                    | {
                        "phases": cycle_phases(before, await phase_totals(procs)),
                        "cpu": cpu.shares(cpu_before, cpu.read(pids)),
                        "stalls": {
                            p.name: stalls.read(p.stalls_to, began, time.time())
                            for p in procs
                            if p.stalls_to is not None
                        },
                        "stalls_over_ms": args.stalls,
                    }
                )
                log(f"latency: {lat}")
            out["growth"] = []
            growth_started = time.monotonic()
            for target in (int(g) for g in args.growth_contacts.split(",") if g):
                while next_contact < target:
                    chunk = min(max(10, int(rate * 5)), target - next_contact)
                    await publisher.contacts(
                        factory, next_contact, chunk, rate=rate * args.growth_rate
                    )
                    next_contact += chunk
                caught_up = await settled(kafka, prefix, args.growth_timeout)
                snap = await snapshot(infra, kafka, prefix, db_prefix, procs)
                snap |= {"target_contacts": target, "contacts": next_contact, "reached": caught_up}
                snap["seconds_since_start"] = round(time.monotonic() - growth_started, 1)
                out["growth"].append(snap)
                log(
                    f"growth at {next_contact} contacts (caught up: {caught_up}): "
                    f"rss {snap['rss_mib']}"
                )
            for target in (
                int(g) for g in args.growth.split(",") if g and not args.growth_contacts
            ):
                while True:
                    # Only the committed offsets between chunks: counting the documents
                    # (slow on FerretDB) once per checkpoint lets the feed keep its rate.
                    handled = sum((await kafka.committed(f"lexcare-{prefix}")).values())
                    timed_out = time.monotonic() - growth_started > args.growth_timeout
                    if handled >= target or timed_out:
                        break
                    chunk = max(10, int(rate * 5))
                    await publisher.contacts(factory, next_contact, chunk, rate=rate * 1.2)
                    next_contact += chunk
                snap = await snapshot(infra, kafka, prefix, db_prefix, procs)
                snap["target"] = target
                snap["contacts"] = next_contact
                snap["reached"] = snap["events_handled"] >= target
                out["growth"].append(snap)
                log(f"growth at {snap['events_handled']} events: rss {snap['rss_mib']}")
                if not snap["reached"]:
                    break
            out["contacts_sent"] = next_contact
            out["lifecycle_events_sent"] = tracker.lifecycle_sent
            if args.growth_restore and out["growth"]:
                # Each service started again on the grown state: the restore a restart costs.
                out["restore_after_growth"] = {}
                for svc in procs:
                    await asyncio.to_thread(svc.stop)
                    out["restore_after_growth"][svc.name] = await restore_ms(svc, log_dir)
                log(f"restore after growth (ms): {out['restore_after_growth']}")
        finally:
            await tracker.stop()
            await publisher.stop()
    return out


async def main(args: argparse.Namespace) -> int:
    """Run the phases, print the table, write the JSON."""
    phases = set(args.phases.split(","))
    logging.basicConfig(level=logging.CRITICAL)  # aiokafka: transient leader/coordinator noise
    args.out.mkdir(parents=True, exist_ok=True)
    run = "bench" + uuid.uuid4().hex[:6]
    factory = ContactFactory(run[-6:], tuple(load_corpus()))
    log_dir = Path(tempfile.mkdtemp(prefix="lexcare-bench-logs-"))
    results: dict[str, Any] = {
        "run": run,
        "started_at": utc_now().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_start": os.getloadavg(),
        },
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    began = time.monotonic()
    if "classifier" in phases:
        timing = classifier.measure()
        results["classifier"] = asdict(timing) if timing else None
        log(f"classifier: {results['classifier']}")
    with provide_infra() as infra:
        results["infra"] = infra.kind
        log(f"infra: {infra.kind} kafka={infra.kafka} mongo={infra.mongo_url} run={run}")
        try:
            if "baseline" in phases:
                log(f"baseline: raw pass-through of {args.baseline_events} contacts")
                results["baseline"] = await run_baseline(
                    infra, run, factory, args.baseline_events, args.baseline_repeats
                )
                log(f"baseline: {results['baseline']}")
            if "pipeline" in phases:
                results["pipeline"] = await run_pipeline(infra, run, factory, args, log_dir)
            if "alone" in phases and "pipeline" in phases:
                results["alone"] = []
                for service in args.services.split(","):
                    log(f"{service} alone")
                    one = await alone.run_alone(
                        infra,
                        service,
                        results["pipeline"]["prefix"],
                        run,
                        log_dir,
                        max_seconds=args.alone_seconds,
                        limit=args.alone_limit,
                        profile_to=(
                            args.out / f"{run}-profile-{service}.txt"
                            if service in args.profile.split(",")
                            else None
                        ),
                    )
                    results["alone"].append(asdict(one))
                    log(f"{service} alone: {one.per_second:.1f} events/s ({one.handled} events)")
            if "gateway" in phases:
                log(f"gateway: {args.gateway_requests} signed webhooks → contact.received")
                results["gateway"] = await gateway.run(
                    args.gateway_requests,
                    args.gateway_concurrency,
                    kafka=infra.kafka,
                    prefix=f"{run}-gw-",
                )
                log(f"gateway: {results['gateway']}")
            if "desk" in phases:
                log(f"desk: pages with {args.desk_cases} cases in the read model")
                results["desk"] = await desk.run(args.desk_cases, due_share=0.02, requests=40)
                log(f"desk: {results['desk']}")
        finally:
            results["load_avg_at_end"] = os.getloadavg()
            results["seconds"] = round(time.monotonic() - began, 1)
            if not args.keep:
                async with Kafka(infra.kafka) as kafka:
                    await kafka.delete_prefix(run)
                await drop_databases(infra.mongo_url, run)
    table = render_table(rows_from(results))
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{utc_now().strftime('%Y%m%dT%H%M%SZ')}.json"
    results["rows"] = rows_from(results)
    path.write_text(json.dumps(results, indent=2, default=str, ensure_ascii=False))
    log(f"results written to {path} ({results['seconds']} s); service logs in {log_dir}")
    if not args.keep:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
