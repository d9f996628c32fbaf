"""Intake's rules: normalisation, identity, case attachment, classification, segments.

Pure functions and small value classes: no I/O, no clock, no broker or database.
"""

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any

import phonenumbers

from shared.events import (
    AgeBand,
    Channel,
    ContactKind,
    ContactReceived,
    IncomeTier,
    LegalAidCategory,
    LegalField,
    Segment,
)

# ---------------------------------------------------------------- normalisation


class Unreachable(ValueError):
    """The contact gives no way to reach the customer."""


# Vietnam moved its 11-digit mobile numbers to 10 digits in 2018; customers still write
# the old ones. Old national prefix (after the trunk 0) -> new one.
OLD_MOBILE_PREFIXES: Mapping[str, str] = {
    "162": "32", "163": "33", "164": "34", "165": "35", "166": "36", "167": "37",
    "168": "38", "169": "39", "120": "70", "121": "79", "122": "77", "126": "76",
    "128": "78", "123": "83", "124": "84", "125": "85", "127": "81", "129": "82",
    "186": "56", "188": "58", "199": "59",
}  # fmt: skip

_EMAIL = re.compile(r"^[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}$")
_SPACES = re.compile(r"\s+")


def nfc(text: str | None) -> str | None:
    """Text in Unicode NFC with outer whitespace trimmed; None when empty."""
    if text is None:
        return None
    cleaned = unicodedata.normalize("NFC", text).strip()
    return cleaned or None


def clean_name(name: str | None) -> str | None:
    """A name trimmed, inner whitespace collapsed, in NFC."""
    cleaned = nfc(name)
    return _SPACES.sub(" ", cleaned) if cleaned else None


def normalise_email(email: str | None) -> str | None:
    """The email lower-cased and trimmed, or None when it is not a plausible address."""
    cleaned = nfc(email)
    if not cleaned:
        return None
    lowered = cleaned.lower()
    return lowered if _EMAIL.match(lowered) else None


def _modernise_vn_mobile(national: str) -> str:
    for old, new in OLD_MOBILE_PREFIXES.items():
        if national.startswith(old) and len(national) == 10:
            return new + national[3:]
    return national


@lru_cache(maxsize=4096)
def normalise_phone(raw: str | None, *, region: str = "VN") -> str | None:
    """The phone number in E.164 (old 11-digit VN mobiles mapped), or None if invalid
    (remembered: a contact's number is read when it arrives and again when it is filed)."""
    cleaned = nfc(raw)
    if not cleaned:
        return None
    try:
        number = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException:
        return None
    if number.country_code == 84:
        modern = _modernise_vn_mobile(str(number.national_number))
        number = phonenumbers.PhoneNumber(country_code=84, national_number=int(modern))
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class Contact:
    """A contact.received after validation and normalisation."""

    contact_id: str
    channel: Channel
    kind: ContactKind
    sender_id: str | None
    name: str | None
    phone: str | None
    email: str | None
    address: str | None
    birth_date: date | None
    income_tier: IncomeTier | None
    legal_aid: tuple[LegalAidCategory, ...]
    message: str
    documents: tuple[str, ...]
    legal_field: LegalField | None
    invalid: tuple[str, ...] = ()
    """Items the customer gave that could not be used (e.g. "phone" not a number)."""

    @property
    def identifier_keys(self) -> list[str]:
        """Keys that identify the person: phone, email and the channel-scoped sender id."""
        keys = []
        if self.phone:
            keys.append(f"phone:{self.phone}")
        if self.email:
            keys.append(f"email:{self.email}")
        if self.sender_id:
            keys.append(f"sender:{self.channel.value}:{self.sender_id}")
        return keys


def normalise_contact(event: ContactReceived) -> Contact:
    """Validate and normalise a contact; raise Unreachable when nobody can be reached."""
    person = event.customer
    phone = normalise_phone(person.phone)
    email = normalise_email(person.email)
    sender_id = nfc(event.sender_id)
    invalid = tuple(
        item
        for item, given, kept in (("phone", person.phone, phone), ("email", person.email, email))
        if nfc(given) and not kept
    )
    if not (phone or email or sender_id):
        detail = f" (unusable: {', '.join(invalid)})" if invalid else ""
        raise Unreachable(f"no way to reach the customer: no phone, email or sender_id{detail}")
    return Contact(
        contact_id=str(event.event_id),
        channel=event.channel,
        kind=event.kind,
        sender_id=sender_id,
        name=clean_name(person.name),
        phone=phone,
        email=email,
        address=nfc(person.address),
        birth_date=person.birth_date,
        income_tier=person.income_tier,
        legal_aid=tuple(dict.fromkeys(person.legal_aid)),
        message=nfc(event.message) or "",
        documents=tuple(d for d in dict.fromkeys(nfc(d) for d in event.documents) if d),
        legal_field=event.legal_field,
        invalid=invalid,
    )


