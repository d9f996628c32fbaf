"""The gateway's pure rules: signatures, parsing, where a request goes, backoff, rate limit."""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.gateway.inbound import Malformed, contact_event_id, facebook_contacts, zalo_contact
from services.gateway.outbound import backoff_s, delivery_for
from services.gateway.signatures import (
    facebook_signature,
    facebook_signature_ok,
    zalo_signature,
    zalo_signature_ok,
)
from services.gateway.webhooks.common import RateLimit
from shared.events import Channel, ContactPoint, SurveyRequested

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def test_facebook_signature_is_hmac_sha256_of_the_raw_body():
    body = b'{"object":"page"}'
    assert facebook_signature_ok(body, facebook_signature(body, "s3cret"), "s3cret")
    assert not facebook_signature_ok(body + b" ", facebook_signature(body, "s3cret"), "s3cret")
    assert not facebook_signature_ok(body, facebook_signature(body, "other"), "s3cret")
    assert not facebook_signature_ok(body, None, "s3cret")
    assert not facebook_signature_ok(body, facebook_signature(body, ""), "")  # unconfigured


def test_zalo_signature_covers_app_id_body_timestamp_and_secret():
    args = {"app_id": "1", "body": b"{}", "timestamp": "1700000000000", "oa_secret": "k"}
    header = zalo_signature(**args)
    assert header.startswith("mac=") and zalo_signature_ok(header, **args)
    assert not zalo_signature_ok(header, **{**args, "timestamp": "1700000000001"})
    assert not zalo_signature_ok(header, **{**args, "oa_secret": ""})


def test_a_retried_message_gets_the_same_event_id_another_message_another():
    assert contact_event_id("facebook", "m_1") == contact_event_id("facebook", "m_1")
    assert contact_event_id("facebook", "m_1") != contact_event_id("zalo", "m_1")


def test_messenger_echoes_and_receipts_are_not_contacts():
    payload = {
        "object": "page",
        "entry": [
            {
                "messaging": [
                    {
                        "sender": {"id": "1"},
                        "timestamp": 1,
                        "message": {"mid": "m", "is_echo": True},
                    },
                    {"sender": {"id": "1"}, "delivery": {}},
                ]
            }
        ],
    }
    assert facebook_contacts(payload) == ([], 2)
    with pytest.raises(Malformed, match="object"):
        facebook_contacts({"object": "user"})


def test_zalo_events_other_than_user_messages_are_ignored():
    assert zalo_contact({"event_name": "follow", "timestamp": "1"}) is None
    with pytest.raises(Malformed, match="msg_id"):
        zalo_contact({"event_name": "user_send_text", "sender": {"id": "1"}, "message": {}})


def survey_to(contact: ContactPoint, channel: str) -> SurveyRequested:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return SurveyRequested(
        event_id="00000000-0000-4000-8000-000000000001",
        occurred_at=now,
        producer="survey",
        survey_id="srv-1",
        case_id="case-1",
        customer_id="cus-1",
        channel=channel,
        contact=contact,
        expires_at=now + timedelta(days=7),
    )


@pytest.mark.parametrize(
    ("channel", "contact", "expected"),
    [
        ("facebook", ContactPoint(channel="facebook", sender_id="facebook:42"), ("facebook", "42")),
        ("zalo", ContactPoint(channel="zalo", sender_id="zalo:7"), ("zalo", "7")),
        ("website", ContactPoint(channel="website", email="a@b.vn"), ("email", "a@b.vn")),
        ("facebook", ContactPoint(channel="facebook", email="a@b.vn"), ("email", "a@b.vn")),
        ("phone", ContactPoint(channel="phone", phone="+84912345678"), ("phone", "+84912345678")),
        ("walk_in", ContactPoint(channel="walk_in"), ("phone", None)),
    ],
)
def test_a_request_goes_on_its_case_channel_else_by_mail_else_to_the_dialer(
    channel, contact, expected
):
    delivery = delivery_for(survey_to(contact, channel), ZONE)
    assert (delivery.channel.value, delivery.address) == expected
    assert "08/12/2026" in delivery.text and delivery.channel in Channel


def test_backoff_grows_is_capped_and_jittered():
    rng = random.Random(1)
    waits = [backoff_s(n, base_s=1.0, cap_s=4.0, rng=rng) for n in range(1, 50)]
    assert all(0 <= w <= 4.0 for w in waits)
    assert len(set(waits)) == len(waits)
    assert max(backoff_s(1, base_s=1.0, cap_s=4.0, rng=rng) for _ in range(200)) <= 1.0


def test_rate_limit_refills_over_time_per_client():
    limit = RateLimit(per_minute=2)
    assert [limit.allow("a", now=0), limit.allow("a", now=0), limit.allow("a", now=0)] == [
        True,
        True,
        False,
    ]
    assert limit.allow("b", now=0)
    assert limit.allow("a", now=30)
