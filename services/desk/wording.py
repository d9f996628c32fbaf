"""The desk's Vietnamese wording: labels of the enums and the timeline's lines."""

from shared.events import (
    CareContactCompleted,
    CareContactRequested,
    CaseAssigned,
    CaseClassified,
    CaseReclassified,
    CaseResolved,
    ContractSigned,
    FeeQuoted,
    SurveyScored,
)

LEGAL_FIELDS = {
    "traffic": "Giao thông",
    "family": "Hôn nhân – Gia đình",
    "civil_commercial": "Dân sự – Thương mại",
    "land": "Đất đai",
    "labor": "Lao động",
    "criminal": "Hình sự",
    "enterprise": "Doanh nghiệp",
    "administrative": "Hành chính",
    "intellectual_property": "Sở hữu trí tuệ",
    "other": "Khác",
}
CHANNELS = {
    "facebook": "Facebook Messenger",
    "zalo": "Zalo",
    "website": "Website",
    "phone": "Điện thoại",
    "email": "E-mail",
    "walk_in": "Đến văn phòng",
}
CARE_KINDS = {
    "first_contact": "Liên hệ lần đầu",
    "care": "Chăm sóc định kỳ",
    "apology": "Xin lỗi khách hàng (khiếu nại)",
    "check_in": "Hỏi thăm sau khi kết thúc",
    "birthday": "Chúc mừng sinh nhật",
    "loyalty_offer": "Ưu đãi khách hàng thân thiết",
}
CARE_OUTCOMES = {
    "reached": "Đã liên hệ được",
    "no_answer": "Không nghe máy",
    "wrong_number": "Sai số / sai địa chỉ",
    "declined": "Khách từ chối",
}
RESOLUTIONS = {
    "advised": "Đã tư vấn xong",
    "settled": "Hòa giải thành",
    "won": "Thắng",
    "lost": "Thua",
    "withdrawn": "Khách rút yêu cầu",
    "referred": "Chuyển Trung tâm trợ giúp pháp lý",
}
DELIVERY_METHODS = {
    "phone": "Tư vấn qua điện thoại",
    "letter": "Tư vấn bằng văn bản",
    "office": "Tư vấn tại văn phòng",
    "onsite": "Luật sư đến tận nơi",
}
ROLES = {"agent": "Chuyên viên CSKH", "lawyer": "Luật sư", "manager": "Quản lý"}
ROSTER_ROLES = {"lawyer": "Luật sư", "consultant": "Chuyên viên tư vấn"}
QUOTED = "Báo phí dịch vụ"


def _field(value: str | None) -> str:
    return LEGAL_FIELDS.get(value or "", value or "chưa rõ")


def classified_title(event: CaseClassified) -> str:
    """A contact recorded on the case, with its classification (or a staff correction)."""
    if event.correction:
        return f"Lĩnh vực đã cập nhật: {_field(event.legal_field)}"
    opened = "Tiếp nhận vụ việc mới" if event.new_case else "Khách liên hệ thêm"
    return (
        f"{opened} qua {CHANNELS.get(event.channel, event.channel)} – {_field(event.legal_field)}"
    )


def classified_detail(event: CaseClassified) -> str:
    """Why the classifier chose the field, in a line staff can check."""
    if event.correction:
        before = f" (trước: {_field(event.corrected_from)})" if event.corrected_from else ""
        return f"Nhân viên sửa lĩnh vực{before}. {event.explanation or ''}".strip()
    parts = [f"Độ tin cậy phân loại {event.confidence:.0%}"]
    if event.explanation:
        parts.append(f"căn cứ: {event.explanation}")
    if event.needs_triage:
        parts.append("cần người phân loại lại")
    if event.is_complaint:
        parts.append("khiếu nại")
    if event.is_dispute:
        parts.append("có tranh chấp")
    if event.legal_aid:
        parts.append("thuộc diện trợ giúp pháp lý")
    if event.missing_items:
        parts.append("cần bổ sung: " + ", ".join(event.missing_items))
    return "; ".join(parts) + "."


def reclassified_title(event: CaseReclassified, before: str | None) -> str:
    """A staff correction of the case's field."""
    return f"Sửa lĩnh vực: {_field(before)} → {_field(event.legal_field)}"


def assigned_title(event: CaseAssigned) -> str:
    """Who routing gave the case to, or why nobody."""
    if event.assignee_id is None:
        return f"Chưa phân công được ({event.reason})"
    verb = "Chuyển cho" if event.previous_assignee_id else "Phân công cho"
    return f"{verb} {event.assignee_id}"


def quote_detail(event: FeeQuoted) -> str:
    """The fee per delivery method."""
    if event.legal_aid:
        return event.referral or "Miễn phí – chuyển Trung tâm trợ giúp pháp lý"
    prices = ", ".join(
        f"{DELIVERY_METHODS.get(m, m)}: {vnd(p)}" for m, p in event.prices_vnd.items()
    )
    return f"{prices}. {event.basis}"


def requested_title(event: CareContactRequested) -> str:
    """A care contact followup asked for."""
    attempt = f" (lần {event.attempt})" if event.attempt > 1 else ""
    return f"Cần liên hệ: {CARE_KINDS.get(event.kind, event.kind)}{attempt}"


def completed_title(event: CareContactCompleted) -> str:
    """The outcome of a care contact."""
    return f"Kết quả liên hệ: {CARE_OUTCOMES.get(event.outcome, event.outcome)}"


def contract_title(event: ContractSigned) -> str:
    """A contract signed on the case."""
    method = DELIVERY_METHODS.get(event.delivery_method, event.delivery_method)
    return f"Ký hợp đồng {event.contract_id}: {vnd(event.amount_vnd)} – {method}"


def resolved_title(event: CaseResolved) -> str:
    """How the case ended."""
    return f"Kết thúc vụ việc: {RESOLUTIONS.get(event.outcome, event.outcome)}"


def scored_title(event: SurveyScored) -> str:
    """The customer's survey answer."""
    scores = [
        f"{name} {value}"
        for name, value in (("NPS", event.nps), ("CSAT", event.csat), ("CES", event.ces))
        if value is not None
    ]
    return "Khảo sát: " + (", ".join(scores) or "chỉ góp ý")


def vnd(amount: float) -> str:
    """An amount of đồng as Vietnamese write it: 5.000.000 ₫."""
    return f"{amount:,.0f} ₫".replace(",", ".")
