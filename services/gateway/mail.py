"""What a mail to the care mailbox says, as a contact.received event: pure, no I/O.

Decodes MIME as a mail client would (RFC 2047 headers, each part's charset and transfer
encoding); keeps the subject and the text (an HTML-only mail's tags stripped) and names
the attachments. Their bytes are dropped here: they stay in the firm's mailbox.
"""

import email.policy
import html
import re
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser

from services.gateway.inbound import Malformed, body_digest, contact
from shared.events import Channel, ContactReceived

MAX_MESSAGE_CHARS = 50_000
"""contact.received's message limit: longer mails are cut there."""
MAX_DOCUMENTS = 100
MAX_FILE_NAME_CHARS = 200

_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"})
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title"})


class _TextOfHtml(HTMLParser):
    """Collects an HTML body's visible text, a line break at each block."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open a hidden element or break the line before a block."""
        if tag in _HIDDEN_TAGS:
            self.hidden += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        """Close a hidden element or break the line after a block."""
        if tag in _HIDDEN_TAGS:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        """Keep visible text."""
        if not self.hidden:
            self.chunks.append(data)


def html_to_text(markup: str) -> str:
    """The visible text of an HTML body: tags stripped, entities decoded, lines kept."""
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    return tidy(html.unescape("".join(parser.chunks)))


def tidy(text: str) -> str:
    """Trailing spaces gone, runs of blank lines as one, no blank edges."""
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def parse(raw: bytes) -> EmailMessage:
    """The raw message (as received, CRLF or LF) as a MIME tree."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def message_id(message: EmailMessage, raw: bytes) -> str:
    """The Message-ID without its brackets, or the raw message's SHA-256 when it has none."""
    value = str(message.get("message-id") or "").strip().strip("<>").strip()
    return value[:998] or body_digest(raw)


def part_text(part: EmailMessage) -> str:
    """A text part decoded with its declared charset (UTF-8 when unknown), HTML stripped."""
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or lying charset
        text = (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
    if part.get_content_subtype() == "html":
        return html_to_text(text)
    return tidy(text)


def _leaves(part: EmailMessage) -> Iterator[EmailMessage]:
    """Every part that is not a multipart container (an attached mail counts as one)."""
    if part.get_content_maintype() == "multipart":
        for child in part.iter_parts():
            yield from _leaves(child)  # type: ignore[arg-type]
    else:
        yield part


def _size(part: EmailMessage) -> int:
    if part.get_content_maintype() == "message":
        return sum(len(bytes(inner)) for inner in part.iter_parts())
    return len(part.get_payload(decode=True) or b"")


def attachment_references(message: EmailMessage, mail_id: str) -> list[str]:
    """One reference per attachment, `mail:<message id>/<file name>?bytes=<size>`: no bytes."""
    body = message.get_body(preferencelist=("plain", "html"))
    references = []
    for number, part in enumerate(_leaves(message), start=1):
        named = part.get_filename()
        attached = part.is_attachment() or named or part.get_content_maintype() == "message"
        if part is body or not attached:
            continue  # the text itself, or the HTML alternative of a plain text
        name = (named or f"attachment-{number}").replace("/", "_")[:MAX_FILE_NAME_CHARS]
        references.append(f"mail:{mail_id}/{name}?bytes={_size(part)}")
    return references[:MAX_DOCUMENTS]


def is_automatic(message: EmailMessage, envelope_sender: str | None) -> bool:
    """A bounce (null sender) or an auto-reply (RFC 3834): not a customer's contact."""
    auto = str(message.get("auto-submitted") or "no").strip().lower()
    return envelope_sender == "" or not auto.startswith("no")


def sender(message: EmailMessage) -> tuple[str | None, str]:
    """The author's display name and lower-cased address (From), or Malformed."""
    header = message.get("from")
    addresses = getattr(header, "addresses", ())
    if not addresses or "@" not in addresses[0].addr_spec:
        raise Malformed("From: no sender address")
    return addresses[0].display_name or None, addresses[0].addr_spec.strip().lower()


def message_text(message: EmailMessage) -> str:
    """Subject, a blank line, the body's text; cut to contact.received's limit."""
    subject = tidy(str(message.get("subject") or ""))
    body = message.get_body(preferencelist=("plain", "html"))
    text = part_text(body) if body is not None else ""  # type: ignore[arg-type]
    return "\n\n".join(piece for piece in (subject, text) if piece)[:MAX_MESSAGE_CHARS]


def mail_contact(
    raw: bytes, *, received_at: datetime, envelope_sender: str | None
) -> ContactReceived | None:
    """The contact of one mail, None for a bounce or an auto-reply, or Malformed."""
    try:
        message = parse(raw)
        if is_automatic(message, envelope_sender):
            return None
        name, address = sender(message)
        mail_id = message_id(message, raw)
        text, documents = message_text(message), attachment_references(message, mail_id)
    except Malformed:
        raise
    except Exception as error:  # the stdlib parser has many ways to fail on hostile input
        raise Malformed(f"unreadable MIME ({type(error).__name__})") from error
    return contact(
        Channel.EMAIL,
        f"{address}/{mail_id}",  # another sender reusing a Message-ID cannot mute this mail
        occurred_at=received_at,
        sender_id=f"email:{address}",
        customer={"name": name, "email": address},
        message=text,
        documents=documents,
    )