# ---------------------------------------------------------------- the customer


@dataclass(frozen=True)
class Profile:
    """What intake knows about a customer, gathered from all their contacts."""

    name: str | None = None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    address: str | None = None
    birth_date: date | None = None
    income_tier: IncomeTier | None = None
    legal_aid: tuple[LegalAidCategory, ...] = ()


def missing_items(profile: Profile, *, documents: Sequence[str]) -> list[str]:
    """What the care team should still ask the customer for."""
    wanted = {
        "name": profile.name,
        "phone": profile.phones,
        "email": profile.emails,
        "address": profile.address,
        "birth_date": profile.birth_date,
        "documents": documents,
    }
    return [item for item, known in wanted.items() if not known]


@dataclass(frozen=True)
class KnownCustomer:
    """A customer record as far as choosing a merge survivor is concerned."""

    customer_id: str
    first_seen_at: datetime


def pick_survivor(customers: Iterable[KnownCustomer]) -> str:
    """The customer the others merge into: the earliest known, ties by id."""
    return min(customers, key=lambda c: (c.first_seen_at, c.customer_id)).customer_id


def age_on(birth_date: date, day: date) -> int:
    """Completed years of age on `day`."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - int(before_birthday)


def age_band(age: int) -> AgeBand:
    """The age band of SPEC §2: <15, 15-22, 22-50, >50."""
    if age < 15:
        return AgeBand.UNDER_15
    if age < 22:
        return AgeBand.FROM_15_TO_22
    if age <= 50:
        return AgeBand.FROM_22_TO_50
    return AgeBand.OVER_50


def legal_aid_categories(
    declared: Iterable[LegalAidCategory], *, age: int | None, elderly_age: int = 60
) -> list[LegalAidCategory]:
    """Legal-aid categories that apply: the declared ones, plus elderly from the age."""
    categories = list(dict.fromkeys(declared))
    if age is not None and age >= elderly_age and LegalAidCategory.ELDERLY not in categories:
        categories.append(LegalAidCategory.ELDERLY)
    return categories


@dataclass(frozen=True)
class SegmentPolicy:
    """Thresholds of the customer segments (SPEC §2)."""

    loyal_contracts: int = 3
    lapsed_after: timedelta = timedelta(days=365)


def segment_for(
    *,
    contracts: int,
    other_cases: int,
    last_activity: datetime | None,
    at: datetime,
    policy: SegmentPolicy,
) -> Segment:
    """The customer's segment at `at`.

    `other_cases` counts the customer's cases besides the current one; `last_activity` is
    the customer's previous activity (a returning customer silent for too long is lapsed).
    """
    if last_activity is not None and at - last_activity >= policy.lapsed_after:
        return Segment.LAPSED
    if contracts >= policy.loyal_contracts:
        return Segment.LOYAL
    if contracts >= 1:
        return Segment.CUSTOMER
    if other_cases == 0:
        return Segment.NEW
    return Segment.POTENTIAL


@dataclass(frozen=True)
class IntakePolicy:
    """The configurable thresholds of intake's rules."""

    confidence_threshold: float = 0.35
    attach_window: timedelta = timedelta(days=30)
    elderly_age: int = 60
    segments: SegmentPolicy = field(default_factory=SegmentPolicy)


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class OpenCase:
    """A case of the customer that is not resolved yet."""

    case_id: str
    legal_field: LegalField
    opened_at: datetime
    confidence: float
    needs_triage: bool


