"""The load generator: realistic contacts on every channel and their later life-cycle events.

Contacts carry Vietnamese messages from the intake corpus and unique phones, emails and
sender ids (every contact is a new customer with a new case). Life-cycle events that need
ids only the system knows (case id, survey id) are built from the events the system
published: `lifecycle_for_case(case.classified)` and `answer_for_survey(survey.requested)`.
Everything here is pure (dicts in, dicts out) except `Publisher`, a raw aiokafka producer.
"""

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "intake_corpus.jsonl"
VIETNAM = timezone(timedelta(hours=7))
CHANNELS = ("facebook", "zalo", "website", "phone", "email", "walk_in")
MOBILE_PREFIXES = ("090", "091", "093", "094", "096", "097", "098")
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng")
MIDDLE = ("Văn", "Thị", "Hữu", "Minh", "Thanh", "Ngọc", "Đức", "Thu")
GIVEN = ("An", "Bình", "Chi", "Dũng", "Hà", "Hùng", "Lan", "Mai", "Nam", "Phương", "Tâm")
STREETS = ("Lý Thường Kiệt", "Trần Hưng Đạo", "Nguyễn Huệ", "Lê Lợi", "Hai Bà Trưng")
DISTRICTS = ("Hoàn Kiếm, Hà Nội", "Quận 1, TP. Hồ Chí Minh", "Hải Châu, Đà Nẵng")
DELIVERY = ("phone", "letter", "office", "onsite")
OUTCOMES = ("advised", "settled", "won", "withdrawn")
CARE_OUTCOMES = ("reached", "reached", "reached", "no_answer", "declined")


def load_corpus(path: Path = CORPUS) -> list[str]:
    """The corpus messages (Vietnamese, with and without diacritics)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def _now() -> str:
    return datetime.now(VIETNAM).isoformat()


def _fraction(seed: str) -> float:
    """A stable pseudo-random number in [0, 1) for `seed` (choices repeat per case)."""
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


@dataclass(frozen=True)
class ContactFactory:
    """Builds the i-th contact of a run: unique identifiers, a corpus message, a channel."""

    run: str
    corpus: tuple[str, ...]

    def phone(self, i: int) -> str:
        """A unique Vietnamese mobile number for contact i (spelled the way people type)."""
        digits = f"{MOBILE_PREFIXES[i % len(MOBILE_PREFIXES)]}{i // len(MOBILE_PREFIXES):07d}"
        return f"{digits[:4]} {digits[4:7]} {digits[7:]}" if i % 2 else digits

    def contact(self, i: int) -> dict[str, Any]:
        """The i-th contact.received event as a dict (JSON-ready)."""
        channel = CHANNELS[i % len(CHANNELS)]
        name = f"{FAMILY[i % 10]} {MIDDLE[(i // 10) % 8]} {GIVEN[(i // 80) % 11]}"
        customer: dict[str, Any] = {"name": name}
        sender_id = None
        if channel in ("facebook", "zalo"):
            sender_id = f"{channel}:{self.run}{i:09d}"
            if i % 3 == 0:
                customer["phone"] = self.phone(i)
        elif channel == "email":
            customer["email"] = f"kh.{self.run}.{i}@example.vn"
        elif channel == "website":
            customer["email"] = f"web.{self.run}.{i}@example.vn"
            customer["phone"] = self.phone(i)
        else:  # phone, walk_in
            customer["phone"] = self.phone(i)
        if channel == "walk_in":
            customer["address"] = f"{1 + i % 200} {STREETS[i % 5]}, {DISTRICTS[i % 3]}"
        if i % 7 == 0:
            customer["birth_date"] = f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}"
        return {
            "event_id": str(uuid.uuid4()),
            "event_type": "contact.received",
            "occurred_at": _now(),
            "producer": f"{channel}-adapter",
            "channel": channel,
            "sender_id": sender_id,
            "kind": "complaint" if i % 10 == 9 else "inquiry",
            "customer": customer,
            "message": self.corpus[i % len(self.corpus)],
        }


def contact_key(contact: dict[str, Any]) -> bytes:
    """Kafka key of a contact as adapters send it: the sender id, else the event id."""
    return (contact.get("sender_id") or contact["event_id"]).encode()


RESOLVED_SHARE = 0.7
"""The share of new cases the life cycle resolves (the others stay open)."""


def lifecycle_for_case(
    classified: dict[str, Any], *, resolved: float = RESOLVED_SHARE
) -> list[tuple[str, dict[str, Any]]]:
    """Staff and adapter events that follow a new case: (topic, event) pairs.

    About half the cases sign a contract, `resolved` (70 %) are resolved, 60 % get a completed care
    contact; the choice is stable per case id, so a redelivered case.classified yields the
    same events (with new event ids: the system's dedupe is by event id, so they count
    as new events, which is what a repeated staff action would be).
    """
    if not classified.get("new_case"):
        return []
    case_id = classified["case_id"]
    events: list[tuple[str, dict[str, Any]]] = []
    at = _now()

    def add(event_type: str, producer: str, **fields: Any) -> None:
        envelope = {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "occurred_at": at,
            "producer": producer,
            "case_id": case_id,
            "correlation_id": classified["correlation_id"],
        }
        events.append((event_type, {**envelope, **fields}))

    if _fraction(case_id + "/contract") < 0.5:
        add(
            "contract.signed",
            "staff-tool",
            contract_id=f"HD-{case_id}",
            amount_vnd=1_000_000 * (1 + int(_fraction(case_id + "/amt") * 20)),
            delivery_method=DELIVERY[int(_fraction(case_id + "/dm") * 4)],
        )
    if _fraction(case_id + "/care") < 0.6:
        add(
            "care.contact.completed",
            f"{classified.get('channel', 'phone')}-adapter",
            agent_id=f"agent-{int(_fraction(case_id + '/agent') * 12):02d}",
            outcome=CARE_OUTCOMES[int(_fraction(case_id + "/co") * 5)],
        )
    if _fraction(case_id + "/resolve") < resolved:
        add("case.resolved", "staff-tool", outcome=OUTCOMES[int(_fraction(case_id + "/out") * 4)])
    return events


def answer_for_survey(requested: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The customer's answer to a survey.requested (80 % answer), or None."""
    survey_id = requested["survey_id"]
    if _fraction(survey_id + "/answers") >= 0.8:
        return None
    nps = int(_fraction(survey_id + "/nps") * 11)
    return (
        "survey.answered",
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "survey.answered",
            "occurred_at": _now(),
            "producer": f"{requested.get('channel', 'zalo')}-adapter",
            "correlation_id": requested.get("correlation_id", ""),
            "case_id": requested.get("case_id"),
            "survey_id": survey_id,
            "nps": nps,
            "csat": 1 + int(_fraction(survey_id + "/csat") * 5),
            "ces": 1 + int(_fraction(survey_id + "/ces") * 7),
        },
    )


