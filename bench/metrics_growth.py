"""Metrics' memory as events grow, fed straight into its engine (no Kafka, no database).

`python -m bench.metrics_growth --events 10000,100000,1000000` builds synthetic case life
cycles (contact, assignment, quote, contract, care reached, resolution, survey requested
and scored: 8 events per case, spread over a quarter's days, channels, fields, lawyers)
and feeds their KPI entries to `MetricsEngine`, the in-memory state the metrics service
keeps, setting sheets aside beyond `--max-cases` as the service does after each
checkpoint. At each checkpoint it prints the process RSS, the engine's KPI cells, case
sheets in memory and set aside, and writes the figures to a JSON file in bench/results/.
"""

import argparse
import gc
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from services.metrics.domain import CaseEntry, EntryKind
from services.metrics.engine import MetricsEngine
from shared.clock import FakeClock

CHANNELS = ["zalo", "facebook", "website", "phone", "email", "walk_in"]
FIELDS = ["land", "family", "labor", "enterprise", "criminal", "civil_commercial", "traffic"]
LAWYERS = [f"law-{n:02d}" for n in range(14)]
EVENTS_PER_CASE = 8
START = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
SPAN_MINUTES = 90 * 24 * 60
"""Cases open within one quarter: the KPI cells (per day, week, month) reach their full
number early, so what grows after that grows with events, not with the calendar."""
END = START + timedelta(days=100)
"""The engine's "now": CRR is published for every period up to the end of the quarter's
last cases, whatever day the benchmark runs."""


def rss_mib() -> float:
    """Resident memory of this process, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def case_entries(n: int) -> list[CaseEntry]:
    """The KPI entries of the n-th synthetic case's whole life cycle."""
    case_id, at = f"case-{n}", START + timedelta(minutes=7 * n % SPAN_MINUTES)
    base = {"case_id": case_id}
    channel, field, lawyer = CHANNELS[n % 6], FIELDS[n % 7], LAWYERS[n % 14]
    survey = {  # what a survey's request and score both carry
        "case_id": case_id,
        "channel": channel,
        "ref": f"srv-{n}",
        "legal_field": field,
        "lawyer_id": lawyer,
    }
    return [
        CaseEntry(
            id=f"{n}-c",
            kind=EntryKind.CONTACT,
            at=at,
            channel=channel,
            legal_field=field,
            customer_id=f"cus-{n // 3}",
            complaint=n % 10 == 0,
            new_case=True,
            **base,
        ),
        CaseEntry(
            id=f"{n}-a",
            kind=EntryKind.ASSIGNED,
            at=at + timedelta(minutes=5),
            lawyer_id=lawyer,
            legal_field=field,
            **base,
        ),
        CaseEntry(id=f"{n}-q", kind=EntryKind.QUOTED, at=at, legal_field=field, **base),
        CaseEntry(
            id=f"{n}-k",
            kind=EntryKind.CONTRACT,
            at=at + timedelta(hours=3),
            ref=f"ct-{n}",
            amount=3_000_000 + n % 7 * 500_000,
            **base,
        ),
        CaseEntry(id=f"{n}-r", kind=EntryKind.REACHED, at=at + timedelta(hours=1), **base),
        CaseEntry(
            id=f"{n}-d",
            kind=EntryKind.RESOLVED,
            at=at + timedelta(days=2 + n % 5),
            lawyer_id=lawyer,
            **base,
        ),
        CaseEntry(
            id=f"{n}-s",
            kind=EntryKind.SURVEY_REQUESTED,
            at=at + timedelta(days=2 + n % 5),
            **survey,
        ),
        CaseEntry(
            id=f"{n}-o",
            kind=EntryKind.SURVEY_SCORED,
            at=at + timedelta(days=3 + n % 5),
            nps=n % 11,
            csat=1 + n % 5,
            ces=1 + n % 7,
            **survey,
        ),
    ]


def entries() -> Iterator[CaseEntry]:
    """Synthetic case entries, case after case, without end."""
    n = 0
    while True:
        yield from case_entries(n)
        n += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="10000,100000,1000000")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--max-cases", type=int, default=20_000, help="LEXCARE_MAX_CASES_IN_MEMORY")
    args = parser.parse_args()
    checkpoints = sorted(int(x) for x in args.events.split(","))
    engine = MetricsEngine(
        ZoneInfo("Asia/Ho_Chi_Minh"), clock=FakeClock(END), max_cases=args.max_cases
    )
    rows = [{"events": 0, "rss_mib": round(rss_mib(), 1), "cells": 0, "case_sheets": 0}]
    print(
        f"{'events':>10} {'RSS MiB':>9} {'KPI cells':>10} {'sheets':>8} {'set aside':>10} "
        f"{'events/s':>9}"
    )
    started, fed, feed = time.perf_counter(), 0, entries()
    for checkpoint in checkpoints:
        while fed < checkpoint:
            engine.ingest(next(feed))
            fed += 1
            if fed % 1000 == 0:  # what the service does at a checkpoint
                engine.take_new()
                engine.take_dirty_cells()
                engine.evict()
        engine.refresh_crr()
        gc.collect()
        row = {
            "events": fed,
            "rss_mib": round(rss_mib(), 1),
            "cells": len(engine.cells),
            "case_sheets": len(engine.sheets),
            "set_aside": len(engine.evicted),
            "events_per_s": round(fed / (time.perf_counter() - started)),
        }
        rows.append(row)
        print(
            f"{row['events']:>10,} {row['rss_mib']:>9} {row['cells']:>10,} "
            f"{row['case_sheets']:>8,} {row['set_aside']:>10,} {row['events_per_s']:>9,}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"metrics-growth-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"events_per_case": EVENTS_PER_CASE, "rows": rows}, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
