"""The care mailbox's inbound SMTP listener: the firm's mail relay forwards mail here.

Accepts mail only for the configured care addresses, up to a size; each accepted mail is
published as contact.received before the listener answers 250, so a mail the relay hands
over is on the broker (or the relay keeps it queued: 451 makes it try again later).
"""

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Iterable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.gateway.inbound import Malformed
from services.gateway.mail import mail_contact
from services.gateway.webhooks.common import IGNORED, Inbox, Refusal, count_refusal, log

CHANNEL = "email"
HOSTNAME = "lexcare-gateway"
"""Our name in the SMTP greeting (aiosmtpd's default asks DNS for the host's FQDN)."""

# aiosmtpd logs every envelope's sender and recipients at INFO: personal data.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class CareMailbox:
    """aiosmtpd handler: care recipients only; each mail becomes one contact.received."""

    def __init__(self, inbox: Inbox, care_addresses: Iterable[str]) -> None:
        self.inbox = inbox
        self.care_addresses = frozenset(address.strip().lower() for address in care_addresses)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        """250 for a care address; 550 for any other (the relay bounces it)."""
        if address.strip().lower() not in self.care_addresses:
            count_refusal(CHANNEL, Refusal(550, "unknown_recipient", "not a care mailbox"))
            return "550 5.1.1 Not a care mailbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Publish the mail as a contact: 250 once stored, 554 unreadable, 451 broker away."""
        raw = envelope.original_content or b""
        try:
            event = mail_contact(
                raw, received_at=self.inbox.clock.now(), envelope_sender=envelope.mail_from
            )
        except Malformed as error:
            count_refusal(CHANNEL, Refusal(554, "malformed", str(error)))
            return "554 5.6.0 Message not readable"
        if event is None:
            IGNORED.labels(CHANNEL).inc()
            log.info("mail_ignored", channel=CHANNEL, reason="bounce_or_auto_reply")
            return "250 OK"
        if not await self.inbox.published(CHANNEL, [event]):
            return "451 4.3.0 Try again later"
        return "250 OK"


class _CountedSMTP(SMTP):
    """aiosmtpd's SMTP session; its own size refusals are counted like the handler's."""

    async def push(self, status: Any) -> None:
        """Send a reply line; a 552 (over the size limit) is counted as too_large."""
        if str(status).startswith("552"):
            count_refusal(CHANNEL, Refusal(552, "too_large", f"over {self.data_size_limit} bytes"))
        await super().push(status)


class MailListener:
    """Serves SMTP on `host:port` in the running event loop, beside the HTTP server."""

    def __init__(self, mailbox: CareMailbox, *, host: str, port: int, max_bytes: int) -> None:
        self.mailbox, self.host, self.port, self.max_bytes = mailbox, host, port, max_bytes
        self.server: asyncio.Server | None = None
        self.sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def _session(self) -> SMTP:
        session = _CountedSMTP(
            self.mailbox, data_size_limit=self.max_bytes, enable_SMTPUTF8=True, hostname=HOSTNAME
        )
        self.sessions.add(session)
        return session

    async def start(self) -> None:
        """Listen (the broker is running: a mail is published as soon as it is received)."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._session, self.host, self.port)
        log.info("mail_listener_started", host=self.host, port=self.port)

    async def stop(self) -> None:
        """Stop listening and close the open sessions (a relay retries an unfinished mail)."""
        if self.server is None:
            return
        self.server.close()
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), timeout=5)
        self.server = None
