"""Timers in memory with and without the horizon, one run.

`python -m bench.timer_horizon [--timers 100000]` stores one partition holding `--timers`
timers spread over a year (as followup's birthday and care timers are) and a snapshot of
them, then restores it in two fresh processes: with the horizon kept out of reach (every
timer in memory, as before) and with the default `LEXCARE_RUNTIME_TIMER_HORIZON_S` (2
days). Prints the timers in memory, RSS after the restore and the restore's seconds, and
the ratios; uses `LEXCARE_KAFKA`/`LEXCARE_MONGO_URL` when set, else starts its own.
"""

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from bench.compaction import status_mib
from bench.infra import drop_databases, provide_infra
from shared.runtime import Runtime
from shared.runtime.storage import Changes, ChangeStore
from shared.settings import LexcareSettings

PER_BATCH = 1_000
YEAR = timedelta(days=365)


async def prepare(mongo_url: str, db_name: str, *, timers: int) -> None:
    """One partition: `timers` timers in batches, then a snapshot of them."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    store = ChangeStore(client[db_name], "state")
    await store.prepare()
    now = datetime.now(UTC)
    seq = 0
    for start in range(0, timers, PER_BATCH):
        batch = {
            f"birthday:customer-{n}:{uuid.UUID(int=n)}": {
                "due_at": (now + YEAR * (n % 997) / 997).isoformat(),
                "kind": "birthday",
                "payload": {"customer_id": f"customer-{n}", "birthday": "03-08"},
            }
            for n in range(start, min(start + PER_BATCH, timers))
        }
        await store.persist([Changes(0, seq, {}, batch, [], [], {"t": seq + 1})], owner="b")
        seq += 1
    await store.snapshot(0, gen=1, upto=seq, ledger_size=0, owner="b")
    await client.close()


async def restore_once(mongo_url: str, db_name: str, horizon_s: float) -> None:
    """Restore the partition in this process; prints its figures as JSON."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    settings = LexcareSettings(mongo_url=mongo_url, runtime_timer_horizon_s=horizon_s)
    runtime: Runtime[Any] = Runtime(settings, client[db_name], value_type=dict[str, Any])
    began = time.perf_counter()
    state, _ = await runtime._restore(0)
    took = time.perf_counter() - began
    print(json.dumps({"s": took, "rss": status_mib("VmRSS"), "timers": len(state.timers)}))
    await client.close()


def measure(mongo_url: str, db_name: str, horizon_s: float) -> dict[str, float]:
    """`restore_once` in a fresh interpreter."""
    args = [sys.executable, "-m", "bench.timer_horizon", "--one", mongo_url, db_name]
    out = subprocess.run([*args, str(horizon_s)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        url, db_name, horizon = args.one
        asyncio.run(restore_once(url, db_name, float(horizon)))
        return
    default = LexcareSettings().runtime_timer_horizon_s
    with provide_infra() as infra:
        run = f"benchhorizon{uuid.uuid4().hex[:8]}"
        db_name = f"{run}_state"
        try:
            asyncio.run(prepare(infra.mongo_url, db_name, timers=args.timers))
            every = measure(infra.mongo_url, db_name, 2 * YEAR.total_seconds())
            within = measure(infra.mongo_url, db_name, default)
        finally:
            asyncio.run(drop_databases(infra.mongo_url, run))
    print(f"{args.timers:,} timers over a year, one partition restored")
    print(f"{'':26} {'all in memory':>16} {'2-day horizon':>16}  ratio")
    for name, label in (("timers", "timers in memory"), ("rss", "RSS after, MiB"), ("s", "s")):
        a, b = every[name], within[name]
        print(f"{label:26} {a:16,.1f} {b:16,.1f}  {b / a:.2f}")


if __name__ == "__main__":
    main()
