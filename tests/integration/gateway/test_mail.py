"""The care mailbox's SMTP listener over the real broker, fed by a real SMTP client."""

import logging
from email.message import EmailMessage

import aiosmtplib
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from services.gateway.app import create_app
from services.gateway.inbound import contact_event_id
from shared import topics
from tests.integration.gateway.conftest import gateway_settings
from tests.integration.gateway.standins import free_port
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.integration

CARE = "cskh@luatsu.example.vn"
CUSTOMER = "an.nguyen@example.vn"


def refused(reason: str) -> float:
    """lexcare_gateway_refused_total for the e-mail channel and `reason`."""
    value = REGISTRY.get_sample_value(
        "lexcare_gateway_refused_total", {"channel": "email", "reason": reason}
    )
    return value or 0.0


@pytest.fixture
async def mail(infra, settings_for, run_app):
    """The SMTP port of a running gateway (care address CARE, 50 kB limit) and a raw Kafka."""
    settings = gateway_settings(
        settings_for,
        gateway_smtp_port=free_port(),
        care_mailboxes=[CARE.upper()],  # addresses compare case-insensitively
        gateway_smtp_max_bytes=50_000,
    )
    await run_app(create_app(settings))
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        yield settings.gateway_smtp_port, kafka


def event_id_of(message_id: str, sender: str = CUSTOMER) -> str:
    """The contact.received id of the mail `message_id` (without brackets) from `sender`."""
    return contact_event_id("email", f"{sender}/{message_id}")


def customer_mail(message_id: str | None = "<q1@example.vn>", **headers: str) -> EmailMessage:
    """A plain-text question to the care mailbox."""
    message = EmailMessage()
    message["From"] = f"Nguyễn Văn An <{CUSTOMER}>"
    message["To"] = CARE
    message["Subject"] = "Hỏi về thủ tục ly hôn đơn phương"
    if message_id:
        message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Chào luật sư,\nTôi muốn hỏi về quyền nuôi con.\n")
    return message


async def send(port: int, message: EmailMessage, recipients: list[str] | None = None) -> None:
    """Deliver `message` to the listener as the firm's relay would."""
    await aiosmtplib.send(
        message, hostname="127.0.0.1", port=port, recipients=recipients or [CARE], timeout=10
    )


async def test_a_mail_to_the_care_mailbox_is_a_contact_and_a_resend_is_the_same_event(mail):
    port, kafka = mail
    await send(port, customer_mail())
    await send(port, customer_mail())  # the relay retries: same Message-ID

    records = await kafka.events(topics.CONTACT_RECEIVED, count=2)
    assert {r["event_id"] for r in records} == {event_id_of("q1@example.vn")}
    event = records[0]
    assert event["channel"] == "email"
    assert event["sender_id"] == f"email:{CUSTOMER}"
    assert event["customer"]["email"] == CUSTOMER
    assert event["customer"]["name"] == "Nguyễn Văn An"
    assert event["message"] == (
        "Hỏi về thủ tục ly hôn đơn phương\n\nChào luật sư,\nTôi muốn hỏi về quyền nuôi con."
    )
    assert event["documents"] == []


async def test_without_a_message_id_the_same_bytes_are_one_event(mail):
    port, kafka = mail
    raw = customer_mail(message_id=None).as_bytes()
    for _ in range(2):
        await aiosmtplib.send(
            raw, sender=CUSTOMER, recipients=[CARE], hostname="127.0.0.1", port=port, timeout=10
        )
    records = await kafka.events(topics.CONTACT_RECEIVED, count=2)
    assert len({r["event_id"] for r in records}) == 1


async def test_mail_for_another_address_is_refused_with_550_and_counted(mail):
    port, kafka = mail
    before = refused("unknown_recipient")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as error:
        await send(port, customer_mail("<other@example.vn>"), ["giamdoc@luatsu.example.vn"])
    assert error.value.recipients[0].code == 550
    assert refused("unknown_recipient") == before + 1

    await send(port, customer_mail("<after@example.vn>"))
    [event] = await kafka.events(topics.CONTACT_RECEIVED, count=1)
    assert event["event_id"] == event_id_of("after@example.vn")  # the refused one: nothing


