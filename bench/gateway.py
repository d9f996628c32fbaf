"""The gateway phase: signed Messenger webhooks → contact.received, requests/s and p99.

Runs the gateway in-process on a local port (uvicorn), posts `requests` distinct signed
webhooks with `concurrency` clients, and times each answer: the gateway answers 200 only
once the broker acknowledged the contact (acks=all), so the latency is webhook →
contact.received stored. Then reads the topic to check every contact arrived once.
`python -m bench --phases gateway` runs it as a phase of the table; `python -m
bench.gateway` alone (against LEXCARE_KAFKA) prints its row.
"""

import argparse
import asyncio
import os
import time
import uuid

import httpx
import orjson
import uvicorn

from bench.pipeline import percentile
from services.gateway.app import GatewaySettings, create_app
from services.gateway.signatures import facebook_signature
from tests.integration.gateway.standins import free_port
from tests.kafka_tools import RawKafka, delete_topics

SECRET = "bench-secret"


def webhook(n: int) -> bytes:
    """One Messenger webhook carrying one message from its own sender."""
    return orjson.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "messaging": [
                        {
                            "sender": {"id": f"psid-{n}"},
                            "timestamp": 1764576000000,
                            "message": {"mid": f"m_{n}", "text": "Tôi cần tư vấn về đất đai"},
                        }
                    ]
                }
            ],
        }
    )


async def run(
    requests: int, concurrency: int, *, kafka: str, prefix: str | None = None
) -> dict[str, float]:
    """Post the webhooks; return requests/s, p50 and p99 in ms, contacts arrived."""
    prefix = prefix or f"b{uuid.uuid4().hex[:8]}."
    settings = GatewaySettings(
        kafka=kafka,
        topic_prefix=prefix,
        facebook_app_secret=SECRET,
        http_port=free_port(),
        gateway_smtp_port=0,
        log_level="WARNING",
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), port=settings.http_port, log_config=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  (uvicorn exposes no event)
        await asyncio.sleep(0.05)
    bodies = [webhook(n) for n in range(requests)]
    latencies: list[float] = []
    queue = iter(bodies)
    url = f"http://127.0.0.1:{settings.http_port}/webhooks/facebook"

    async def client() -> None:
        async with httpx.AsyncClient() as http:
            for body in queue:
                started = time.perf_counter()
                answer = await http.post(
                    url,
                    content=body,
                    headers={"x-hub-signature-256": facebook_signature(body, SECRET)},
                )
                latencies.append(time.perf_counter() - started)
                answer.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    async with RawKafka(settings.kafka, prefix) as kafka:
        events = await kafka.distinct("contact.received", count=requests, timeout=60)
    server.should_exit = True
    await task
    await delete_topics(settings.kafka, prefix=prefix)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "contacts": len(events),
        "seconds": elapsed,
        "requests_per_s": requests / elapsed,
        "p50_ms": (percentile(latencies, 0.5) or 0.0) * 1000,
        "p99_ms": (percentile(latencies, 0.99) or 0.0) * 1000,
    }


def main() -> None:
    """Print one row: webhook → contact.received."""
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    kafka = os.environ.get("LEXCARE_KAFKA", "127.0.0.1:9092")
    result = asyncio.run(run(args.requests, args.concurrency, kafka=kafka))
    print(
        "| webhook → contact.received (gateway, signed Messenger) "
        f"| {result['requests_per_s']:,.0f} req/s | p50 {result['p50_ms']:.1f} ms "
        f"| p99 {result['p99_ms']:.1f} ms | {result['contacts']}/{result['requests']} arrived |"
    )


if __name__ == "__main__":
    main()
