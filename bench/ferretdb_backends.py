"""Measure FerretDB's two backends on the operations lexcare's hot paths use.

Usage: python bench/ferretdb_backends.py MONGO_URL [N]
Prints mean latency of find_one_and_update (upsert + $inc), insert_one, and
insert_many throughput; used to choose the backend for local runs.
"""

import asyncio
import sys
import time

from pymongo import AsyncMongoClient, ReturnDocument


async def main(url: str, n: int) -> None:
    """Run each operation n times against a fresh database and print the figures."""
    client: AsyncMongoClient = AsyncMongoClient(url)
    db = client["bench_backends"]
    await client.drop_database("bench_backends")
    coll = db["counters"]
    await coll.create_index("k", unique=True)

    started = time.perf_counter()
    for i in range(n):
        await coll.find_one_and_update(
            {"k": i % 50},
            {"$inc": {"v": 1}, "$setOnInsert": {"k": i % 50}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    fam_ms = (time.perf_counter() - started) / n * 1000

    started = time.perf_counter()
    for i in range(n):
        await db["events"].insert_one({"_id": f"e{i}", "payload": "x" * 200})
    insert_one_ms = (time.perf_counter() - started) / n * 1000

    docs = [{"_id": f"m{i}", "payload": "x" * 200, "n": i} for i in range(n * 10)]
    started = time.perf_counter()
    for chunk in range(0, len(docs), 500):
        await db["many"].insert_many(docs[chunk : chunk + 500], ordered=False)
    many_per_s = len(docs) / (time.perf_counter() - started)

    started = time.perf_counter()
    for i in range(n):
        await db["many"].find_one({"_id": f"m{i * 7}"})
    find_ms = (time.perf_counter() - started) / n * 1000

    print(
        f"find_one_and_update: {fam_ms:.2f} ms  insert_one: {insert_one_ms:.2f} ms  "
        f"insert_many: {many_per_s:,.0f} docs/s  find_one by _id: {find_ms:.2f} ms"
    )
    await client.drop_database("bench_backends")
    await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300))
