"""A mail to the care mailbox as contact.received: MIME decoded, attachments named only."""

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from services.gateway.inbound import Malformed
from services.gateway.mail import html_to_text, mail_contact

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def contact_of(raw: bytes, envelope_sender: str | None = "a@example.vn"):
    return mail_contact(raw, received_at=NOW, envelope_sender=envelope_sender)


def test_a_legacy_vietnamese_charset_is_decoded_with_its_declared_codec():
    body = "Tôi đi làm".encode("cp1258")
    raw = (
        b"From: a@example.vn\r\nSubject: Hoi\r\nContent-Type: text/plain; charset=windows-1258\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
    )
    assert contact_of(raw).message == "Hoi\n\nTôi đi làm"


def test_an_unknown_charset_falls_back_to_utf8_instead_of_refusing_the_mail():
    raw = (
        b"From: a@example.vn\r\nContent-Type: text/plain; charset=x-made-up\r\n\r\n"
        + "Xin chào".encode()
    )
    assert contact_of(raw).message == "Xin chào"


def test_a_forwarded_mail_and_an_inline_image_are_references_the_html_alternative_is_not():
    inner = EmailMessage()
    inner["From"] = "b@example.vn"
    inner.set_content("forwarded")
    outer = EmailMessage()
    outer["From"] = "A <A@Example.VN>"
    outer["Message-ID"] = "<m1@example.vn>"
    outer.set_content("plain text")
    outer.add_alternative("<p>plain <b>text</b></p>", subtype="html")
    outer.add_attachment(inner)
    outer.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="a/b.png")

    event = contact_of(outer.as_bytes())
    assert event.message == "plain text"
    assert event.sender_id == "email:a@example.vn"
    assert event.documents == [
        f"mail:m1@example.vn/attachment-3?bytes={len(bytes(inner))}",
        "mail:m1@example.vn/a_b.png?bytes=4",
    ]


def test_bounces_and_auto_replies_are_no_contact():
    message = EmailMessage()
    message["From"] = "mailer-daemon@example.vn"
    message.set_content("Undelivered")
    assert contact_of(message.as_bytes(), envelope_sender="") is None
    message["Auto-Submitted"] = "auto-replied"
    assert contact_of(message.as_bytes()) is None


def test_a_mail_without_a_sender_address_is_malformed():
    with pytest.raises(Malformed, match="From"):
        contact_of(b"From: Nobody\r\n\r\nhello")


def test_html_text_keeps_lines_and_drops_scripts_and_entities():
    markup = "<div>Một</div><script>alert(1)</script><p>Hai&nbsp;&amp;&nbsp;ba</p>"
    assert html_to_text(markup) == "Một\n\nHai & ba"
