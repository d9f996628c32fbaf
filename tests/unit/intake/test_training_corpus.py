"""Shape of the intake classifier's training corpus (services/intake/data/corpus_*.jsonl).

Every line is one labelled message: known field and styles, booleans for the flags,
ids unique across all files, text in NFC and never repeated.
"""

import json
import unicodedata
from pathlib import Path

import pytest

from shared.events import LegalField

DATA = Path(__file__).parents[3] / "services" / "intake" / "data"
FILES = sorted(DATA.glob("corpus_*.jsonl"))
KEYS = {"id", "text", "legal_field", "also_accept", "is_dispute", "is_complaint", "styles"}
FIELDS = {field.value for field in LegalField}
STYLES = {
    "unaccented",
    "chat",
    "email",
    "one_liner",
    "southern",
    "northern",
    "english_mixed",
    "amounts",
    "no_keywords",
    "hard_negative",
    "plain",
}


def load_rows() -> list[tuple[str, int, dict]]:
    """Every corpus row with the file name and line number it came from."""
    rows = []
    for path in FILES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert line.strip(), f"{path.name}:{number} is blank"
            rows.append((path.name, number, json.loads(line)))
    return rows


ROWS = load_rows()


def test_there_is_a_corpus() -> None:
    assert FILES, f"no corpus_*.jsonl under {DATA}"


@pytest.mark.parametrize("name", [path.name for path in FILES])
def test_each_file_is_utf8_nfc(name: str) -> None:
    text = (DATA / name).read_text(encoding="utf-8")
    assert unicodedata.is_normalized("NFC", text)


def test_every_row_has_exactly_the_known_keys() -> None:
    bad = [(name, number) for name, number, row in ROWS if set(row) != KEYS]
    assert not bad


def test_labels_are_known_fields_and_never_repeat_the_main_one() -> None:
    for name, number, row in ROWS:
        where = f"{name}:{number}"
        assert row["legal_field"] in FIELDS, where
        assert isinstance(row["also_accept"], list), where
        assert set(row["also_accept"]) <= FIELDS, where
        assert row["legal_field"] not in row["also_accept"], where
        assert len(set(row["also_accept"])) == len(row["also_accept"]), where


def test_flags_are_booleans_and_styles_known() -> None:
    for name, number, row in ROWS:
        where = f"{name}:{number}"
        assert isinstance(row["is_dispute"], bool), where
        assert isinstance(row["is_complaint"], bool), where
        assert row["styles"], where
        assert set(row["styles"]) <= STYLES, where


def test_texts_are_non_empty_strings() -> None:
    for name, number, row in ROWS:
        assert isinstance(row["text"], str) and row["text"].strip(), f"{name}:{number}"


def test_ids_are_unique_across_files() -> None:
    ids = [row["id"] for _, _, row in ROWS]
    assert all(isinstance(i, str) and i for i in ids)
    assert len(ids) == len(set(ids)), sorted(i for i in set(ids) if ids.count(i) > 1)


def test_no_text_appears_twice() -> None:
    texts = [" ".join(row["text"].casefold().split()) for _, _, row in ROWS]
    assert len(texts) == len(set(texts)), sorted(t for t in set(texts) if texts.count(t) > 1)[:5]