def schedule(rate: float | None, count: int, start: float) -> Iterable[float]:
    """Send times (monotonic seconds) for `count` messages at `rate`/s; all `start` if None."""
    for i in range(count):
        yield start if not rate else start + i / rate


class Publisher:
    """A raw aiokafka producer, as channel adapters and staff tools publish."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.prefix = prefix
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
        )
        self.sent = 0

    async def start(self) -> None:
        """Connect the producer."""
        await self.producer.start()

    async def stop(self) -> None:
        """Flush and close the producer."""
        await self.producer.stop()

    async def send(self, topic: str, event: dict[str, Any], key: bytes | None = None) -> Any:
        """Queue one event (returns the delivery future)."""
        self.sent += 1
        key = key or (event.get("case_id") or event["event_id"]).encode()
        return await self.producer.send(self.prefix + topic, orjson.dumps(event), key=key)

    async def contacts(
        self,
        factory: ContactFactory,
        first: int,
        count: int,
        *,
        rate: float | None = None,
        sent_at: dict[str, float] | None = None,
    ) -> float:
        """Publish contacts first..first+count at `rate`/s (None: as fast as possible).

        Records each contact's send time (monotonic) in `sent_at` by event id; returns the
        time the last one was acknowledged.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        pending = []
        for i, due in zip(range(first, first + count), schedule(rate, count, start), strict=True):
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            contact = factory.contact(i)
            if sent_at is not None:
                sent_at[contact["event_id"]] = time.monotonic()
            pending.append(await self.send("contact.received", contact, contact_key(contact)))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return time.monotonic()


def utc_now() -> datetime:
    """The current time in UTC (for result file names)."""
    return datetime.now(UTC)