def case_to_attach(
    open_cases: Iterable[OpenCase],
    *,
    legal_field: LegalField,
    kind: ContactKind,
    field_is_known: bool,
    at: datetime,
    window: timedelta,
    named_case_id: str | None = None,
) -> OpenCase | None:
    """The open case this contact belongs to, or None when it opens a new case.

    A contact that names one of the customer's open cases (an adapter or agent answering
    on a case) joins it. Otherwise: same legal field and opened within `window` of the
    contact (either side, as contacts may arrive out of order). A follow-up whose text
    names no field joins the customer's most recent open case in the window.
    """
    cases = list(open_cases)
    named = next((c for c in cases if c.case_id == named_case_id), None)
    if named is not None:
        return named
    recent = sorted(
        (c for c in cases if abs(at - c.opened_at) <= window),
        key=lambda c: (c.opened_at, c.case_id),
        reverse=True,
    )
    for case in recent:
        if case.legal_field == legal_field:
            return case
    if kind is ContactKind.FOLLOW_UP and not field_is_known and recent:
        return recent[0]
    return None


# ---------------------------------------------------------------- classification


_AMOUNT = re.compile(r"^\d+(?:k|tr|trieu|ty|ti|d|dong|vnd|usd)$")
_MONEY_UNITS = frozenset({"k", "tr", "trieu", "ty", "ti", "dong", "vnd", "usd", "nghin", "ngan"})


def accented_words(text: str) -> str:
    """Lower-case NFC words with their diacritics, one space apart."""
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFC", text).lower()))


def phrase_key(phrase: str) -> str:
    """A lexicon phrase as matched: folded, unless written with diacritics on purpose.

    A phrase with diacritics ("đất", "tội", "nợ") matches only text that has them; it
    tells apart words that fold alike (đất/đặt, tội/tôi, nợ/nó).
    """
    words = accented_words(phrase)
    return words if not words.isascii() else fold(phrase)


def fold(text: str) -> str:
    """Lower-case, "đ" -> "d", diacritics removed, punctuation to spaces, one space apart."""
    lowered = unicodedata.normalize("NFC", text).lower().replace("đ", "d")
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFD", lowered) if not unicodedata.combining(ch)
    )
    return " ".join(re.findall(r"[a-z0-9]+", stripped))


@dataclass(frozen=True)
class Phrases:
    """Phrases longest first, as `_matches` tries them: (phrase, its needle, whether it is
    plain ASCII); and by (ASCII, first word), their places in that order."""

    ordered: tuple[tuple[str, str, bool], ...]
    starting: Mapping[tuple[bool, str], tuple[int, ...]]


@dataclass(frozen=True)
class PhraseOrder:
    """A lexicon's phrases, longest first, as `_matches` tries them."""

    vocabulary: Phrases
    dispute: Phrases
    complaint: Phrases


