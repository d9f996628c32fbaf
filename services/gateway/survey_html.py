"""The survey page's HTML: Vietnamese, mobile-first, accessible, no script. Pure."""

from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import sha256
from html import escape

from shared.survey_links import Question

COMMENT_MAX_CHARS = 2_000


@dataclass(frozen=True)
class Scale:
    """One question: its legend, the scale's ends, what each end means."""

    question: Question
    legend: str
    low: int
    high: int
    low_means: str
    high_means: str


SCALES: dict[Question, Scale] = {
    "nps": Scale(
        "nps",
        "Anh/chị sẵn lòng giới thiệu văn phòng luật cho người thân, bạn bè ở mức nào?",
        0,
        10,
        "chắc chắn không giới thiệu",
        "chắc chắn sẽ giới thiệu",
    ),
    "csat": Scale(
        "csat",
        "Anh/chị hài lòng thế nào với lần tư vấn vừa qua?",
        1,
        5,
        "rất không hài lòng",
        "rất hài lòng",
    ),
    "ces": Scale(
        "ces",
        "Anh/chị đã phải bỏ ra bao nhiêu công sức để được giải quyết yêu cầu?",
        1,
        7,
        "rất ít công sức, rất dễ dàng",
        "rất nhiều công sức, rất vất vả",
    ),
}

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:#1b1b1b;background:#f4f1ea}
main{max-width:40rem;margin:0 auto;padding:1rem;background:#fff;min-height:100vh}
header{border-bottom:3px solid #7a5c12;margin-bottom:1rem}
.firm{margin:0;color:#5c4510;font-size:.95rem;font-weight:600}
h1{font-size:1.4rem;line-height:1.3;margin:.25rem 0 .75rem;color:#0b2e4f}
p{margin:.5rem 0}
fieldset{border:1px solid #8a8a8a;border-radius:.5rem;margin:0 0 1rem;padding:.75rem}
legend{float:left;width:100%;padding:0;font-weight:600;color:#0b2e4f}
.hint{clear:both;color:#3d3d3d;font-size:.95rem;margin:0;padding:.25rem 0 .75rem}
.scale{display:grid;gap:.5rem}
.cols-5{grid-template-columns:repeat(5,minmax(0,1fr))}
.cols-6{grid-template-columns:repeat(6,minmax(0,1fr))}
.cols-7{grid-template-columns:repeat(7,minmax(0,1fr))}
.choice{position:relative}
.choice input{position:absolute;opacity:0;width:100%;height:100%;margin:0;cursor:pointer}
.choice label{display:flex;align-items:center;justify-content:center;min-height:48px;
border:2px solid #0b2e4f;border-radius:.5rem;font-weight:600;color:#0b2e4f;background:#fff}
.choice input:checked+label{background:#0b2e4f;color:#fff}
.choice input:focus-visible+label{outline:3px solid #b3530b;outline-offset:2px}
.ends{display:flex;justify-content:space-between;gap:1rem;font-size:.9rem;color:#3d3d3d;
margin-top:.35rem}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);
white-space:nowrap}
label.block{display:block;font-weight:600;color:#0b2e4f;margin-bottom:.25rem}
textarea{width:100%;font:inherit;padding:.5rem;border:2px solid #5a5a5a;border-radius:.5rem}
textarea:focus-visible{outline:3px solid #b3530b;outline-offset:2px}
button{width:100%;min-height:48px;font:inherit;font-weight:700;color:#fff;background:#0b2e4f;
border:0;border-radius:.5rem;padding:.75rem;margin-top:1rem;cursor:pointer}
button:focus-visible{outline:3px solid #b3530b;outline-offset:3px}
.error{border:2px solid #a11d1d;background:#fdecec;color:#7a1010;padding:.75rem;
border-radius:.5rem}
.note{font-size:.9rem;color:#3d3d3d}
"""

# The page runs no script and loads nothing; its one style block is allowed by its hash.
STYLE_HASH = b64encode(sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def page(title: str, body: str) -> str:
    """A whole page around `body`, titled `title`."""
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{escape(title)} – Văn phòng luật</title><style>{STYLE}</style></head>"
        f'<body><main><header><p class="firm">Văn phòng luật · Chăm sóc khách hàng</p>'
        f"</header>{body}</main></body></html>"
    )


def survey_form(
    *,
    nonce: str,
    questions: tuple[Question, ...],
    deadline: str,
    chosen: Mapping[str, str] | None = None,
    comment: str = "",
    error: str | None = None,
) -> str:
    """The survey's form: one fieldset per question asked, a comment, the form's nonce."""
    chosen = chosen or {}
    alert = f'<div class="error" role="alert" id="loi">{escape(error)}</div>' if error else ""
    fieldsets = "".join(_fieldset(SCALES[q], chosen.get(q)) for q in questions)
    body = (
        "<h1>Đánh giá chất lượng tư vấn</h1>"
        "<p>Cảm ơn anh/chị đã tin tưởng văn phòng luật. Mời anh/chị dành một phút cho biết "
        "cảm nhận về lần tư vấn vừa qua. Anh/chị có thể trả lời một hoặc nhiều câu hỏi.</p>"
        f'<p class="note">Khảo sát mở đến hết ngày {escape(deadline)}.</p>{alert}'
        '<form method="post">'  # posts back to its own address, the token's
        f'<input type="hidden" name="nonce" value="{escape(nonce)}">{fieldsets}'
        '<label class="block" for="gop-y">Góp ý thêm (không bắt buộc)</label>'
        f'<textarea id="gop-y" name="comment" rows="4" maxlength="{COMMENT_MAX_CHARS}">'
        f"{escape(comment)}</textarea>"
        '<button type="submit">Gửi đánh giá</button></form>'
        '<p class="note">Câu trả lời chỉ dùng để văn phòng nâng cao chất lượng phục vụ.</p>'
    )
    return page("Đánh giá chất lượng tư vấn", body)


def _fieldset(scale: Scale, chosen: str | None) -> str:
    """One question as a group of radio buttons, its ends explained."""
    q = scale.question
    choices = "".join(_choice(scale, value, chosen) for value in range(scale.low, scale.high + 1))
    count = scale.high - scale.low + 1
    columns = count if count <= 7 else 6  # 0–10 on two rows: targets stay ≥ 48 px wide
    return (
        f'<fieldset aria-describedby="{q}-hint"><legend>{escape(scale.legend)}</legend>'
        f'<p class="hint" id="{q}-hint">{scale.low} = {escape(scale.low_means)}; '
        f"{scale.high} = {escape(scale.high_means)}.</p>"
        f'<div class="scale cols-{columns}">{choices}</div></fieldset>'
    )


def _choice(scale: Scale, value: int, chosen: str | None) -> str:
    """One radio button of a scale; its ends say what they mean to screen readers too."""
    q, checked = scale.question, " checked" if chosen == str(value) else ""
    meaning = {scale.low: scale.low_means, scale.high: scale.high_means}.get(value)
    spoken = f'<span class="sr-only"> – {escape(meaning)}</span>' if meaning else ""
    return (
        f'<div class="choice"><input type="radio" id="{q}-{value}" name="{q}" '
        f'value="{value}"{checked}><label for="{q}-{value}">{value}{spoken}</label></div>'
    )


def message(title: str, *lines: str) -> str:
    """A page that only tells something (thanks, expired, not found)."""
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in lines)
    return page(title, f"<h1>{escape(title)}</h1>{paragraphs}")


THANKS = message(
    "Cảm ơn anh/chị đã đánh giá",
    "Văn phòng luật đã nhận được đánh giá của anh/chị.",
    "Ý kiến của anh/chị giúp chúng tôi phục vụ tốt hơn. Nếu cần hỗ trợ thêm, anh/chị cứ "
    "nhắn tin cho văn phòng trên kênh đã liên hệ.",
)
ALREADY_ANSWERED = message(
    "Anh/chị đã gửi đánh giá này rồi",
    "Văn phòng luật đã ghi nhận đánh giá anh/chị gửi lần trước; mỗi khảo sát chỉ nhận "
    "một lần trả lời.",
    "Cảm ơn anh/chị đã dành thời gian cho văn phòng.",
)
EXPIRED = message(
    "Khảo sát đã hết hạn",
    "Rất tiếc, khảo sát này đã đóng nên văn phòng không thể nhận thêm câu trả lời.",
    "Nếu anh/chị muốn góp ý, xin cứ nhắn tin cho văn phòng trên kênh đã liên hệ; "
    "chúng tôi luôn lắng nghe.",
)
NOT_FOUND = message(
    "Không tìm thấy khảo sát",
    "Liên kết này không đúng hoặc đã bị thay đổi. Anh/chị vui lòng mở lại liên kết "
    "trong tin nhắn văn phòng luật đã gửi.",
)
STALE_FORM = message(
    "Chưa gửi được đánh giá",
    "Phiếu đánh giá này không còn hợp lệ. Anh/chị vui lòng mở lại liên kết trong tin nhắn "
    "văn phòng luật đã gửi và gửi lại.",
)
