"""The desk over the real broker and database: its read model from published events, and each
action publishes the right event stamped with the signed-in person."""

import orjson
import pytest
from pymongo import AsyncMongoClient

from tests.conftest import eventually
from tests.integration.desk.conftest import csrf, sign_in
from tests.unit.desk.factories import assigned, classified, requested, roster_update
from tests.unit.survey.factories import resolved

pytestmark = pytest.mark.integration


async def test_the_queue_and_the_case_come_from_the_events_and_an_outcome_is_published(stack):
    await stack.send(classified("case-int"), assigned("case-int"), requested("case-int"))
    async with stack.client() as client:
        await sign_in(client, "agent-01")

        async def listed() -> bool:
            return "case-int" in (await client.get("/queue")).text

        await eventually(listed)
        case = await client.get("/cases/case-int")
        assert "Phân công cho law-land-01" in case.text and "Độ tin cậy phân loại 90%" in case.text

        form = {
            "csrf": await csrf(client, "/queue"),
            "action": "a-int-1",
            "outcome": "no_answer",
            "note": "Gọi lúc 9h30",
            "agent_id": "mgr-01",
        }
        reply = await client.post("/cases/case-int/care/req-1", data=form)
        assert reply.status_code == 303 and reply.headers["location"] == "/queue?ok=care"

    [completed] = await stack.kafka.events("care.contact.completed", count=1)
    assert (completed["agent_id"], completed["outcome"], completed["request_id"]) == (
        "agent-01",
        "no_answer",
        "req-1",
    )
    assert (completed["case_id"], completed["correlation_id"]) == ("case-int", "corr-case-int")

    async with stack.client() as client:
        await sign_in(client, "agent-01")

        async def on_the_timeline() -> bool:
            page = (await client.get("/cases/case-int")).text
            return "Kết quả liên hệ: Không nghe máy" in page

        await eventually(on_the_timeline)

    mongo = AsyncMongoClient(stack.settings.mongo_url)
    try:
        trail = await mongo[stack.settings.mongo_db]["audit"].find({}, {"_id": 0}).to_list(None)
    finally:
        await mongo.close()
    assert [(r["person_id"], r["action"]) for r in trail if r["action"] == "care_recorded"] == [
        ("agent-01", "care_recorded")
    ]
    assert all("Gọi" not in orjson.dumps(r, default=str).decode() for r in trail)


async def test_contract_resolution_and_roster_changes_carry_the_signed_in_person(stack):
    await stack.send(classified("case-act"), assigned("case-act"))
    async with stack.client() as client:
        await sign_in(client, "law-land-01")
        await eventually(lambda: _has_case(client, "case-act"))
        token = await csrf(client, "/cases/case-act")
        contract = {
            "csrf": token,
            "action": "a-contract",
            "contract_id": "HD-2026-0142",
            "amount_vnd": "5.000.000",
            "delivery_method": "office",
        }
        assert (await client.post("/cases/case-act/contract", data=contract)).status_code == 303
        field = {"csrf": token, "action": "a-field", "legal_field": "labor", "reason": "nợ lương"}
        assert (await client.post("/cases/case-act/reclassify", data=field)).status_code == 303
        resolve = {"csrf": token, "action": "a-resolve", "outcome": "advised", "summary": "Xong"}
        assert (await client.post("/cases/case-act/resolve", data=resolve)).status_code == 303
        assert (await client.get("/roster")).status_code == 403

        async def corrected_on_the_timeline() -> bool:
            page = (await client.get("/cases/case-act")).text
            return "Sửa lĩnh vực: Đất đai → Lao động" in page and "Ký hợp đồng HD-2026-0142" in page

        await eventually(corrected_on_the_timeline)

    [signed] = await stack.kafka.events("contract.signed", count=1)
    assert (signed["amount_vnd"], signed["recorded_by"], signed["case_id"]) == (
        5_000_000,
        "law-land-01",
        "case-act",
    )
    [corrected] = await stack.kafka.events("case.reclassified", count=1)
    assert (corrected["legal_field"], corrected["agent_id"], corrected["case_id"]) == (
        "labor",
        "law-land-01",
        "case-act",
    )
    [resolved] = await stack.kafka.events("case.resolved", count=1)
    assert (resolved["lawyer_id"], resolved["recorded_by"], resolved["outcome"]) == (
        "law-land-01",
        "law-land-01",
        "advised",
    )

    await stack.send(roster_update("law-new-01"))
    async with stack.client() as client:
        await sign_in(client, "mgr-01")

        async def on_the_roster() -> bool:
            return "law-new-01" in (await client.get("/roster")).text

        await eventually(on_the_roster)
        form = {"csrf": await csrf(client, "/roster"), "action": "a-off"}
        assert (await client.post("/roster/law-new-01/deactivate", data=form)).status_code == 303
        trail = await client.get("/audit")  # read back from the desk's database
        assert trail.status_code == 200
        assert "roster_deactivated" in trail.text and "contract_recorded" in trail.text

    updates = await stack.kafka.events("roster.updated", count=2)
    mine = [u for u in updates if u["producer"] == "desk"]
    assert [(u["person"]["id"], u["person"]["active"], u["recorded_by"]) for u in mine] == [
        ("law-new-01", False, "mgr-01")
    ]


async def _has_case(client, case_id: str) -> bool:
    return (await client.get(f"/cases/{case_id}")).status_code == 200


@pytest.mark.parametrize(
    "stack", [{"runtime_max_keys": 1, "runtime_keep_recent_s": 0}], indirect=True
)
async def test_a_closed_case_that_left_memory_still_opens_and_open_ones_stay(stack):
    cases = [f"case-old-{n}" for n in range(6)]
    for case_id in cases:
        await stack.send(classified(case_id), assigned(case_id), resolved(case_id))
    await stack.send(classified("case-open"), requested("case-open", request_id="req-open"))
    async with stack.client() as client:
        await sign_in(client, "agent-01")

        async def all_shown() -> bool:
            pages = [(await client.get(f"/cases/{case_id}")).text for case_id in cases]
            return all("Kết thúc vụ việc: Đã tư vấn xong" in page for page in pages)

        # Six closed cases, one value kept per partition: every one opens with its whole
        # story, though most left memory (search reads memory only); the open one stays.
        await eventually(all_shown)
        found = (await client.get("/search", params={"q": "case-old"})).text
        assert sum(case_id in found for case_id in cases) < len(cases)
        assert "case-open" in (await client.get("/queue")).text