@dataclass(frozen=True)
class Lexicon:
    """The classifier's vocabulary (lexicon.yaml): weighted phrases, already folded."""

    abbreviations: Mapping[str, str]
    fields: Mapping[LegalField, Mapping[str, float]]
    neutral: frozenset[str]
    dispute: Mapping[str, float]
    complaint_firm: frozenset[str]
    complaint_negative: frozenset[str]
    complaint_strong: frozenset[str]
    spelled: Mapping[str, str] = field(default_factory=dict)
    """A field phrase as matched → as written in the lexicon (for explanations)."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "Lexicon":
        """Build a lexicon from the parsed YAML document."""
        complaint = data.get("complaint", {})
        return cls(
            abbreviations={fold(k): fold(v) for k, v in data.get("abbreviations", {}).items()},
            fields={
                LegalField(name): {phrase_key(p): float(w) for p, w in phrases.items()}
                for name, phrases in data["fields"].items()
            },
            neutral=frozenset(fold(p) for p in data.get("neutral", [])),
            dispute={phrase_key(p): float(w) for p, w in data.get("dispute", {}).items()},
            complaint_firm=frozenset(fold(p) for p in complaint.get("firm", [])),
            complaint_negative=frozenset(fold(p) for p in complaint.get("negative", [])),
            complaint_strong=frozenset(fold(p) for p in complaint.get("strong", [])),
            spelled={phrase_key(p): p for phrases in data["fields"].values() for p in phrases},
        )

    @cached_property
    def vocabulary(self) -> dict[str, tuple[LegalField | None, float]]:
        """Every field phrase with its field and weight; neutral phrases with none."""
        weighted = {p: (f, w) for f, phrases in self.fields.items() for p, w in phrases.items()}
        return {**dict.fromkeys(self.neutral, (None, 0.0)), **weighted}

    @cached_property
    def order(self) -> "PhraseOrder":
        """The phrase lists in the order they are matched, sorted once."""
        complaint = self.complaint_firm | self.complaint_negative | self.complaint_strong
        return PhraseOrder(
            vocabulary=longest_first(self.vocabulary),
            dispute=longest_first(self.dispute),
            complaint=longest_first(complaint),
        )

    def expand(self, text: str) -> str:
        """Folded text with teen-code and abbreviations spelled out, amounts as "tien"."""
        words: list[str] = []
        for word in fold(text).split():
            if _AMOUNT.match(word) or (word in _MONEY_UNITS and words and words[-1].isdigit()):
                if words and words[-1].isdigit():
                    words.pop()
                words.append("tien")
            else:
                words.extend(self.abbreviations.get(word, word).split())
        return " ".join(words)


def longest_first(phrases: Iterable[str]) -> Phrases:
    """The phrases in the order `_matches` tries them, longest first, indexed by first word
    (computed once per lexicon)."""
    longest = sorted(phrases, key=lambda p: (-len(p.split()), -len(p), p))
    ordered = tuple((p, f" {p} ", p.isascii()) for p in longest)
    starting: dict[tuple[bool, str], list[int]] = defaultdict(list)
    for place, (phrase, _, ascii_phrase) in enumerate(ordered):
        starting[(ascii_phrase, phrase.split(" ")[0])].append(place)
    return Phrases(ordered, {k: tuple(v) for k, v in starting.items()})


def _matches(folded: str, accented: str, phrases: Phrases) -> list[str]:
    """Phrases found in the text, longest first; a match consumes its words.

    Phrases without diacritics are looked for in the folded text, the others in the text
    as written (both one space apart). Only the phrases whose first word is a word of the
    text can be found: those are tried, in `phrases`' order.
    """
    texts = {True: f" {folded} ", False: f" {accented} "}
    starting = phrases.starting
    places = sorted(
        {
            place
            for ascii_phrase, text in ((True, folded), (False, accented))
            for word in {"", *text.split(" ")}
            for place in starting.get((ascii_phrase, word), ())
        }
    )
    found = []
    for place in places:
        phrase, needle, ascii_phrase = phrases.ordered[place]
        if needle in texts[ascii_phrase]:
            found.append(phrase)
            texts[ascii_phrase] = texts[ascii_phrase].replace(needle, " | ")
    return found


@dataclass(frozen=True)
class TextReading:
    """What the text of a message says: field scores, dispute, complaint."""

    scores: Mapping[LegalField, float]
    legal_field: LegalField
    confidence: float
    is_dispute: bool
    complains_about_firm: bool
    matched: Mapping[LegalField, tuple[str, ...]] = field(default_factory=dict)
    """The field phrases found, by field, as written in the lexicon."""


def confidence_of(top: float, runner_up: float, *, scale: float = 2.5) -> float:
    """Confidence in [0, 1]: rises with the top score, falls as the runner-up closes in."""
    if top <= 0:
        return 0.0
    return round(top / (top + runner_up) * (1 - math.exp(-top / scale)), 3)


def read_text(text: str, lexicon: Lexicon, *, dispute_score: float = 3.0) -> TextReading:
    """Score a message against every legal field and look for disputes and complaints."""
    words, accented = lexicon.expand(text), accented_words(text)
    vocabulary = lexicon.vocabulary
    scores: dict[LegalField, float] = dict.fromkeys(lexicon.fields, 0.0)
    matched: dict[LegalField, tuple[str, ...]] = {}
    for phrase in _matches(words, accented, lexicon.order.vocabulary):
        legal_field, weight = vocabulary[phrase]
        if legal_field is not None:
            scores[legal_field] += weight
            spelled = lexicon.spelled.get(phrase, phrase)
            matched[legal_field] = (*matched.get(legal_field, ()), spelled)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0].value))
    (best, top), runner_up = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0.0)
    dispute = sum(lexicon.dispute[p] for p in _matches(words, accented, lexicon.order.dispute))
    found = set(_matches(words, accented, lexicon.order.complaint))
    complains = bool(found & lexicon.complaint_strong) or bool(
        found & lexicon.complaint_firm and found & lexicon.complaint_negative
    )
    return TextReading(
        scores=scores,
        legal_field=best if top > 0 else LegalField.OTHER,
        confidence=confidence_of(top, runner_up),
        is_dispute=dispute >= dispute_score,
        complains_about_firm=complains,
        matched=matched,
    )


@dataclass(frozen=True)
class Prediction:
    """The trained model's reading of a message: its best field and the probability of it."""

    legal_field: LegalField
    probability: float
    is_dispute: bool = False
    """The model reads a dispute with another party (when it has a dispute head)."""


