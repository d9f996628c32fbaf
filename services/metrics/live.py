"""The live loop around the engine: group-commit checkpoints and coalesced KPI publishing.

A batch of handlers applies its events in memory, then awaits `Checkpointer.durable()`
(`Checkpointer.batch`): it returns once a checkpoint that contains their entries is stored,
so Kafka commits the offsets only after the effects are durable (SPEC §8). One checkpoint
serves every batch waiting at that moment: one insert for all their entries instead of a
round trip per event.

Every `publish_interval_s`, the cells that changed are sent to metrics.kpi, only when their
value differs from the one last published: at most one message per key per interval. The
published values reach the `kpis` collection at most every `kpi_store_interval_s` (it is
derived data, rebuilt at start, so it is written in coalesced batches off the consumers'
path). After a restart every cell is published and stored once again.
"""

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from services.metrics.domain import CaseEntry, CustomerMerge
from services.metrics.engine import MetricsEngine
from services.metrics.kpis import CellKey, KpiValue, kpi_value
from services.metrics.store import MetricsStore
from shared.background import Background

log = structlog.get_logger("lexcare.metrics")

Publish = Callable[[CellKey, KpiValue | None, datetime], Awaitable[Awaitable[Any]]]
"""Sends one KPI value; returns the broker's delivery confirmation to await."""


class Checkpointer:
    """Stores the engine's changes for every handler waiting, one checkpoint at a time."""

    def __init__(self, engine: MetricsEngine, store: MetricsStore) -> None:
        self.engine = engine
        self.store = store
        self.waiters: list[asyncio.Future[None]] = []
        self.reloading = asyncio.Lock()
        self.wake = asyncio.Event()
        self._background = Background(self.run, name="kpi-checkpoints")

    async def restore(self) -> int:
        """Rebuild the engine from the stored entries and merges; return the entry count."""
        count = 0
        async for entry in self.store.stream_entries():  # case after case
            self.engine.record(entry)
            count += 1
            if count % 1000 == 0:  # keep memory bounded while restoring
                self.engine.take_new()  # stored already
                self.engine.evict()
        for merge in await self.store.load_merges():
            self.engine.merge(merge)
        self.engine.take_new()
        self.engine.evict()
        self.engine.refresh_crr()
        return count

    async def durable(self) -> None:
        """Wait until everything applied so far is stored."""
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        self.wake.set()
        await future

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Around a batch of handlers: when they are done, wait until all is stored."""
        yield
        await self.durable()

    async def checkpoint(self) -> int:
        """Store the entries and merges recorded since the last checkpoint; return how many."""
        entries, merges = self.engine.take_new()
        try:
            await self.store.add(entries=entries, merges=merges)
        except BaseException:
            self.engine.new_entries[:0] = entries
            self.engine.new_merges[:0] = merges
            raise
        self.engine.evict()  # only sheets whose entries are stored go
        return len(entries) + len(merges)

    async def ensure_sheet(self, item: CaseEntry | CustomerMerge | None) -> None:
        """Bring back from the store the sheet of a set-aside case `item` belongs to.

        The caller ingests `item` right after, with no await in between, so the sheet
        cannot be set aside again first. Reloads are serialised and re-checked: a case
        set aside has all its entries stored, and none is added to it without a reload.
        """
        if self.engine.needs_sheet(item) is None:
            return
        async with self.reloading:
            case_id = self.engine.needs_sheet(item)
            if case_id is not None:
                self.engine.reload(case_id, await self.store.case_entries(case_id))

    async def run(self) -> None:
        """Checkpoint whenever handlers wait, until cancelled."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            waiting, self.waiters = self.waiters, []
            try:
                await self.checkpoint()
            except Exception as e:
                log.warning("checkpoint_failed", error=f"{type(e).__name__}: {e}")
                for future in waiting:
                    if not future.done():
                        future.set_exception(e)
                continue
            for future in waiting:
                if not future.done():
                    future.set_result(None)

    async def start(self) -> None:
        """Start checkpointing in the background."""
        self._background.start()

    async def stop(self) -> None:
        """Store the last changes and stop."""
        await self._background.stop()
        with contextlib.suppress(Exception):
            await self.checkpoint()


