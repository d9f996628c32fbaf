"""Each channel's webhook over the real broker: signed, forged, retried, malformed, too big."""

import orjson
import pytest
from prometheus_client import REGISTRY

from services.gateway.signatures import facebook_signature, zalo_signature
from shared import topics
from tests.integration.gateway.conftest import (
    APP_SECRET,
    CALL_TOKEN,
    ORIGIN,
    SITE_KEY,
    VERIFY_TOKEN,
    ZALO_APP_ID,
    ZALO_SECRET,
)
from tests.kafka_tools import key_on

pytestmark = pytest.mark.integration


def refused(channel: str, reason: str) -> float:
    """lexcare_gateway_refused_total for one channel and reason."""
    value = REGISTRY.get_sample_value(
        "lexcare_gateway_refused_total", {"channel": channel, "reason": reason}
    )
    return value or 0.0


def messenger_body(mid: str, psid: str = "24680", text: str = "Tôi cần tư vấn ly hôn") -> bytes:
    """A Messenger webhook with one message and one read receipt."""
    return orjson.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": "PAGE",
                    "time": 1764576000000,
                    "messaging": [
                        {
                            "sender": {"id": psid},
                            "recipient": {"id": "PAGE"},
                            "timestamp": 1764576000000,
                            "message": {
                                "mid": mid,
                                "text": text,
                                "attachments": [
                                    {
                                        "type": "image",
                                        "payload": {"url": "https://cdn.fb/so-do.jpg"},
                                    }
                                ],
                            },
                        },
                        {"sender": {"id": psid}, "read": {"watermark": 1}},
                    ],
                }
            ],
        }
    )


async def post_facebook(client, body: bytes, secret: str | None = APP_SECRET):
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-hub-signature-256"] = facebook_signature(body, secret)
    return await client.post("/webhooks/facebook", content=body, headers=headers)


async def test_facebook_subscription_check_echoes_the_challenge_only_with_the_token(gateway):
    client, _ = gateway
    params = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    ok = await client.get("/webhooks/facebook", params={**params, "hub.verify_token": VERIFY_TOKEN})
    wrong = await client.get("/webhooks/facebook", params={**params, "hub.verify_token": "nope"})
    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert wrong.status_code == 403


async def test_a_signed_messenger_message_is_one_contact_even_when_facebook_retries(gateway):
    client, kafka = gateway
    body = messenger_body("m_retry_1")
    first = await post_facebook(client, body)
    retry = await post_facebook(client, body)
    assert first.status_code == retry.status_code == 200

    records = await kafka.events(topics.CONTACT_RECEIVED, count=2)
    assert len({r["event_id"] for r in records}) == 1
    event = records[0]
    assert event["channel"] == "facebook" and event["sender_id"] == "facebook:24680"
    assert event["message"] == "Tôi cần tư vấn ly hôn"
    assert event["documents"] == ["https://cdn.fb/so-do.jpg"]
    assert event["occurred_at"].startswith("2025-12-01T08:00:00")


async def test_contacts_are_keyed_by_sender_on_the_murmur2_partition(gateway):
    client, kafka = gateway
    psid = key_on(1, 2, "psid").removeprefix("psid-")
    sender = f"facebook:{psid}"
    assert (await post_facebook(client, messenger_body("m_key", psid=psid))).status_code == 200

    [record] = await kafka.read(topics.CONTACT_RECEIVED, until=lambda r: len(r) >= 1)
    assert record.key == sender.encode()
    assert record.partition == _partition_of(sender, 2)


def _partition_of(key: str, partitions: int) -> int:
    from aiokafka.partitioner import DefaultPartitioner

    every = list(range(partitions))
    return DefaultPartitioner()(key.encode(), every, every)


async def test_forged_or_unsigned_messenger_webhooks_publish_nothing_and_are_counted(gateway):
    client, kafka = gateway
    before = refused("facebook", "signature")
    forged = await post_facebook(client, messenger_body("m_forged"), secret="someone-else")
    unsigned = await post_facebook(client, messenger_body("m_unsigned"), secret=None)
    assert (forged.status_code, unsigned.status_code) == (403, 401)
    assert refused("facebook", "signature") == before + 2
    metrics = await client.get("/metrics")  # the service's own routes beside the webhooks
    assert 'lexcare_gateway_refused_total{channel="facebook",reason="signature"}' in metrics.text
    assert await kafka.settle(topics.CONTACT_RECEIVED, quiet=0.5) == []


async def test_malformed_and_oversized_bodies_are_refused_with_a_reason(gateway):
    client, kafka = gateway
    not_json = await post_facebook(client, b"{not json")
    no_mid = orjson.dumps(
        {
            "object": "page",
            "entry": [
                {"messaging": [{"sender": {"id": "1"}, "timestamp": 1, "message": {"text": "hi"}}]}
            ],
        }
    )
    missing = await post_facebook(client, no_mid)
    too_big = await post_facebook(client, messenger_body("m_big", text="x" * 30_000))
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["detail"]
    assert missing.status_code == 400 and "message.mid" in missing.json()["detail"]
    assert too_big.status_code == 413
    assert await kafka.settle(topics.CONTACT_RECEIVED, quiet=0.5) == []


