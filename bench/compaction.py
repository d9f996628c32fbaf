"""Compaction's memory: a partition's snapshot written streaming versus read whole, one run.

`python -m bench.compaction [--keys 120000] [--changed 20000]` writes two partitions of
≈ 600-byte values, then snapshots each both ways, every snapshot in a fresh process (its
peak RSS is the process's own):
1. first snapshot: `--keys` keys in batches of 1,000, no snapshot before;
2. next snapshot: a snapshot of `--keys` keys plus `--changed` keys changed after it (half
   of them new), as compaction meets a grown partition in steady state.
"whole" is the reader kept for the earlier storage layouts (`_snapshot_whole`: the
partition read and decoded into memory, as every snapshot was before), "streamed" is
`ChangeStore.snapshot`. Prints seconds, peak RSS, RSS after, and RSS once the freed heap is
given back (`shared.runtime.memory.give_back`, as the runtime does after a compaction
round), and the ratios; uses
`LEXCARE_KAFKA`/`LEXCARE_MONGO_URL` when set, else starts its own; deletes what it wrote.
"""

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.infra import drop_databases, provide_infra
from shared.runtime.memory import give_back
from shared.runtime.storage import Changes, ChangeStore

PER_BATCH = 1_000


def value(n: int) -> dict[str, Any]:
    """A case-sized value (≈ 600 bytes encoded)."""
    return {
        "kind": "case",
        "case_id": f"case-{n:08d}-{'x' * 24}",
        "case": {"legal_field": "family", "channel": "zalo", "note": "y" * 380},
        "state": "resolved",
        "assignee_id": "law-1",
        "correlation_id": str(uuid.UUID(int=n)),
    }


async def write(store: ChangeStore, seq: int, keys: range, *, gen: int = 0) -> int:
    """Batches of `PER_BATCH` keys from `seq` on; the next batch number."""
    for start in range(keys.start, keys.stop, PER_BATCH):
        batch = {f"case/{n}": value(n) for n in range(start, min(start + PER_BATCH, keys.stop))}
        ids = [str(uuid.uuid4()) for _ in range(len(batch) // 5)]
        await store.persist(
            [Changes(0, seq, batch, {}, ids, [], {"t": seq + 1}, gen=gen)], owner="me"
        )
        seq += 1
    return seq


async def prepare(mongo_url: str, db_name: str, *, keys: int, changed: int) -> dict[str, int]:
    """Two partitions' stores: `first` (batches only) and `next` (a snapshot, then changes)."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    db = client[db_name]
    try:
        first = ChangeStore(db, "first")
        await first.prepare()
        upto_first = await write(first, 0, range(keys))
        grown = ChangeStore(db, "next")
        await grown.prepare()
        seq = await write(grown, 0, range(keys))
        await grown.snapshot(0, gen=1, upto=seq, ledger_size=100_000, owner="me")
        span = range(keys - changed // 2, keys + changed - changed // 2)
        upto_next = await write(grown, seq, span, gen=1)
    finally:
        await client.close()
    return {"first": upto_first, "next": upto_next}


async def snapshot_once(mongo_url: str, db_name: str, store: str, way: str, upto: int) -> None:
    """One snapshot in this process; prints its figures as JSON."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    changes = ChangeStore(client[db_name], store)
    gen = 9 if way == "whole" else 10
    began = time.perf_counter()
    if way == "whole":
        snap = await changes._snapshot_whole(0, gen=gen, upto=upto, ledger_size=100_000, owner="b")
    else:
        snap = await changes.snapshot(0, gen=gen, upto=upto, ledger_size=100_000, owner="b")
    took = time.perf_counter() - began
    await changes.collection.delete_many({"partition": 0, "gen": gen})
    await client.close()
    peak = status_mib("VmHWM")  # not ru_maxrss: Linux carries it over from the parent
    after = status_mib("VmRSS")
    give_back()  # what the runtime does after a compaction round
    trimmed = status_mib("VmRSS")
    print(
        json.dumps({"s": took, "peak": peak, "after": after, "trimmed": trimmed, "keys": snap.keys})
    )


def status_mib(field: str) -> float:
    """A memory figure of this process (`VmRSS` now, `VmHWM` its peak), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(mongo_url: str, db_name: str, store: str, way: str, upto: int) -> dict[str, float]:
    """`snapshot_once` in a fresh interpreter."""
    args = [sys.executable, "-m", "bench.compaction", "--one", mongo_url, db_name, store, way]
    out = subprocess.run([*args, str(upto)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=120_000)
    parser.add_argument("--changed", type=int, default=20_000)
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        url, db_name, store, way, upto = args.one
        asyncio.run(snapshot_once(url, db_name, store, way, int(upto)))
        return
    with provide_infra() as infra:
        run = f"benchcompact{uuid.uuid4().hex[:8]}"
        db_name = f"{run}_state"
        try:
            upto = asyncio.run(
                prepare(infra.mongo_url, db_name, keys=args.keys, changed=args.changed)
            )
            rows = []
            for store, label in (
                ("first", f"first snapshot, {args.keys:,} keys"),
                ("next", f"next snapshot, {args.keys:,} keys + {args.changed:,} changed"),
            ):
                whole = measure(infra.mongo_url, db_name, store, "whole", upto[store])
                streamed = measure(infra.mongo_url, db_name, store, "streamed", upto[store])
                assert whole["keys"] == streamed["keys"], (whole, streamed)
                rows.append((label, whole, streamed))
        finally:
            asyncio.run(drop_databases(infra.mongo_url, run))
    print(f"{'compaction':48} {'whole':>22} {'streamed':>22}  ratio")
    for label, whole, streamed in rows:
        for name, unit in (
            ("s", "s"),
            ("peak", "MiB peak RSS"),
            ("after", "MiB RSS after"),
            ("trimmed", "MiB given back"),
        ):
            w, s = whole[name], streamed[name]
            print(f"{label:48} {w:10,.1f} {unit:>11} {s:10,.1f} {unit:>11}  {s / w:.2f}")


if __name__ == "__main__":
    main()
