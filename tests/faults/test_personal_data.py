"""Personal data never appears in clear in any log line (debug level, JSON) nor on
metrics.kpi, while contacts full of it run through all five services as processes."""

import asyncio
import json
import random
import re
import uuid
from pathlib import Path

import pytest

from tests.conftest import eventually
from tests.faults.tools import SERVICES, ServiceProcess
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.faults

NAMES = [
    "Nguyễn Văn Thạch",
    "Trần Thị Bích Ngọc",
    "Lê Hoàng Phúc",
    "Phạm Minh Khuê",
    "Hoàng Thị Diệu Linh",
    "Võ Quốc Trung",
    "Đặng Thùy Dương",
    "Bùi Đức Hạnh",
]
SPELLINGS = [
    lambda d: f"0{d[0:3]} {d[3:6]} {d[6:9]}",
    lambda d: f"+84{d}",
    lambda d: f"+84 {d[0:2]} {d[2:5]} {d[5:9]}",
    lambda d: f"0{d[0:3]}.{d[3:6]}.{d[6:9]}",
    lambda d: f"(+84) {d[0:3]}-{d[3:6]}-{d[6:9]}",
    lambda d: f"0{d}",
]
AT = "2026-11-23T09:{:02d}:00+07:00"


def person(n: int, rng: random.Random) -> dict:
    digits = "9" + "".join(rng.choice("0123456789") for _ in range(8))
    phone = SPELLINGS[n % len(SPELLINGS)](digits)
    name = NAMES[n % len(NAMES)]
    email = f"khach.hang{n}.{uuid.uuid4().hex[:6]}@Example-Mail.vn"
    return {"name": name, "phone": phone, "email": email, "digits": digits}


def envelope(event_type: str, minute: int, **payload: object) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": AT.format(minute),
        "producer": "pii-test",
        **payload,
    }


def leaks(text: str, people: list[dict]) -> list[str]:
    """The personal values of `people` found in clear in `text`."""
    flat = re.sub(r"[\s.()+-]", "", text)
    lower = text.lower()
    found = []
    for p in people:
        if p["digits"] in flat:
            found.append(p["phone"])
        if p["email"].lower() in lower:
            found.append(p["email"])
        if p["name"].lower() in lower:
            found.append(p["name"])
    return found


def log_lines(path: Path) -> list[str]:
    """The lines a service wrote."""
    return path.read_text(errors="replace").splitlines()


async def test_no_personal_data_in_any_log_line_or_on_metrics_kpi(infra, namespace, tmp_path):
    rng = random.Random(9)
    people = [person(n, rng) for n in range(8)]
    prefix = f"{namespace}."
    services = {
        name: ServiceProcess(
            name,
            kafka=infra.kafka,
            mongo_url=infra.mongo_url,
            namespace=namespace,
            log=tmp_path / f"{name}.log",
            env={
                "LEXCARE_LOG_LEVEL": "DEBUG",
                "LEXCARE_LOG_FORMAT": "json",
                "LEXCARE_PUBLISH_INTERVAL_S": "0.2",
                "LEXCARE_SURVEY_FATIGUE_DAYS": "0",
            },
        )
        for name in SERVICES
    }
    try:
        for service in services.values():
            service.start()
        await asyncio.gather(*(s.wait_ready(timeout=90) for s in services.values()))
        async with RawKafka(infra.kafka, prefix) as kafka:
            for n, p in enumerate(people):
                sender = f"zalo:{p['digits']}"
                contact = envelope(
                    "contact.received",
                    n,
                    channel="zalo",
                    sender_id=sender,
                    kind="complaint" if n % 3 == 0 else "inquiry",
                    customer={
                        "name": p["name"],
                        "phone": p["phone"],
                        "email": p["email"],
                        "address": f"{n} Lý Thường Kiệt, Hoàn Kiếm, Hà Nội",
                    },
                    message=f"Tôi là {p['name']}, số {p['phone']}, email {p['email']}: "
                    "tranh chấp đất đai với hàng xóm",
                )
                await kafka.send("contact.received", contact, key=sender)
            # Bad input carrying personal data: dead-lettered, still never logged in clear.
            p = people[0]
            await kafka.send(
                "contact.received",
                envelope("contact.received", 0, channel="fax", customer={"name": p["name"]}),
                key="bad-1",
            )
            await kafka.send("contact.received", f"gọi {p['phone']} {p['email']}".encode())
            classified = await kafka.distinct("case.classified", count=len(people), timeout=90)
            for n, c in enumerate(classified):
                p = people[n]
                case = c["case_id"]
                for event_type, payload in (
                    (
                        "contract.signed",
                        {
                            "contract_id": f"ct-{n}",
                            "amount_vnd": 3_000_000,
                            "delivery_method": "office",
                        },
                    ),
                    (
                        "care.contact.completed",
                        {
                            "agent_id": "agent-07",
                            "outcome": "reached",
                            "note": f"Đã gọi {p['name']} qua {p['phone']}",
                        },
                    ),
                    (
                        "case.resolved",
                        {"outcome": "settled", "summary": f"{p['name']} ({p['email']}) hài lòng"},
                    ),
                ):
                    event = envelope(event_type, 30 + n, case_id=case, **payload)
                    await kafka.send(event_type, event, key=case)
            requested = await kafka.distinct("survey.requested", count=len(people), timeout=90)
            for n, r in enumerate(requested):
                p = people[n]
                answer = envelope(
                    "survey.answered",
                    50,
                    case_id=r["case_id"],
                    survey_id=r["survey_id"],
                    nps=8,
                    csat=4,
                    ces=2,
                    comment=f"Cảm ơn, tôi là {p['name']}, gọi lại {p['phone']}",
                )
                await kafka.send("survey.answered", answer, key=r["case_id"])
            await kafka.distinct("survey.scored", count=len(people), timeout=90)
            await eventually(
                lambda: kafka.read(
                    "metrics.kpi", until=lambda rs: any(b'"nps"' in r.value for r in rs)
                ),
                timeout=60,
            )
            kpi = await kafka.settle("metrics.kpi", quiet=1.5)
            dead = await kafka.settle("contact.received.dlq", quiet=0.5)
    finally:
        for service in services.values():
            await service.terminate()

    assert len(dead) == 2
    assert kpi, "metrics.kpi carries values"
    kpi_leaks = [leak for r in kpi for leak in leaks(r.value.decode(), people)]
    assert kpi_leaks == [], f"personal data on metrics.kpi: {kpi_leaks[:5]}"
    clear = " ".join(f"{p['name']} {p['phone']} {p['email']}" for p in people)
    assert len(leaks(clear, people)) == 3 * len(people), "the leak detector finds them in clear"
    lines = 0
    for name in SERVICES:
        for line in log_lines(tmp_path / f"{name}.log"):
            lines += 1
            try:  # JSON lines escape nothing personal away: look at the decoded text too
                decoded = json.dumps(json.loads(line), ensure_ascii=False)
            except ValueError:
                decoded = line
            found = leaks(line, people) + leaks(decoded, people)
            assert not found, f"{name} logged {found} in clear: {line[:300]}"
    print(f"\n{lines} log lines, {len(kpi)} metrics.kpi records: no personal data")
    assert lines > 100, "debug logs were captured"
