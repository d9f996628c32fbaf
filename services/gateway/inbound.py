"""What each channel's webhook says, as contact.received events: pure, no I/O.

Every event's id is derived from the channel's own message id, so a webhook the platform
delivers twice (a retry after a slow answer) is one event downstream.
"""

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared import topics
from shared.delivery import describe_error
from shared.events import Channel, ContactKind, ContactReceived, LegalField, derived_event_id

PRODUCER = "gateway"
HONEYPOT_FIELD = "url"
"""The website form's hidden field: people leave it empty, bots fill it."""


class Malformed(ValueError):
    """A body the gateway cannot read: answered 400 with this reason, nothing published."""


def contact_event_id(channel: str, message_id: str) -> str:
    """The contact.received id of the channel's message `message_id` (same message, same id)."""
    return str(derived_event_id(f"{channel}:{message_id}", topics.CONTACT_RECEIVED))


def body_digest(body: bytes) -> str:
    """A stand-in message id for channels without one: the body's SHA-256."""
    return hashlib.sha256(body).hexdigest()


def contact(
    channel: Channel, message_id: str, *, occurred_at: datetime, **fields: Any
) -> ContactReceived:
    """The contact.received of one channel message, or Malformed with the reason."""
    try:
        return ContactReceived(
            event_id=contact_event_id(channel.value, message_id),
            occurred_at=occurred_at,
            producer=fields.pop("producer", f"{PRODUCER}.{channel.value}"),
            channel=channel,
            **fields,
        )
    except ValidationError as error:
        raise Malformed(describe_error(error)) from error


def from_epoch_ms(value: Any) -> datetime:
    """A platform's millisecond timestamp (number or digits) as an aware UTC time."""
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError) as error:
        raise Malformed(f"timestamp: expected milliseconds since 1970, got {value!r}") from error


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{where}: expected an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{where}: expected a list")
    return value


def _attachment_urls(attachments: Any, where: str) -> list[str]:
    """URLs of a message's attachments (document references, never bytes)."""
    urls = []
    for attachment in _list(attachments, where):
        payload = _dict(attachment, where).get("payload")
        url = payload.get("url") if isinstance(payload, dict) else None
        if isinstance(url, str) and url:
            urls.append(url)
    return urls


def facebook_contacts(payload: Any) -> tuple[list[ContactReceived], int]:
    """The contacts of a Messenger webhook and how many of its items were not messages."""
    body = _dict(payload, "body")
    if body.get("object") != "page":
        raise Malformed("object: expected 'page'")
    contacts, ignored = [], 0
    for entry in _list(body.get("entry"), "entry"):
        for item in _list(_dict(entry, "entry[]").get("messaging"), "entry[].messaging"):
            item = _dict(item, "entry[].messaging[]")
            message = item.get("message")
            if not isinstance(message, dict) or message.get("is_echo"):
                ignored += 1  # deliveries, reads, postbacks, the page's own echoes
                continue
            sender = _dict(item.get("sender"), "messaging[].sender").get("id")
            mid = message.get("mid")
            if not sender or not mid:
                raise Malformed("messaging[]: sender.id and message.mid are required")
            contacts.append(
                contact(
                    Channel.FACEBOOK,
                    str(mid),
                    occurred_at=from_epoch_ms(item.get("timestamp")),
                    sender_id=f"facebook:{sender}",
                    message=message.get("text") or "",
                    documents=_attachment_urls(message.get("attachments"), "attachments"),
                )
            )
    return contacts, ignored


def zalo_timestamp(payload: Any) -> str:
    """The `timestamp` field of a Zalo event as signed (digits, as sent)."""
    value = _dict(payload, "body").get("timestamp")
    if not isinstance(value, str | int) or not str(value).isdigit():
        raise Malformed("timestamp: expected milliseconds since 1970")
    return str(value)


def zalo_contact(payload: Any) -> ContactReceived | None:
    """The contact of a Zalo OA event, or None for events that are not a user's message."""
    body = _dict(payload, "body")
    event_name = body.get("event_name")
    if not isinstance(event_name, str):
        raise Malformed("event_name: required")
    if not event_name.startswith("user_send_"):
        return None  # follows, reads, the OA's own messages
    message = _dict(body.get("message"), "message")
    sender = _dict(body.get("sender"), "sender").get("id")
    msg_id = message.get("msg_id")
    if not sender or not msg_id:
        raise Malformed("sender.id and message.msg_id are required")
    return contact(
        Channel.ZALO,
        str(msg_id),
        occurred_at=from_epoch_ms(zalo_timestamp(body)),
        sender_id=f"zalo:{sender}",
        message=message.get("text") or "",
        documents=_attachment_urls(message.get("attachments"), "message.attachments"),
    )


def form_contact(
    fields: Mapping[str, str], *, received_at: datetime, body: bytes
) -> ContactReceived:
    """The contact of the website's form (the honeypot is checked before)."""
    email = (fields.get("email") or "").strip().lower() or None
    phone = (fields.get("phone") or "").strip() or None
    if not (email or phone):
        raise Malformed("phone or email: at least one is required")
    if not (fields.get("message") or "").strip():
        raise Malformed("message: required")
    submission = (fields.get("submission_id") or "").strip() or body_digest(body)
    return contact(
        Channel.WEBSITE,
        submission,
        occurred_at=received_at,
        sender_id=f"website:{email or phone}",
        kind=fields.get("kind") or ContactKind.INQUIRY,
        customer={"name": fields.get("name") or None, "phone": phone, "email": email},
        message=fields["message"].strip(),
        legal_field=fields.get("legal_field") or None,
    )


class CallEnded(BaseModel):
    """A switchboard's call-ended event, or a reception desk's walk-in record."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    call_id: str = Field(min_length=1, max_length=200)
    channel: Literal["phone", "walk_in"] = "phone"
    caller: str | None = Field(default=None, max_length=50)
    agent_id: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=50_000)
    ended_at: AwareDatetime | None = None
    name: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=320)
    kind: ContactKind = ContactKind.INQUIRY
    legal_field: LegalField | None = None


def call_contact(payload: Any, *, received_at: datetime) -> ContactReceived:
    """The contact of a call (channel phone) or a walk-in visit (channel walk_in)."""
    try:
        call = CallEnded.model_validate(payload)
    except ValidationError as error:
        raise Malformed(describe_error(error)) from error
    if call.channel == "phone" and not call.caller:
        raise Malformed("caller: required for a phone call")
    channel = Channel(call.channel)
    return contact(
        channel,
        call.call_id,
        occurred_at=call.ended_at or received_at,
        producer=f"{PRODUCER}.{channel.value}.{call.agent_id}",
        sender_id=f"{channel.value}:{call.caller or call.email or call.call_id}",
        kind=call.kind,
        customer={"name": call.name, "phone": call.caller, "email": call.email},
        message=call.note,
        legal_field=call.legal_field,
    )
