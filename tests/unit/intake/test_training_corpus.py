"""The shape of the intake classifier's training corpora (services/intake/data/corpus_*.jsonl).

Every line is one labelled message: known fields and styles, ids unique across all files,
text in NFC and never repeated, so a model trained on them sees each example once.
"""

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from tests.unit.intake.corpus_format import FIELDS, KEYS, STYLES

DATA = Path(__file__).parents[3] / "services" / "intake" / "data"
FILES = sorted(DATA.glob("corpus_*.jsonl"))


def read_rows(path: Path) -> list[dict]:
    """The JSON objects of one corpus file, one per non-empty line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, dict]]:
    return [(path.name, row) for path in FILES for row in read_rows(path)]


def test_there_is_a_training_corpus():
    assert FILES, f"no corpus_*.jsonl in {DATA}"


def test_every_row_has_exactly_the_known_keys_and_types(rows):
    for name, row in rows:
        assert set(row) == KEYS, (name, row.get("id"))
        assert isinstance(row["id"], str) and row["id"], (name, row)
        assert isinstance(row["text"], str) and row["text"].strip(), (name, row["id"])
        assert isinstance(row["is_dispute"], bool), (name, row["id"])
        assert isinstance(row["is_complaint"], bool), (name, row["id"])


def test_fields_and_styles_are_known(rows):
    for name, row in rows:
        assert row["legal_field"] in FIELDS, (name, row["id"])
        assert set(row["also_accept"]) <= FIELDS, (name, row["id"])
        assert row["legal_field"] not in row["also_accept"], (name, row["id"])
        assert len(set(row["also_accept"])) == len(row["also_accept"]), (name, row["id"])
        assert row["styles"] and set(row["styles"]) <= STYLES, (name, row["id"])
        assert len(set(row["styles"])) == len(row["styles"]), (name, row["id"])


def test_plain_is_only_used_alone(rows):
    for name, row in rows:
        assert "plain" not in row["styles"] or row["styles"] == ["plain"], (name, row["id"])


def test_ids_are_unique_across_files(rows):
    counts = Counter(row["id"] for _, row in rows)
    assert [i for i, n in counts.items() if n > 1] == []


def test_texts_are_nfc(rows):
    for name, row in rows:
        assert unicodedata.normalize("NFC", row["text"]) == row["text"], (name, row["id"])


def test_no_text_is_repeated(rows):
    counts = Counter(" ".join(row["text"].lower().split()) for _, row in rows)
    assert [text for text, n in counts.items() if n > 1] == []


def test_other_is_never_a_dispute(rows):
    for name, row in rows:
        if row["legal_field"] == "other":
            assert not row["is_dispute"], (name, row["id"])