async def test_an_attachment_is_a_reference_with_name_and_size_never_its_bytes(mail):
    port, kafka = mail
    message = customer_mail("<with-file@example.vn>")
    scan = b"%PDF-1.7 so do " + bytes(range(256)) * 20
    message.add_attachment(scan, maintype="application", subtype="pdf", filename="Sổ đỏ.pdf")
    await send(port, message)

    [event] = await kafka.events(topics.CONTACT_RECEIVED, count=1)
    assert event["documents"] == [f"mail:with-file@example.vn/Sổ đỏ.pdf?bytes={len(scan)}"]
    assert "PDF-1.7" not in event["message"]
    [record] = kafka.seen[topics.CONTACT_RECEIVED]
    assert len(record.value) < len(scan), "the bytes stay out of the event"


async def test_an_rfc2047_subject_and_a_quoted_printable_utf8_body_are_decoded(mail):
    port, kafka = mail
    raw = (
        "From: =?utf-8?b?Tmd1eeG7hW4gVGjhu4sgQsOsbmg=?= <binh@example.vn>\r\n"
        f"To: {CARE}\r\n"
        "Subject: =?utf-8?b?VHLhuqMgbOG7nWkgduG7gSBo4bujcCDEkeG7k25n?=\r\n"
        "Message-ID: <encoded@example.vn>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "T=C3=B4i c=E1=BA=A7n t=C6=B0 v=E1=BA=A5n h=E1=BB=A3p =\r\n"
        "=C4=91=E1=BB=93ng thu=C3=AA nh=C3=A0.\r\n"
    ).encode("ascii")
    await aiosmtplib.send(
        raw, sender="binh@example.vn", recipients=[CARE], hostname="127.0.0.1", port=port
    )

    [event] = await kafka.events(topics.CONTACT_RECEIVED, count=1)
    assert event["customer"]["name"] == "Nguyễn Thị Bình"
    assert event["message"] == "Trả lời về hợp đồng\n\nTôi cần tư vấn hợp đồng thuê nhà."


async def test_an_html_only_mail_becomes_its_visible_text(mail):
    port, kafka = mail
    message = customer_mail("<html@example.vn>")
    message.set_content(
        "<html><head><style>p{color:red}</style></head><body><p>Xin ch&agrave;o,</p>"
        "<p>T&ocirc;i c&#7847;n <b>t&#432; v&#7845;n</b>.<br>C&#7843;m &#417;n</p></body></html>",
        subtype="html",
    )
    await send(port, message)

    [event] = await kafka.events(topics.CONTACT_RECEIVED, count=1)
    assert event["message"].endswith("\n\nXin chào,\n\nTôi cần tư vấn.\nCảm ơn")
    assert "color" not in event["message"] and "<" not in event["message"]


async def test_too_big_or_unreadable_mail_is_refused_and_counted(mail):
    port, kafka = mail
    too_large, malformed = refused("too_large"), refused("malformed")
    big = customer_mail("<big@example.vn>")
    big.add_attachment(b"x" * 60_000, maintype="application", subtype="octet-stream")
    with pytest.raises(aiosmtplib.SMTPResponseException) as error:
        await send(port, big)
    assert error.value.code == 552

    nameless = b"To: " + CARE.encode() + b"\r\nSubject: ?\r\n\r\nno sender\r\n"
    with pytest.raises(aiosmtplib.SMTPDataError) as error:
        await aiosmtplib.send(
            nameless, sender=CUSTOMER, recipients=[CARE], hostname="127.0.0.1", port=port
        )
    assert error.value.code == 554
    assert (refused("too_large"), refused("malformed")) == (too_large + 1, malformed + 1)
    await send(port, customer_mail("<fine@example.vn>"))
    [event] = await kafka.events(topics.CONTACT_RECEIVED, count=1)
    assert event["event_id"] == event_id_of("fine@example.vn")  # the refused: nothing


async def test_bounces_and_auto_replies_are_accepted_but_are_not_contacts(mail):
    port, kafka = mail
    auto = customer_mail("<ooo@example.vn>", Auto_Submitted="auto-replied")
    await send(port, auto)
    await send(port, customer_mail("<real@example.vn>"))
    [event] = await kafka.events(topics.CONTACT_RECEIVED, count=1)
    assert event["event_id"] == event_id_of("real@example.vn")  # same key: it came first


async def test_the_sender_address_never_reaches_the_logs(mail, caplog):
    port, kafka = mail
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        await send(port, customer_mail("<logged@example.vn>"))
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await send(port, customer_mail("<x@example.vn>"), ["nobody@luatsu.example.vn"])
        await kafka.events(topics.CONTACT_RECEIVED, count=1)
    text = repr(logs) + caplog.text
    assert any(line.get("event") == "contact_received" for line in logs)
    assert CUSTOMER not in text and "nobody@" not in text and "Nguyễn" not in text
