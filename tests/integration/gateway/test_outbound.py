"""Requests delivered on their channel against local stand-ins, SMTP for real."""

from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header

import httpx
import pytest

from services.gateway.app import create_app
from shared import topics
from shared.events import CareContactRequested, ContactPoint, Event, SurveyRequested
from tests.conftest import eventually
from tests.integration.gateway.conftest import gateway_settings
from tests.integration.gateway.standins import PlatformStandIn, serving, smtp_server
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def survey(channel: str, contact: ContactPoint, n: int = 1) -> SurveyRequested:
    return SurveyRequested(
        event_id=f"00000000-0000-4000-8000-{n:012d}",
        occurred_at=NOW,
        producer="survey",
        survey_id=f"srv-{n}",
        case_id=f"case-{n}",
        customer_id="cus-1",
        channel=channel,
        contact=contact,
        expires_at=NOW + timedelta(days=7),
    )


def care(channel: str, contact: ContactPoint, n: int = 1) -> CareContactRequested:
    return CareContactRequested(
        event_id=f"00000000-0000-4000-9000-{n:012d}",
        occurred_at=NOW,
        producer="followup",
        request_id=f"req-{n}",
        case_id=f"case-{n}",
        customer_id="cus-1",
        kind="first_contact",
        channel=channel,
        contact=contact,
        due_at=NOW,
    )


@pytest.fixture
async def outbound(infra, settings_for, run_app):
    """A gateway sending to a platform stand-in and a real SMTP server."""
    platform = PlatformStandIn()
    with smtp_server() as (mailbox, smtp_port):
        async with serving(platform) as url:
            settings = gateway_settings(
                settings_for,
                facebook_api_url=url,
                facebook_page_token="page-token-test",
                zalo_api_url=url,
                zalo_access_token="zalo-token-test",
                smtp_port=smtp_port,
                delivery_attempts=3,
                delivery_backoff_s=0.01,
            )
            await run_app(create_app(settings))
            async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
                yield kafka, platform, mailbox


async def send(kafka: RawKafka, event: Event) -> None:
    await kafka.send(event.event_type, event.to_bytes(), key=event.partition_key().decode())


def outcomes(records: list[dict]) -> list[tuple[int, str]]:
    return sorted((r["attempt"], r["outcome"]) for r in records)


async def test_a_survey_goes_to_the_messenger_psid_with_the_page_token(outbound):
    kafka, platform, _ = outbound
    await send(
        kafka, survey("facebook", ContactPoint(channel="facebook", sender_id="facebook:2468"))
    )

    [attempt] = await kafka.events(topics.DELIVERY_ATTEMPTED, count=1)
    assert (attempt["outcome"], attempt["channel"], attempt["request_id"]) == (
        "sent",
        "facebook",
        "srv-1",
    )
    [request] = platform.requests
    assert request.path == "/me/messages" and request.query["access_token"] == "page-token-test"
    assert request.json["recipient"] == {"id": "2468"}
    assert "srv-1" in request.json["message"]["text"]


async def test_zalo_failures_are_retried_then_sent_each_try_reported(outbound):
    kafka, platform, _ = outbound
    platform.failures = 2
    await send(
        kafka, care("zalo", ContactPoint(channel="zalo", sender_id="zalo:8840012", name="An"))
    )

    attempts = await kafka.events(topics.DELIVERY_ATTEMPTED, count=3)
    assert outcomes(attempts) == [(1, "failed"), (2, "failed"), (3, "sent")]
    assert attempts[0]["reason"] == "HTTP 503 from the Zalo OA API"
    assert len(platform.requests) == 3
    assert platform.requests[-1].headers["access_token"] == "zalo-token-test"
    assert platform.requests[-1].json["recipient"] == {"user_id": "8840012"}
    assert "anh/chị An" in platform.requests[-1].json["message"]["text"]


async def test_a_request_that_keeps_failing_is_dead_lettered_with_the_reason(outbound):
    kafka, platform, _ = outbound
    platform.failures = 10
    request = survey("zalo", ContactPoint(channel="zalo", sender_id="zalo:1"), n=2)
    await send(kafka, request)

    attempts = await kafka.events(topics.DELIVERY_ATTEMPTED, count=3)
    assert outcomes(attempts) == [(1, "failed"), (2, "failed"), (3, "dead_lettered")]
    [dead] = await kafka.read(topics.dlq(topics.SURVEY_REQUESTED), until=lambda r: len(r) >= 1)
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["x-error"] == "Undeliverable: HTTP 503 from the Zalo OA API (try 3)"
    assert headers["x-error-type"] == "Undeliverable"
    assert dead.value == request.to_bytes()


async def test_a_refused_send_is_not_retried(outbound):
    kafka, platform, _ = outbound
    platform.status = 400
    await send(kafka, care("facebook", ContactPoint(channel="facebook", sender_id="facebook:9"), 3))

    [attempt] = await kafka.events(topics.DELIVERY_ATTEMPTED, count=1)
    assert (attempt["outcome"], attempt["reason"]) == ("dead_lettered", "HTTP 400 from Messenger")
    assert len(platform.requests) == 1


async def test_email_contacts_get_a_real_mail(outbound):
    kafka, _, mailbox = outbound
    contact = ContactPoint(channel="website", email="binh.tran@example.vn", name="Bình")
    await send(kafka, survey("website", contact, n=4))

    [attempt] = await kafka.events(topics.DELIVERY_ATTEMPTED, count=1)
    assert (attempt["outcome"], attempt["channel"]) == ("sent", "email")
    [mail] = await eventually(lambda: mailbox.messages)
    assert mail["To"] == "binh.tran@example.vn"
    assert str(make_header(decode_header(mail["Subject"]))) == "Mời đánh giá chất lượng tư vấn"
    assert "srv-4" in mail.get_payload(decode=True).decode()


async def test_phone_contacts_are_queued_for_the_dialer_not_sent(outbound):
    kafka, platform, mailbox = outbound
    await send(kafka, care("phone", ContactPoint(channel="phone", phone="+84912345678"), n=5))

    [attempt] = await kafka.events(topics.DELIVERY_ATTEMPTED, count=1)
    assert (attempt["outcome"], attempt["channel"], attempt["request_id"]) == (
        "queued",
        "phone",
        "req-5",
    )
    assert platform.requests == [] and mailbox.messages == []


async def test_the_standin_is_a_real_http_server():
    standin = PlatformStandIn()
    async with serving(standin) as url, httpx.AsyncClient() as client:
        assert (await client.post(f"{url}/x", json={"a": 1})).status_code == 200
    assert standin.requests[0].json == {"a": 1}
