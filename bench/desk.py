"""`python -m bench.desk`: page latency of the care desk with a large read model in memory.

Builds `--cases` case records (a classified contact, an assignment, a care request each;
`--due-share` of them due today) straight into an in-memory runtime state, serves the
desk's pages in-process (httpx's ASGI transport: no socket, no broker), signs an agent in
and times `--requests` GETs of each page: today's queue, a case, a search by phone.
"""

import argparse
import asyncio
import resource
import statistics
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import orjson

from services.desk.app import DeskSettings, web_app
from services.desk.audit import AuditTrail
from services.desk.dashboard import MetricsClient
from services.desk.domain import case_key, recorded
from services.desk.handlers import ReadModel, desk_runtime
from services.desk.pages import Dashboard, Desk
from services.desk.staff import LoginLimiter
from shared.clock import FakeClock
from shared.runtime.state import PartitionState
from tests.runtime_harness import NO_DATABASE
from tests.unit.desk.factories import PASSWORDS, T0, assigned, classified, requested, staff
from tests.unit.desk.test_pages import MemoryDb


def read_model(cases: int, due_share: float, partitions: int = 3) -> ReadModel:
    """A runtime whose partitions hold `cases` case records."""
    runtime = desk_runtime(DeskSettings(), NO_DATABASE, clock=FakeClock(T0))
    states = [PartitionState(p) for p in range(partitions)]
    every = max(round(1 / due_share), 1) if due_share else 0
    template = [classified("case-0"), assigned("case-0")]
    for n in range(cases):
        case_id = f"case-{n:06d}"
        due = T0 if every and n % every == 0 else T0 + timedelta(days=2)
        record = None
        for event in (*template, requested(case_id, request_id=f"req-{n}", due_at=due)):
            record = recorded(record, event.model_copy(update={"case_id": case_id}))
        states[n % partitions].values[case_key(case_id)] = record
    runtime.partitions = {s.partition: s for s in states}
    return ReadModel(runtime)


async def timed(client: httpx.AsyncClient, path: str, requests: int) -> dict[str, float]:
    """p50, p95 and max of `requests` GETs of `path`, in milliseconds."""
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        reply = await client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert reply.status_code == 200, (path, reply.status_code)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
        "max_ms": round(samples[-1], 1),
    }


async def run(cases: int, due_share: float, requests: int) -> dict[str, object]:
    """Build the read model, sign in, time each page."""
    rss_before = _rss_mib()
    start = time.perf_counter()
    model = read_model(cases, due_share)
    built_s = time.perf_counter() - start
    rss_model = _rss_mib() - rss_before
    desk = Desk(
        model=model,
        accounts=staff,
        publish=lambda event: asyncio.sleep(0),
        audit=AuditTrail(MemoryDb()),
        limiter=LoginLimiter(attempts=5, window=timedelta(minutes=5)),
        clock=FakeClock(T0 + timedelta(minutes=30)),
        zone=ZoneInfo("Asia/Ho_Chi_Minh"),
        roster_file=[],
    )
    settings = DeskSettings()
    app = web_app(settings, desk, Dashboard(desk, MetricsClient("http://127.0.0.1:9", timeout_s=1)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://desk.bench") as client:
        page = await client.get("/login")
        token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = {"csrf": token, "login": "agent-01", "password": PASSWORDS["agent-01"]}
        assert (await client.post("/login", data=form)).status_code == 303
        pages = {
            "queue": "/queue",
            "case": f"/cases/case-{cases // 2:06d}",
            "search_phone": "/search?q=0912345",
        }
        results = {name: await timed(client, path, requests) for name, path in pages.items()}
    return {
        "cases": cases,
        "due_today": sum(1 for c in model.cases() for t in c.open_tasks if t.due_at <= T0),
        "build_s": round(built_s, 1),
        "read_model_rss_mib": round(rss_model),
        "requests_per_page": requests,
        **results,
    }


def _rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Parse the flags, run, print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--due-share", type=float, default=0.02)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    result = asyncio.run(run(args.cases, args.due_share, args.requests))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
