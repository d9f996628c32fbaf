"""Survey page tokens: sealed claims that open only unchanged and with the secret."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.survey_links import SurveyClaims, SurveyLinks

CLAIMS = SurveyClaims(
    survey_id="srv-0eac5c264781530c",
    case_id="case-7d1c2a40",
    channel="zalo",
    questions=("nps", "ces"),
    expires_at=datetime(2026, 11, 30, 3, 0, tzinfo=UTC),
)
LINKS = SurveyLinks("test-secret", "https://khaosat.example.vn/")


def test_a_token_opens_to_the_claims_it_seals_and_the_same_claims_give_the_same_link():
    token = LINKS.token_for(CLAIMS)
    assert LINKS.open(token) == CLAIMS
    assert LINKS.url_for(CLAIMS) == f"https://khaosat.example.vn/s/{token}"
    assert LINKS.token_for(CLAIMS) == token  # deterministic: the rule building it stays pure


def test_a_token_reveals_no_id():
    token = LINKS.token_for(CLAIMS)
    for secret_part in ("srv", "0eac5c26", "case", "7d1c2a40", "zalo"):
        assert secret_part not in token
    assert token.isascii() and all(c.isalnum() or c in "-_" for c in token)


def test_a_token_changed_anywhere_does_not_open():
    token = LINKS.token_for(CLAIMS)
    for i in range(len(token)):
        replacement = "A" if token[i] != "A" else "B"
        assert LINKS.open(token[:i] + replacement + token[i + 1 :]) is None
    assert LINKS.open(token[:-1]) is None
    assert LINKS.open(token + "A") is None


@pytest.mark.parametrize("token", ["", "abc", "%%%", "a" * 5000, "srv-0eac5c264781530c"])
def test_garbage_does_not_open(token):
    assert LINKS.open(token) is None


def test_a_token_made_with_another_secret_does_not_open():
    assert LINKS.open(SurveyLinks("other-secret").token_for(CLAIMS)) is None


def test_the_form_nonce_belongs_to_its_token_and_the_secret():
    token = LINKS.token_for(CLAIMS)
    nonce = LINKS.form_nonce(token)
    assert LINKS.nonce_matches(token, nonce)
    assert not LINKS.nonce_matches(token, "")
    other_survey = LINKS.token_for(replace(CLAIMS, survey_id="srv-1"))
    assert not LINKS.nonce_matches(other_survey, nonce)
    assert not SurveyLinks("other-secret").nonce_matches(token, nonce)


def test_a_survey_expires_after_its_deadline():
    assert not CLAIMS.expired(datetime(2026, 11, 30, 3, 0, tzinfo=UTC))
    assert CLAIMS.expired(datetime(2026, 11, 30, 3, 0, 1, tzinfo=UTC))
