"""The platforms' send calls: Messenger Send API, Zalo OA message API, SMTP."""

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
import httpx

from services.gateway.outbound import Delivery
from shared.events import Channel


class DeliveryFailed(Exception):
    """A try that did not deliver; `retryable` when a later try may (5xx, 429, network)."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason, self.retryable = reason, retryable


@dataclass(frozen=True)
class Platforms:
    """Where and as whom the gateway sends (secrets as plain strings, from settings)."""

    facebook_api_url: str
    facebook_page_token: str
    zalo_api_url: str
    zalo_access_token: str
    smtp_host: str
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None
    smtp_starttls: bool
    mail_from: str
    timeout_s: float


def _http_failure(platform: str, response: httpx.Response) -> DeliveryFailed:
    code = response.status_code
    return DeliveryFailed(
        f"HTTP {code} from {platform}", retryable=code >= 500 or code in (408, 429)
    )


class Senders:
    """Sends a Delivery on its channel; raises DeliveryFailed with the reason."""

    def __init__(self, platforms: Platforms, http: httpx.AsyncClient) -> None:
        self.platforms = platforms
        self.http = http

    async def send(self, delivery: Delivery) -> None:
        """Hand `delivery` to its platform (phone deliveries are the dialer's: never here)."""
        senders = {
            Channel.FACEBOOK: self.messenger,
            Channel.ZALO: self.zalo,
            Channel.EMAIL: self.email,
        }
        if delivery.address is None or delivery.channel not in senders:
            raise DeliveryFailed(f"no {delivery.channel.value} address", retryable=False)
        try:
            await senders[delivery.channel](delivery, delivery.address)
        except httpx.HTTPError as error:
            raise DeliveryFailed(
                f"{type(error).__name__} calling {delivery.channel.value}", retryable=True
            ) from error

    async def messenger(self, delivery: Delivery, psid: str) -> None:
        """Messenger Send API: a text message to the page-scoped id."""
        p = self.platforms
        response = await self.http.post(
            f"{p.facebook_api_url}/me/messages",
            params={"access_token": p.facebook_page_token},
            json={
                "recipient": {"id": psid},
                "messaging_type": "MESSAGE_TAG",
                "tag": "ACCOUNT_UPDATE",
                "message": {"text": delivery.text},
            },
            timeout=p.timeout_s,
        )
        if response.status_code != 200:
            raise _http_failure("Messenger", response)

    async def zalo(self, delivery: Delivery, user_id: str) -> None:
        """Zalo OA message API v3 (consultation message): a text to the user id."""
        p = self.platforms
        response = await self.http.post(
            f"{p.zalo_api_url}/v3.0/oa/message/cs",
            headers={"access_token": p.zalo_access_token},
            json={"recipient": {"user_id": user_id}, "message": {"text": delivery.text}},
            timeout=p.timeout_s,
        )
        if response.status_code != 200:
            raise _http_failure("the Zalo OA API", response)
        error = _zalo_error(response)
        if error:  # Zalo answers 200 with its own error code
            raise DeliveryFailed(f"Zalo OA error {error}", retryable=False)

    async def email(self, delivery: Delivery, address: str) -> None:
        """An e-mail through the firm's SMTP relay."""
        p = self.platforms
        message = EmailMessage()
        message["From"] = p.mail_from
        message["To"] = address
        message["Subject"] = delivery.subject
        message.set_content(delivery.text)
        try:
            await aiosmtplib.send(
                message,
                hostname=p.smtp_host,
                port=p.smtp_port,
                username=p.smtp_username or None,
                password=p.smtp_password or None,
                start_tls=p.smtp_starttls,
                timeout=p.timeout_s,
            )
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryFailed(f"SMTP {error.code}", retryable=error.code < 500) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(f"SMTP {type(error).__name__}", retryable=True) from error


def _zalo_error(response: httpx.Response) -> int:
    try:
        return int(response.json().get("error", 0))
    except (ValueError, AttributeError):
        return 0