@dataclass(frozen=True)
class Classification:
    """What intake decided about a contact (SPEC §2)."""

    legal_field: LegalField
    confidence: float
    needs_triage: bool
    is_dispute: bool
    is_complaint: bool
    field_is_known: bool = field(default=True)
    """False when the field comes from neither a form nor a confident reading."""
    explanation: str | None = None


def explain(reading: TextReading, legal_field: LegalField, *, source: str) -> str:
    """For staff: the lexicon phrases of the field found in the message, and where the
    field came from."""
    phrases = list(dict.fromkeys(reading.matched.get(legal_field, ())))[:6]
    found = f"matched: {', '.join(phrases)}" if phrases else "no lexicon phrase of this field"
    return f"{found} ({source})"


def classify(
    *,
    message: str,
    kind: ContactKind,
    form_field: LegalField | None,
    lexicon: Lexicon,
    threshold: float,
    prediction: Prediction | None = None,
) -> Classification:
    """Legal field (a form's choice wins, then the trained model's `prediction`, else the
    lexicon's scores), confidence, triage; dispute when the lexicon or the model reads one;
    complaint from the kind or the lexicon."""
    reading = read_text(message, lexicon)
    is_complaint = kind is ContactKind.COMPLAINT or reading.complains_about_firm
    if prediction is not None and prediction.is_dispute:
        reading = replace(reading, is_dispute=True)
    if form_field is not None:
        return Classification(
            form_field, 1.0, False, reading.is_dispute, is_complaint,
            explanation=explain(reading, form_field, source="chosen on a form"),
        )  # fmt: skip
    if prediction is not None:
        reading = replace(
            reading, legal_field=prediction.legal_field, confidence=round(prediction.probability, 3)
        )
    source = "model" if prediction is not None else "lexicon"
    if reading.legal_field is LegalField.OTHER or reading.confidence < threshold:
        return Classification(
            LegalField.OTHER,
            reading.confidence,
            needs_triage=True,
            is_dispute=reading.is_dispute,
            is_complaint=is_complaint,
            field_is_known=False,
            explanation=(
                f"{source}: {reading.legal_field.value} at {reading.confidence:.2f}, "
                f"under the threshold {threshold:.2f}: triage"
            ),
        )
    how = f"{source} {reading.confidence:.2f}"
    return Classification(
        reading.legal_field, reading.confidence, False, reading.is_dispute, is_complaint,
        explanation=explain(reading, reading.legal_field, source=how),
    )  # fmt: skip


# ---------------------------------------------------------------- the decision


@dataclass(frozen=True)
class CaseDecision:
    """Everything intake decided about one contact, as case.classified reports it."""

    case_id: str
    new_case: bool
    legal_field: LegalField
    confidence: float
    needs_triage: bool
    is_dispute: bool
    is_complaint: bool
    legal_aid_categories: list[LegalAidCategory]
    segment: Segment
    age_band: AgeBand | None
    birthday: str | None
    income_tier: IncomeTier | None
    missing_items: list[str]
    explanation: str | None = None

    @property
    def legal_aid(self) -> bool:
        """Eligible for free advice via the state Legal Aid Center."""
        return bool(self.legal_aid_categories)


@dataclass(frozen=True)
class CustomerFacts:
    """What a decision reports about the customer from their profile, on a given day."""

    legal_aid_categories: list[LegalAidCategory]
    age_band: AgeBand | None
    birthday: str | None


def customer_facts(profile: Profile, *, today: date, policy: IntakePolicy) -> CustomerFacts:
    """Legal-aid categories (age included), age band and MM-DD birthday of the customer."""
    birth = profile.birth_date
    age = age_on(birth, today) if birth else None
    return CustomerFacts(
        legal_aid_categories=legal_aid_categories(
            profile.legal_aid, age=age, elderly_age=policy.elderly_age
        ),
        age_band=age_band(age) if age is not None else None,
        birthday=f"{birth.month:02d}-{birth.day:02d}" if birth else None,
    )