def zalo_body(msg_id: str, event_name: str = "user_send_text") -> bytes:
    return orjson.dumps(
        {
            "app_id": ZALO_APP_ID,
            "event_name": event_name,
            "sender": {"id": "8840012"},
            "recipient": {"id": "OA-1"},
            "message": {"msg_id": msg_id, "text": "Hàng xóm lấn đất nhà tôi"},
            "timestamp": "1764576000000",
        }
    )


async def post_zalo(client, body: bytes, secret: str = ZALO_SECRET):
    signature = zalo_signature(
        app_id=ZALO_APP_ID, body=body, timestamp="1764576000000", oa_secret=secret
    )
    return await client.post(
        "/webhooks/zalo", content=body, headers={"x-zevent-signature": signature}
    )


async def test_zalo_user_messages_become_one_contact_each_forgeries_none(gateway):
    client, kafka = gateway
    assert (await post_zalo(client, zalo_body("z1"))).status_code == 200
    assert (await post_zalo(client, zalo_body("z1"))).status_code == 200  # Zalo's retry
    assert (await post_zalo(client, zalo_body("z2", "user_seen_message"))).status_code == 200
    assert (await post_zalo(client, zalo_body("z3"), secret="forged")).status_code == 403
    unsigned = await client.post("/webhooks/zalo", content=zalo_body("z4"))
    assert unsigned.status_code == 401

    records = await kafka.events(topics.CONTACT_RECEIVED, count=2)
    await kafka.settle(topics.CONTACT_RECEIVED, quiet=0.5)
    events = [orjson.loads(r.value) for r in kafka.seen[topics.CONTACT_RECEIVED]]
    assert len(events) == 2 and len({e["event_id"] for e in events}) == 1
    assert records[0]["channel"] == "zalo" and records[0]["sender_id"] == "zalo:8840012"


def form(**fields) -> dict:
    return {
        "site_key": SITE_KEY,
        "name": "Trần Thị Bình",
        "email": "Binh.Tran@example.vn",
        "message": "Tôi muốn hỏi về thủ tục ly hôn",
        "legal_field": "family",
        **fields,
    }


async def test_website_form_json_or_urlencoded_from_an_allowed_origin(gateway):
    client, kafka = gateway
    preflight = await client.options("/forms/contact", headers={"origin": ORIGIN})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    as_json = await client.post(
        "/forms/contact", json=form(submission_id="s-1"), headers={"origin": ORIGIN}
    )
    as_form = await client.post("/forms/contact", data=form(submission_id="s-2"))
    assert as_json.status_code == as_form.status_code == 200
    assert as_json.headers["access-control-allow-origin"] == ORIGIN

    events = await kafka.events(topics.CONTACT_RECEIVED, count=2)
    assert {e["legal_field"] for e in events} == {"family"}
    assert {e["customer"]["email"] for e in events} == {"binh.tran@example.vn"}
    assert {e["channel"] for e in events} == {"website"}


async def test_website_refuses_other_origins_unknown_keys_bots_and_floods(gateway):
    client, kafka = gateway
    bots_before = refused("website", "honeypot")
    other = await client.post(
        "/forms/contact", json=form(), headers={"origin": "https://evil.example"}
    )
    no_key = await client.post("/forms/contact", json=form(site_key="guess"))
    bot = await client.post("/forms/contact", json=form(url="http://spam.example"))
    bad_field = await client.post("/forms/contact", json=form(legal_field="astrology"))
    assert (other.status_code, no_key.status_code, bot.status_code) == (403, 403, 200)
    assert bad_field.status_code == 400 and "legal_field" in bad_field.json()["detail"]
    assert refused("website", "honeypot") == bots_before + 1
    # The limit is 3 a minute per address; the four posts above used it up.
    flood = await client.post("/forms/contact", json=form())
    assert flood.status_code == 429
    assert await kafka.settle(topics.CONTACT_RECEIVED, quiet=0.5) == []


async def test_calls_and_walk_ins_need_the_switchboard_token(gateway):
    client, kafka = gateway
    call = {
        "call_id": "call-77",
        "caller": "0912 345 678",
        "agent_id": "agent-07",
        "note": "Khách hỏi về hợp đồng lao động",
        "ended_at": "2026-12-01T09:30:00+07:00",
    }
    walk_in = {"call_id": "visit-3", "channel": "walk_in", "agent_id": "desk-1", "name": "An"}
    auth = {"authorization": f"Bearer {CALL_TOKEN}"}
    assert (await client.post("/webhooks/call", json=call, headers=auth)).status_code == 200
    assert (await client.post("/webhooks/call", json=walk_in, headers=auth)).status_code == 200
    assert (await client.post("/webhooks/call", json=call)).status_code == 401
    wrong = {"authorization": "Bearer guess"}
    assert (await client.post("/webhooks/call", json=call, headers=wrong)).status_code == 403
    no_caller = {**call, "call_id": "call-78", "caller": None}
    assert (await client.post("/webhooks/call", json=no_caller, headers=auth)).status_code == 400

    events = await kafka.events(topics.CONTACT_RECEIVED, count=2)
    await kafka.settle(topics.CONTACT_RECEIVED, quiet=0.5)
    assert len(kafka.seen[topics.CONTACT_RECEIVED]) == 2
    by_channel = {e["channel"]: e for e in events}
    assert by_channel["phone"]["customer"]["phone"] == "0912 345 678"
    assert by_channel["phone"]["producer"] == "gateway.phone.agent-07"
    assert by_channel["walk_in"]["customer"]["name"] == "An"