_STORED = KpiValue(None, 0.0, 0.0, -1, {})
"""Stands for a value stored before a restart, unknown to this process (no cell counts -1)."""


class KpiPublisher:
    """Publishes cells whose value changed, at most once per key per interval, and stores
    the published values in `kpis` at most once per store interval."""

    def __init__(
        self,
        checkpointer: Checkpointer,
        publish: Publish,
        interval_s: float,
        *,
        store_interval_s: float = 0.0,
    ) -> None:
        self.checkpointer = checkpointer
        self.publish = publish
        self.interval_s = interval_s
        self.store_interval_s = store_interval_s
        self.unstored: dict[CellKey, KpiValue | None] = {}
        self.stored_at = float("-inf")
        self.published: dict[CellKey, KpiValue | None] = {}
        self.retry: set[CellKey] = set()
        self._stopping = asyncio.Event()
        self._background = Background(self.run, name="kpi-publisher")

    async def publish_changes(self) -> int:
        """Store and publish every cell whose value differs from the last one published."""
        engine = self.checkpointer.engine
        keys = self.retry | engine.take_dirty_cells()
        self.retry = set()
        now = datetime.now(UTC)
        pending: dict[CellKey, KpiValue | None] = {}
        for key in keys:
            cell = engine.cells.get(key)
            value = kpi_value(key[0], cell) if cell is not None else None
            known = key in self.published
            if (self.published[key] != value) if known else (value is not None):
                pending[key] = value
        try:
            confirmations = [await self.publish(k, v, now) for k, v in pending.items()]
            await asyncio.gather(*(c for c in confirmations if inspect.isawaitable(c)))
        except BaseException:
            self.retry = keys
            raise
        self.published.update(pending)
        self.unstored.update(pending)
        await self.store_values(force=False)
        return len(pending)

    async def store_values(self, *, force: bool) -> None:
        """Write published values to the `kpis` collection, at most once per store interval."""
        clock = asyncio.get_running_loop().time()
        if not self.unstored or (not force and clock - self.stored_at < self.store_interval_s):
            return
        values, self.unstored = self.unstored, {}
        try:
            await self.checkpointer.store.put_kpis(values)
        except BaseException:
            self.unstored = {**values, **self.unstored}
            raise
        self.stored_at = clock

    async def run(self) -> None:
        """Publish changes every interval, until `stop` asks it to return."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
            if self._stopping.is_set():
                return
            try:
                sent = await self.publish_changes()
            except Exception as e:
                log.warning("kpi_publish_failed", error=f"{type(e).__name__}: {e}")
                continue
            if sent:
                log.info("kpis_published", count=sent)

    async def start(self) -> None:
        """Retract what the restored engine no longer has, then publish in the background."""
        await self.retract_vanished()
        self._background.start()

    async def retract_vanished(self) -> None:
        """Take the values stored before a restart as published, with unknown values.

        Their last change can be lost with the process (a stop after the broker closed, a
        kill between two publishes). Whatever the restored engine holds for a stored key
        is sent again, and a cell it lacks, now or once a later event empties it before
        the first publish, goes out as null and leaves the store.
        """
        for key in await self.checkpointer.store.stored_cells():
            self.published[key] = _STORED
            self.retry.add(key)

    async def stop(self) -> None:
        """Publish what is pending and stop.

        The loop is let finish its round instead of being cancelled: a `kpis` write
        cancelled in flight could land after a successor's (a stale value for ever).
        """
        self._stopping.set()
        await self._background.stop(cancel=False)
        with contextlib.suppress(Exception):
            await self.publish_changes()
        with contextlib.suppress(Exception):
            await self.store_values(force=True)
