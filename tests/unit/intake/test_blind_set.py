"""The frozen blind test set (services/intake/data/blind.jsonl) keeps the shape it was written with.

These checks look at the file only, never at a classifier: the set is for measuring, and
is never used to train or tune (services/intake/data/README.md).
"""

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from tests.unit.intake.corpus_format import FIELDS, KEYS, STYLES

BLIND_SET = Path(__file__).parents[3] / "services" / "intake" / "data" / "blind.jsonl"


def has_no_diacritics(text: str) -> bool:
    """True when the text carries no Vietnamese diacritic: no combining mark after NFD, no đ/Đ."""
    if "đ" in text or "Đ" in text:
        return False
    return not any(unicodedata.combining(char) for char in unicodedata.normalize("NFD", text))


def word_count(text: str) -> int:
    """Whitespace-separated words in a message."""
    return len(text.split())


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    lines = BLIND_SET.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_the_set_holds_at_least_300_messages(rows: list[dict]) -> None:
    assert len(rows) >= 300


def test_every_row_has_exactly_the_documented_fields(rows: list[dict]) -> None:
    for row in rows:
        assert set(row) == KEYS, row["id"]
        assert isinstance(row["text"], str) and row["text"].strip(), row["id"]
        assert isinstance(row["is_dispute"], bool), row["id"]
        assert isinstance(row["is_complaint"], bool), row["id"]


def test_labels_are_legal_fields_and_accepted_alternatives_differ_from_the_label(
    rows: list[dict],
) -> None:
    for row in rows:
        assert row["legal_field"] in FIELDS, row["id"]
        assert set(row["also_accept"]) <= FIELDS - {row["legal_field"]}, row["id"]
        assert len(row["also_accept"]) == len(set(row["also_accept"])), row["id"]


def test_two_label_messages_stay_at_most_a_tenth(rows: list[dict]) -> None:
    assert sum(1 for row in rows if row["also_accept"]) <= len(rows) // 10


def test_styles_are_known_and_never_empty(rows: list[dict]) -> None:
    for row in rows:
        assert row["styles"], row["id"]
        assert set(row["styles"]) <= STYLES, row["id"]


def test_ids_and_texts_are_unique(rows: list[dict]) -> None:
    assert len({row["id"] for row in rows}) == len(rows)
    assert len({row["text"] for row in rows}) == len(rows)


def test_texts_are_nfc(rows: list[dict]) -> None:
    for row in rows:
        assert unicodedata.normalize("NFC", row["text"]) == row["text"], row["id"]


def test_the_unaccented_style_matches_the_text(rows: list[dict]) -> None:
    for row in rows:
        assert ("unaccented" in row["styles"]) == has_no_diacritics(row["text"]), row["id"]


def test_at_least_40_percent_is_written_without_diacritics(rows: list[dict]) -> None:
    unaccented = sum(1 for row in rows if has_no_diacritics(row["text"]))
    assert unaccented / len(rows) >= 0.40


def test_one_liners_are_short_and_at_least_15_percent(rows: list[dict]) -> None:
    one_liners = [row for row in rows if "one_liner" in row["styles"]]
    assert all(word_count(row["text"]) <= 8 for row in one_liners)
    assert len(one_liners) / len(rows) >= 0.15


def test_long_emails_are_at_least_10_percent(rows: list[dict]) -> None:
    long_emails = [
        row for row in rows if "email" in row["styles"] and word_count(row["text"]) >= 60
    ]
    assert len(long_emails) / len(rows) >= 0.10


def test_every_field_has_at_least_22_messages_and_other_30(rows: list[dict]) -> None:
    counts = Counter(row["legal_field"] for row in rows)
    assert {field: counts[field] for field in FIELDS if counts[field] < 22} == {}
    assert counts["other"] >= 30


def normalised(text: str) -> str:
    """A message's text as compared across files: NFC, lower case, single spaces."""
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


def test_no_blind_message_is_also_in_a_labelled_corpus(rows: list[dict]) -> None:
    blind = {normalised(row["text"]) for row in rows}
    root = Path(__file__).parents[3]
    corpora = sorted(
        [
            *(root / "tests" / "data").glob("*.jsonl"),
            *(root / "services" / "intake" / "data").glob("corpus*.jsonl"),
        ]
    )
    shared = {
        corpus.name: sum(
            1
            for line in corpus.read_text(encoding="utf-8").splitlines()
            if line.strip() and normalised(json.loads(line).get("text", "")) in blind
        )
        for corpus in corpora
    }
    assert {name: count for name, count in shared.items() if count} == {}