def decide_case(
    *,
    new_case_id: str,
    contact: Contact,
    reading: Classification,
    attached: OpenCase | None,
    attached_is_dispute: bool,
    profile: Profile,
    case_documents: Sequence[str],
    contracts: int,
    other_cases: int,
    last_activity: datetime | None,
    at: datetime,
    today: date,
    policy: IntakePolicy,
) -> CaseDecision:
    """Combine the reading, the chosen case and the customer's history into one decision."""
    takes_case_field = attached is not None and attached.legal_field != reading.legal_field
    legal_field, confidence, needs_triage = (
        (attached.legal_field, attached.confidence, attached.needs_triage)
        if attached is not None and takes_case_field
        else (reading.legal_field, reading.confidence, reading.needs_triage)
    )
    explanation = "the case's field, kept" if takes_case_field else reading.explanation
    documents = list(dict.fromkeys([*case_documents, *contact.documents]))
    facts = customer_facts(profile, today=today, policy=policy)
    return CaseDecision(
        case_id=attached.case_id if attached else new_case_id,
        new_case=attached is None,
        legal_field=legal_field,
        confidence=confidence,
        needs_triage=needs_triage,
        is_dispute=reading.is_dispute or attached_is_dispute,
        is_complaint=reading.is_complaint,
        legal_aid_categories=facts.legal_aid_categories,
        segment=segment_for(
            contracts=contracts,
            other_cases=other_cases,
            last_activity=last_activity,
            at=at,
            policy=policy.segments,
        ),
        age_band=facts.age_band,
        birthday=facts.birthday,
        income_tier=contact.income_tier or profile.income_tier,
        missing_items=missing_items(profile, documents=documents),
        explanation=explanation,
    )


# ---------------------------------------------------------------- corrections

_EMAILS = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONES = re.compile(r"(?<!\w)\+?\d[\d .-]{6,}\d(?!\w)")
_LONG_NUMBERS = re.compile(r"\b\d{9,}\b")


def without_identity(text: str, *, names: Iterable[str] = (), limit: int = 2_000) -> str:
    """The message with e-mails, phone-like and id-like numbers and the customer's names
    replaced by placeholders, cut to `limit` characters: a labelled example keeps no
    identity."""
    out = _EMAILS.sub("<email>", text)
    out = _PHONES.sub("<phone>", out)
    out = _LONG_NUMBERS.sub("<number>", out)
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        # A pattern per customer is compiled each time (re's cache holds few): only for
        # a name the text may hold.
        if _may_hold(out, name):
            whole = rf"(?<!\w){re.escape(name)}(?!\w)"
            out = re.sub(whole, "<name>", out, flags=re.IGNORECASE)
        for word in (w for w in name.split() if len(w) >= 2 and w[0].isupper()):
            # As written (capitalised): "An" is a name, "an toàn" is not.
            if word in out:
                out = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", "<name>", out)
    return out[:limit]


def _may_hold(text: str, name: str) -> bool:
    """False only when `text` cannot hold `name` in any case: a name whose letters fold one
    to one (Vietnamese ones do) is looked for folded; any other is always looked for."""
    folded = name.casefold()
    if len(folded) != len(name) or folded != name.lower():
        return True
    return folded in text.casefold()


def corrected_decision(
    *,
    case_id: str,
    legal_field: LegalField,
    is_dispute: bool,
    is_complaint: bool,
    profile: Profile,
    documents: Sequence[str],
    segment: Segment,
    today: date,
    policy: IntakePolicy,
) -> CaseDecision:
    """The case's decision once staff gave it `legal_field`: sure, nothing to triage."""
    facts = customer_facts(profile, today=today, policy=policy)
    return CaseDecision(
        case_id=case_id,
        new_case=False,
        legal_field=legal_field,
        confidence=1.0,
        needs_triage=False,
        is_dispute=is_dispute,
        is_complaint=is_complaint,
        legal_aid_categories=facts.legal_aid_categories,
        segment=segment,
        age_band=facts.age_band,
        birthday=facts.birthday,
        income_tier=profile.income_tier,
        missing_items=missing_items(profile, documents=documents),
    )
