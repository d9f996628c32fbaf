"""Intake's pure rules: normalisation, identity, attach rule, classifier, segments."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.intake import domain
from services.intake.app import load_lexicon
from shared.events import (
    AgeBand,
    Channel,
    ContactKind,
    ContactReceived,
    LegalAidCategory,
    LegalField,
    Segment,
)

AT = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)
LEXICON = load_lexicon()
POLICY = domain.IntakePolicy()


def received(**payload: object) -> ContactReceived:
    base: dict = {
        "event_id": str(uuid.uuid4()),
        "event_type": "contact.received",
        "occurred_at": AT.isoformat(),
        "producer": "zalo-adapter",
        "channel": "zalo",
        "sender_id": "zalo:1",
        "message": "Tôi muốn hỏi về ly hôn",
    }
    return ContactReceived.model_validate({**base, **payload})


def classify(text: str, *, kind: ContactKind = ContactKind.INQUIRY, form=None):
    return domain.classify(
        message=text, kind=kind, form_field=form, lexicon=LEXICON, threshold=0.35
    )


# ------------------------------------------------------------------ normalisation


@pytest.mark.parametrize(
    "spelling",
    [
        "0912 345 678",
        "+84 912.345.678",
        "84912345678",
        "0084912345678",
        "(+84) 912-345-678",
        "0912.345.678",
        " 0912345678 ",
    ],
)
def test_every_common_spelling_of_a_vietnamese_mobile_is_one_e164_number(spelling):
    assert domain.normalise_phone(spelling) == "+84912345678"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("0168 123 4567", "+84381234567"),
        ("01201234567", "+84701234567"),
        ("+84 127 123 4567", "+84811234567"),
        ("0199 123 4567", "+84591234567"),
    ],
)
def test_old_eleven_digit_mobiles_map_to_their_new_numbers(old, new):
    assert domain.normalise_phone(old) == new


def test_landlines_and_foreign_numbers_are_kept_and_garbage_is_not():
    assert domain.normalise_phone("024 3826 1234") == "+842438261234"
    assert domain.normalise_phone("+1 415 555 2671") == "+14155552671"
    assert domain.normalise_phone("12345") is None
    assert domain.normalise_phone("gọi em nhé") is None


def test_emails_are_lower_cased_and_checked():
    assert domain.normalise_email("  An.Nguyen@Example.VN ") == "an.nguyen@example.vn"
    assert domain.normalise_email("an.nguyen@example") is None
    assert domain.normalise_email("không có") is None


def test_names_are_trimmed_and_text_is_nfc():
    decomposed = "Nguye\u0302\u0303n  Va\u0306n   An "
    assert domain.clean_name(decomposed) == "Nguyễn Văn An"
    contact = domain.normalise_contact(received(message="ly ho\u0302n"))
    assert contact.message == "ly hôn"


def test_a_contact_nobody_can_be_reached_at_is_unreachable_with_the_reason():
    with pytest.raises(domain.Unreachable, match="no phone, email or sender_id"):
        domain.normalise_contact(received(sender_id=None, customer={"name": "An"}))
    with pytest.raises(domain.Unreachable, match="unusable: phone"):
        domain.normalise_contact(received(sender_id=None, customer={"phone": "123"}))


def test_identifier_keys_scope_sender_ids_by_channel():
    contact = domain.normalise_contact(
        received(customer={"phone": "0912345678", "email": "A@B.VN"}, sender_id="42")
    )
    assert contact.identifier_keys == ["phone:+84912345678", "email:a@b.vn", "sender:zalo:42"]


def test_an_unusable_phone_beside_a_sender_id_is_accepted_and_reported():
    contact = domain.normalise_contact(received(customer={"phone": "12"}))
    assert contact.phone is None
    assert contact.invalid == ("phone",)


# ------------------------------------------------------------------ identity


def test_the_earliest_known_customer_survives_a_merge():
    older = domain.KnownCustomer("cus-b", AT - timedelta(days=3))
    newer = domain.KnownCustomer("cus-a", AT)
    assert domain.pick_survivor([newer, older]) == "cus-b"
    assert domain.pick_survivor([domain.KnownCustomer("cus-z", AT), newer]) == "cus-a"


def test_missing_items_list_what_the_care_team_must_ask_for():
    profile = domain.Profile(name="An", phones=("+84912345678",))
    assert domain.missing_items(profile, documents=[]) == [
        "email",
        "address",
        "birth_date",
        "documents",
    ]
    full = domain.Profile(
        name="An",
        phones=("+84912345678",),
        emails=("a@b.vn",),
        address="Hà Nội",
        birth_date=date(1990, 1, 1),
    )
    assert domain.missing_items(full, documents=["so-do.pdf"]) == []


# ------------------------------------------------------------------ case attach rule


def open_case(field: LegalField, days_ago: float, case_id: str = "case-1") -> domain.OpenCase:
    return domain.OpenCase(case_id, field, AT - timedelta(days=days_ago), 0.8, False)


def attach(cases, field=LegalField.FAMILY, kind=ContactKind.INQUIRY, known=True):
    return domain.case_to_attach(
        cases,
        legal_field=field,
        kind=kind,
        field_is_known=known,
        at=AT,
        window=timedelta(days=30),
    )


def test_a_contact_joins_the_open_case_of_the_same_field_opened_within_30_days():
    case = open_case(LegalField.FAMILY, 29)
    assert attach([case]) == case


def test_a_contact_opens_a_new_case_after_30_days_or_in_another_field():
    assert attach([open_case(LegalField.FAMILY, 31)]) is None
    assert attach([open_case(LegalField.LAND, 2)]) is None


def test_the_most_recent_matching_case_is_chosen():
    old, recent = open_case(LegalField.FAMILY, 20, "case-old"), open_case(LegalField.FAMILY, 1)
    assert attach([old, recent]) == recent


def test_a_contact_naming_an_open_case_of_the_customer_joins_it():
    land = open_case(LegalField.LAND, 90, "case-land")
    named = domain.case_to_attach(
        [land],
        legal_field=LegalField.FAMILY,
        kind=ContactKind.INQUIRY,
        field_is_known=True,
        at=AT,
        window=timedelta(days=30),
        named_case_id="case-land",
    )
    assert named == land


def test_a_contact_arriving_after_a_later_one_still_joins_its_case():
    assert attach([open_case(LegalField.FAMILY, -0.5)]) is not None


def test_a_follow_up_without_a_field_joins_the_latest_open_case():
    land = open_case(LegalField.LAND, 3)
    assert attach([land], LegalField.OTHER, ContactKind.FOLLOW_UP, known=False) == land
    assert attach([land], LegalField.OTHER, ContactKind.INQUIRY, known=False) is None


# ------------------------------------------------------------------ classifier


@pytest.mark.parametrize(
    "text",
    ["ly hon", "LY HÔN", "Ly Hôn", "ly hôn đơn phương", "vk ko chịu ly di"],
)
def test_the_same_words_classify_alike_with_or_without_diacritics_and_case(text):
    assert classify(text).legal_field is LegalField.FAMILY


def test_teen_code_is_expanded_before_reading():
    assert LEXICON.expand("ko đc, sđt ck e") == "khong duoc so dien thoai chong em"
    assert classify("cty no luong e 2 thang, bhxh cung ko dong").legal_field is LegalField.LABOR


def test_amounts_of_money_read_as_money():
    assert LEXICON.expand("vay 50tr, 2 ty, 300 trieu") == "vay tien tien tien"


def test_the_main_field_wins_when_several_are_mentioned():
    text = "Ly hôn thì chia sổ đỏ thế nào, vợ chồng tranh chấp quyền nuôi con"
    assert classify(text).legal_field is LegalField.FAMILY


def test_a_longer_phrase_consumes_its_words():
    assert classify("tai nạn lao động ở công trường").legal_field is LegalField.LABOR
    assert classify("chất lượng dịch vụ").legal_field is LegalField.OTHER


def test_a_form_choice_wins_over_the_text():
    got = classify("ly hôn", form=LegalField.LAND)
    assert (got.legal_field, got.confidence, got.needs_triage) == (LegalField.LAND, 1.0, False)


def test_below_the_threshold_the_case_is_other_and_needs_triage():
    got = classify("xin chào, cho em hỏi chút")
    assert got.legal_field is LegalField.OTHER
    assert got.needs_triage
    assert not got.field_is_known


def test_confidence_grows_with_evidence_and_shrinks_with_rivals():
    assert domain.confidence_of(0, 0) == 0
    assert domain.confidence_of(6, 0) > domain.confidence_of(3, 0)
    assert domain.confidence_of(6, 0) > domain.confidence_of(6, 3)
    assert 0 <= domain.confidence_of(100, 0) <= 1


def test_disputes_are_recognised_and_conditions_are_not_lawsuits():
    assert classify("hàng xóm lấn chiếm đất, tôi muốn khởi kiện").is_dispute
    assert classify("tranh chap quyen nuoi con").is_dispute
    assert not classify("điều kiện để ly hôn thuận tình là gì").is_dispute


def test_a_complaint_is_the_kind_or_text_about_the_firms_own_service():
    assert classify("hỏi phí", kind=ContactKind.COMPLAINT).is_complaint
    assert classify("gọi hotline bên anh cả ngày không ai nghe, quá tệ").is_complaint
    administrative = classify("khiếu nại quyết định cưỡng chế của ủy ban huyện")
    assert not administrative.is_complaint
    assert administrative.legal_field is LegalField.ADMINISTRATIVE


# ------------------------------------------------------------------ ages, legal aid


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (0, AgeBand.UNDER_15),
        (14, AgeBand.UNDER_15),
        (15, AgeBand.FROM_15_TO_22),
        (21, AgeBand.FROM_15_TO_22),
        (22, AgeBand.FROM_22_TO_50),
        (50, AgeBand.FROM_22_TO_50),
        (51, AgeBand.OVER_50),
    ],
)
def test_age_bands(age, band):
    assert domain.age_band(age) is band


def test_age_counts_completed_years():
    assert domain.age_on(date(1966, 11, 24), date(2026, 11, 23)) == 59
    assert domain.age_on(date(1966, 11, 23), date(2026, 11, 23)) == 60


def test_a_sixty_year_old_is_eligible_for_legal_aid_as_elderly():
    assert domain.legal_aid_categories([], age=60) == [LegalAidCategory.ELDERLY]
    assert domain.legal_aid_categories([], age=59) == []
    declared = [LegalAidCategory.POOR_HOUSEHOLD, LegalAidCategory.ELDERLY]
    assert domain.legal_aid_categories(declared, age=None) == declared


# ------------------------------------------------------------------ segments


def segment(contracts=0, other_cases=0, last=None):
    return domain.segment_for(
        contracts=contracts,
        other_cases=other_cases,
        last_activity=last,
        at=AT,
        policy=domain.SegmentPolicy(loyal_contracts=3, lapsed_after=timedelta(days=365)),
    )


def test_segments_follow_cases_and_contracts():
    assert segment() is Segment.NEW
    assert segment(other_cases=1) is Segment.POTENTIAL
    assert segment(contracts=1, other_cases=1) is Segment.CUSTOMER
    assert segment(contracts=2) is Segment.CUSTOMER
    assert segment(contracts=3) is Segment.LOYAL


def test_a_customer_silent_for_a_year_comes_back_lapsed():
    assert segment(contracts=3, last=AT - timedelta(days=365)) is Segment.LAPSED
    assert segment(contracts=3, last=AT - timedelta(days=364)) is Segment.LOYAL


# ------------------------------------------------------------------ the decision


def decide(contact: domain.Contact, *, attached=None, profile=None, **overrides):
    reading = classify(contact.message)
    arguments = {
        "new_case_id": "case-new",
        "contact": contact,
        "reading": reading,
        "attached": attached,
        "attached_is_dispute": False,
        "profile": profile or domain.Profile(phones=("+84912345678",)),
        "case_documents": [],
        "contracts": 0,
        "other_cases": 0,
        "last_activity": None,
        "at": AT,
        "today": AT.date(),
        "policy": POLICY,
        **overrides,
    }
    return domain.decide_case(**arguments)


def test_a_first_contact_opens_a_new_case_for_a_new_customer():
    got = decide(domain.normalise_contact(received(documents=["dkkh.pdf"])))
    assert (got.case_id, got.new_case, got.segment) == ("case-new", True, Segment.NEW)
    assert got.legal_field is LegalField.FAMILY
    assert "documents" not in got.missing_items


def test_an_attached_follow_up_takes_the_cases_field_and_keeps_its_dispute():
    contact = domain.normalise_contact(
        received(kind="follow_up", message="em gửi thêm giấy tờ", documents=["a.pdf"])
    )
    case = open_case(LegalField.LAND, 2, "case-land")
    got = decide(contact, attached=case, attached_is_dispute=True, case_documents=["b.pdf"])
    assert (got.case_id, got.new_case, got.legal_field) == ("case-land", False, LegalField.LAND)
    assert got.is_dispute
    assert got.confidence == case.confidence


def test_birth_date_gives_age_band_birthday_and_elderly_legal_aid():
    profile = domain.Profile(phones=("+84912345678",), birth_date=date(1961, 4, 30))
    got = decide(domain.normalise_contact(received()), profile=profile)
    assert (got.age_band, got.birthday) == (AgeBand.OVER_50, "04-30")
    assert got.legal_aid
    assert got.legal_aid_categories == [LegalAidCategory.ELDERLY]


def test_channel_is_kept_on_the_contact():
    assert domain.normalise_contact(received(channel="email")).channel is Channel.EMAIL
