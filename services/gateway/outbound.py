"""What the gateway sends for a request, on which channel, to whom: pure, no I/O."""

import random
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from shared.events import (
    CareContactRequested,
    CareKind,
    Channel,
    ContactPoint,
    SurveyReminded,
    SurveyRequested,
)

Request = CareContactRequested | SurveyRequested | SurveyReminded

CARE_TEXTS: dict[CareKind, str] = {
    CareKind.FIRST_CONTACT: (
        "Cảm ơn {you} đã liên hệ văn phòng luật. Chúng tôi đã nhận yêu cầu tư vấn "
        "(hồ sơ {case}) và sẽ liên hệ lại trong thời gian sớm nhất."
    ),
    CareKind.CARE: (
        "Văn phòng luật xin hỏi thăm {you} về vụ việc (hồ sơ {case}). "
        "{You} cần hỗ trợ thêm điều gì, xin cứ trả lời tin nhắn này."
    ),
    CareKind.APOLOGY: (
        "Văn phòng luật thành thật xin lỗi {you} vì trải nghiệm chưa tốt (hồ sơ {case}). "
        "Bộ phận chăm sóc khách hàng sẽ liên hệ để khắc phục ngay."
    ),
    CareKind.CHECK_IN: (
        "Vụ việc của {you} (hồ sơ {case}) đã khép lại. Nếu cần, chúng tôi sẵn sàng hỗ trợ "
        "thêm: {services}."
    ),
    CareKind.BIRTHDAY: "Văn phòng luật chúc mừng sinh nhật {you}! Chúc {you} luôn mạnh khoẻ.",
    CareKind.LOYALTY_OFFER: (
        "Cảm ơn {you} đã luôn tin tưởng văn phòng luật. {You} được hưởng ưu đãi "
        "dành cho khách hàng thân thiết cho lần tư vấn tới."
    ),
}

SURVEY_TEXT = (
    "Cảm ơn {you} đã sử dụng dịch vụ của văn phòng luật. Mời {you} dành một phút đánh giá "
    "chất lượng tư vấn (mã khảo sát {survey}, hạn đến {expires}){link}."
)
REMINDER_TEXT = (
    "Nhắc lại: văn phòng luật rất mong nhận được đánh giá của {you} "
    "(mã khảo sát {survey}, hạn đến {expires}){link}."
)
SUBJECTS = {
    CareContactRequested: "Văn phòng luật: thông tin về hồ sơ {case}",
    SurveyRequested: "Mời đánh giá chất lượng tư vấn",
    SurveyReminded: "Nhắc: đánh giá chất lượng tư vấn",
}


@dataclass(frozen=True)
class Delivery:
    """One message to send: on which channel, to which address, with what text."""

    channel: Channel
    """facebook (Messenger), zalo (OA API), email (SMTP) or phone (the dialer's call list)."""
    address: str | None
    subject: str
    text: str


def address_on(channel: Channel, contact: ContactPoint) -> str | None:
    """The customer's address on `channel`: PSID, Zalo user id, e-mail or phone."""
    sender = contact.sender_id or ""
    if channel in (Channel.FACEBOOK, Channel.ZALO):
        prefix = f"{channel.value}:"
        if contact.channel == channel and sender:
            return sender.removeprefix(prefix)
        return None
    if channel == Channel.EMAIL:
        return contact.email or (
            sender.removeprefix("email:") if sender.startswith("email:") else None
        )
    return contact.phone


def delivery_channel(channel: Channel, contact: ContactPoint) -> Channel:
    """The channel a request goes out on: its case's, else e-mail, else the dialer."""
    if channel in (Channel.FACEBOOK, Channel.ZALO, Channel.EMAIL) and address_on(channel, contact):
        return channel
    if address_on(Channel.EMAIL, contact):
        return Channel.EMAIL
    return Channel.PHONE


def _you(contact: ContactPoint) -> str:
    return f"anh/chị {contact.name}" if contact.name else "anh/chị"


def message_text(request: Request, zone: ZoneInfo) -> str:
    """The Vietnamese text of `request`, addressed to the customer by name."""
    you = _you(request.contact)
    if isinstance(request, CareContactRequested):
        services = ", ".join(request.related_services) or "tư vấn pháp lý"
        text = CARE_TEXTS[request.kind].format(
            you=you, You="Anh/chị", case=request.case_id, services=services
        )
        return text
    link = getattr(request, "survey_url", None)
    template = SURVEY_TEXT if isinstance(request, SurveyRequested) else REMINDER_TEXT
    return template.format(
        you=you,
        survey=request.survey_id,
        expires=_local_day(request.expires_at, zone),
        link=f": {link}" if link else "",
    )


def _local_day(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%d/%m/%Y")


def delivery_for(request: Request, zone: ZoneInfo) -> Delivery:
    """What to send for `request`, on which channel, to whom."""
    channel = delivery_channel(request.channel, request.contact)
    return Delivery(
        channel=channel,
        address=address_on(channel, request.contact),
        subject=SUBJECTS[type(request)].format(case=request.case_id),
        text=message_text(request, zone),
    )


def request_id_of(request: Request) -> str:
    """The request's own id: a care contact's request_id, a survey's survey_id."""
    return request.request_id if isinstance(request, CareContactRequested) else request.survey_id


def backoff_s(attempt: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Seconds before try `attempt + 1`: exponential, capped, full jitter."""
    return rng.uniform(0, min(cap_s, base_s * 2 ** (attempt - 1)))
