"""Durable timers in MongoDB: scheduled once, claimed with a lease, fired once.

A timer is a document {_id, due_at, kind, payload, state}. `schedule` is idempotent by
timer id. A `TimerLoop` claims due timers with a lease, calls `fire`, then marks them done.
A claim is won by inserting the unique key `<timer id>#<claim number>`: a unique-index
insert has exactly one winner on MongoDB and on FerretDB alike, where a conditional
find-and-update is not atomic under concurrency. A process killed between fire and done
leaves a leased timer whose lease runs out; another instance (or the restarted one) fires it
again with the same timer id, so a consumer that dedupes sees it once. Two instances never
claim one timer at the same moment.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.background import Background
from shared.clock import Clock
from shared.delivery import TRANSIENT_ERRORS

log = structlog.get_logger("lexcare.timers")

PENDING, LEASED, DONE, CANCELLED, FAILED = "pending", "leased", "done", "cancelled", "failed"


@dataclass(frozen=True)
class Timer:
    """A due moment and what to do then."""

    id: str
    due_at: datetime
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    case_id: str | None = None
    claims: int = 0


def _timer(doc: dict[str, Any]) -> Timer:
    return Timer(
        id=doc["_id"],
        due_at=doc["due_at"],
        kind=doc["kind"],
        payload=doc.get("payload", {}),
        case_id=doc.get("case_id"),
        claims=doc.get("claims", 0),
    )


class DurableTimers:
    """One service's timers collection."""

    def __init__(
        self,
        db: AsyncDatabase,
        *,
        collection: str = "timers",
        owner: str | None = None,
        lease: timedelta = timedelta(seconds=30),
    ) -> None:
        self.collection = db[collection]
        self.claims = db[f"{collection}_claims"]
        self.owner = owner or uuid.uuid4().hex
        self.lease = lease

    async def prepare(self) -> None:
        """Create the indexes claiming relies on."""
        await self.collection.create_index([("state", 1), ("due_at", 1)])
        await self.collection.create_index("case_id")
        await self.claims.create_index("at")

    async def schedule(
        self,
        timer_id: str,
        *,
        due_at: datetime,
        kind: str,
        payload: dict[str, Any] | None = None,
        case_id: str | None = None,
    ) -> None:
        """Create the timer unless it exists (scheduling twice changes nothing)."""
        await self.collection.update_one(
            {"_id": timer_id},
            {
                "$setOnInsert": {
                    "due_at": due_at,
                    "kind": kind,
                    "payload": payload or {},
                    "case_id": case_id,
                    "state": PENDING,
                    "claims": 0,
                }
            },
            upsert=True,
        )

    async def cancel(self, *, case_id: str, kinds: list[str] | None = None) -> int:
        """Cancel the case's pending timers (of the given kinds); return how many."""
        query: dict[str, Any] = {"case_id": case_id, "state": PENDING}
        if kinds is not None:
            query["kind"] = {"$in": kinds}
        result = await self.collection.update_many(query, {"$set": {"state": CANCELLED}})
        return result.modified_count

    async def get(self, timer_id: str) -> dict[str, Any] | None:
        """The stored timer document, or None."""
        return await self.collection.find_one({"_id": timer_id})

    async def claim_due(self, now: datetime, *, limit: int = 100) -> list[Timer]:
        """Lease up to `limit` timers due at `now` (or whose lease ran out) to this owner."""
        # Two queries, each led by an equality on `state`, rather than one `$or`: FerretDB v1
        # pushes only equalities down and answered the `$or` by decoding every timer ever
        # fired (1.4 s at 20k); on MongoDB each is one range of the (state, due_at) index.
        due = await self.collection.find(
            {"state": PENDING, "due_at": {"$lte": now}}, sort=[("due_at", 1)], limit=limit
        ).to_list()
        expired = await self.collection.find(
            {"state": LEASED, "lease_until": {"$lt": now}}, sort=[("due_at", 1)], limit=limit
        ).to_list()
        candidates = sorted([*due, *expired], key=lambda doc: doc["due_at"])[:limit]
        claimed: list[Timer] = []
        for doc in candidates:
            claim = doc.get("claims", 0) + 1
            try:
                await self.claims.insert_one(
                    {"_id": f"{doc['_id']}#{claim}", "owner": self.owner, "at": now}
                )
            except DuplicateKeyError:
                continue  # another instance won this claim
            await self.collection.update_one(
                {"_id": doc["_id"]},
                {
                    "$set": {
                        "state": LEASED,
                        "owner": self.owner,
                        "lease_until": now + self.lease,
                        "claims": claim,
                    }
                },
            )
            claimed.append(_timer({**doc, "claims": claim}))
        return claimed

    async def done(self, timer_id: str, *, state: str = DONE) -> None:
        """Mark a leased timer fired (or failed); only its current owner may."""
        await self.collection.update_one(
            {"_id": timer_id, "owner": self.owner, "state": LEASED}, {"$set": {"state": state}}
        )

    async def forget_before(self, cutoff: datetime) -> int:
        """Drop the timers finished (fired, cancelled, failed) that were due before `cutoff`,
        and claims made before it; how many documents went."""
        finished = {"$in": [DONE, CANCELLED, FAILED]}
        timers = await self.collection.delete_many({"state": finished, "due_at": {"$lt": cutoff}})
        claims = await self.claims.delete_many({"at": {"$lt": cutoff}})
        return timers.deleted_count + claims.deleted_count

    async def due_count(self, now: datetime) -> int:
        """How many timers are due and not fired yet."""
        return await self.collection.count_documents({"state": PENDING, "due_at": {"$lte": now}})


class TimerLoop:
    """Claims due timers and fires them until stopped."""

    def __init__(
        self,
        timers: DurableTimers,
        clock: Clock,
        fire: Callable[[Timer], Awaitable[None]],
        *,
        interval_s: float = 0.5,
        max_claims: int = 5,
    ) -> None:
        self.timers = timers
        self.clock = clock
        self.fire = fire
        self.interval_s = interval_s
        self.max_claims = max_claims
        self._background = Background(self._run, name="timer-loop")

    async def run_once(self) -> int:
        """Fire every timer due now; return how many were fired."""
        fired = 0
        for timer in await self.timers.claim_due(self.clock.now()):
            with structlog.contextvars.bound_contextvars(timer_id=timer.id, case_id=timer.case_id):
                try:
                    await self.fire(timer)
                except TRANSIENT_ERRORS as e:
                    log.warning("timer_fire_deferred", error=str(e))
                    continue  # the lease runs out and the timer is claimed again
                except Exception:
                    if timer.claims >= self.max_claims:
                        log.exception("timer_failed_giving_up", kind=timer.kind)
                        await self.timers.done(timer.id, state=FAILED)
                    else:
                        log.exception("timer_fire_failed", kind=timer.kind)
                    continue
                await self.timers.done(timer.id)
                fired += 1
        return fired

    async def _run(self) -> None:
        while True:
            try:
                if await self.run_once() == 0:
                    await asyncio.sleep(self.interval_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timer_loop_error")
                await asyncio.sleep(self.interval_s * 4)

    async def start(self) -> None:
        """Start firing in the background."""
        self._background.start()

    async def stop(self) -> None:
        """Stop firing (a timer being fired finishes or is claimed again later)."""
        await self._background.stop()
