"""Assembles a service: FastStream app with /healthz, /readyz and /metrics, run by uvicorn."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import uvicorn
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared import observability
from shared.collector import tune_collector
from shared.delivery import DeliveryGuard
from shared.kafka import await_group_coordinators, ensure_topics, make_broker
from shared.logging import configure_logging
from shared.mongo import make_mongo, service_db
from shared.priority import take_priority
from shared.settings import LexcareSettings

Route = tuple[str, Any]


def json_response(payload: Any, status: int = 200) -> AsgiResponse:
    """A JSON HTTP response."""
    return AsgiResponse(orjson.dumps(payload), status, headers={"content-type": "application/json"})


async def consumer_lag(broker: KafkaBroker) -> dict[tuple[str, int], int]:
    """Messages each assigned partition is behind its end, per subscriber consumer."""
    lag: dict[tuple[str, int], int] = {}
    for subscriber in broker.subscribers:
        # A subscriber with max_workers > 1 runs a subgroup of consumers, one per partition.
        consumers = getattr(subscriber, "consumer_subgroup", None) or [
            getattr(subscriber, "consumer", None)
        ]
        for consumer in consumers:
            if consumer is None:
                continue
            for tp in consumer.assignment():
                end = consumer.highwater(tp)
                if end is None:
                    continue
                position = await consumer.position(tp)
                lag[(tp.topic, tp.partition)] = max(end - position, 0)
    return lag


def standard_routes(
    broker: KafkaBroker,
    mongo: AsyncMongoClient,
    *,
    gauges: Callable[[], Awaitable[None]] | None = None,
) -> list[Route]:
    """Liveness, readiness (broker and database reachable) and Prometheus metrics."""

    @get(description="Liveness: the process serves HTTP.")
    async def healthz(scope: Any) -> AsgiResponse:
        return json_response({"status": "alive"})

    @get(description="Readiness: the broker and the database answer.")
    async def readyz(scope: Any) -> AsgiResponse:
        broker_ok = await broker.ping(timeout=2.0)
        try:
            await asyncio.wait_for(mongo.admin.command("ping"), timeout=2.0)
            db_ok = True
        except Exception:
            db_ok = False
        ready = broker_ok and db_ok
        return json_response(
            {"status": "ready" if ready else "not_ready", "broker": broker_ok, "database": db_ok},
            200 if ready else 503,
        )

    @get(description="Prometheus metrics.")
    async def metrics(scope: Any) -> AsgiResponse:
        lag = await consumer_lag(broker)
        # Only the partitions assigned now: a partition lost in a rebalance (scaled out
        # to another instance) must not keep reporting its last lag from here.
        observability.CONSUMER_LAG.clear()
        for (topic, partition), behind in lag.items():
            observability.CONSUMER_LAG.labels(topic, str(partition)).set(behind)
        if gauges is not None:
            await gauges()
        return AsgiResponse(generate_latest(), 200, headers={"content-type": CONTENT_TYPE_LATEST})

    return [("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics)]


@dataclass(frozen=True)
class Plumbing:
    """The clients a service is built from: logger, broker, MongoDB client and database."""

    settings: LexcareSettings
    logger: Any
    broker: KafkaBroker
    mongo: AsyncMongoClient
    db: AsyncDatabase


def plumbing(settings: LexcareSettings) -> Plumbing:
    """Build the service's logger, broker (with its delivery guard) and database."""
    logger = configure_logging(
        settings.service_name, level=settings.log_level, fmt=settings.log_format
    )
    broker = make_broker(settings, logger, DeliveryGuard(settings))
    mongo = make_mongo(settings)
    return Plumbing(settings, logger, broker, mongo, service_db(mongo, settings))


def _consumer_groups(broker: KafkaBroker) -> list[str]:
    return [group for s in broker.subscribers if (group := getattr(s, "group_id", None))]


class _WithWeb(AsgiFastStream):
    """A service app that hands every request its own routes do not serve to `web`."""

    web: Any = None

    async def not_found(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve the request with the service's web app (its own routing, 404s, methods)."""
        await self.web(scope, receive, send)


def build_app(
    parts: Plumbing,
    *,
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
    routes: Sequence[Route] = (),
    gauges: Callable[[], Awaitable[None]] | None = None,
    web: Any = None,
) -> AsgiFastStream:
    """The service's ASGI app: topics ensured and hooks run before the broker starts.

    `web` (an ASGI app, e.g. Starlette with its routers) serves every path that is not one
    of the exact `routes` (/healthz, /readyz, /metrics): path parameters, methods, CORS.
    """
    broker, settings, mongo = parts.broker, parts.settings, parts.mongo

    async def prepare() -> None:
        await ensure_topics(settings)
        await await_group_coordinators(settings, _consumer_groups(broker))
        for hook in on_startup:
            await hook()

    async def close() -> None:
        for hook in on_shutdown:
            await hook()
        await mongo.close()

    app = (_WithWeb if web is not None else AsgiFastStream)(
        broker,
        asgi_routes=[*standard_routes(broker, mongo, gauges=gauges), *routes],
        logger=parts.logger,
        on_startup=[prepare],
        after_shutdown=[close],
    )
    if web is not None:
        app.web = web  # type: ignore[attr-defined]
    return app


def serve(app: AsgiFastStream, settings: LexcareSettings) -> None:
    """Run the app until SIGINT/SIGTERM; in-flight messages finish before it stops."""
    take_priority(settings.nice)
    tune_collector(young=settings.gc_young_threshold, full_every_s=settings.gc_full_every_s)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.graceful_timeout_s) + 5,
    )
    uvicorn.Server(config).run()
