"""The classifier's bench row: measured from the newest model, named in the table."""

from bench import classifier
from bench.report import rows_from


def test_without_a_model_there_is_nothing_to_time(monkeypatch, tmp_path):
    monkeypatch.setenv("LEXCARE_INTAKE_MODEL_DIR", str(tmp_path))
    assert classifier.measure() is None


def test_the_table_shows_microseconds_per_message():
    rows = rows_from({"classifier": {"model_us": 420.0, "classify_us": 610.0}})
    assert [(r["section"], r["name"], r["value"], r["unit"]) for r in rows] == [
        ("classifier", "intake classifier: one message, model", 420.0, "µs"),
        ("classifier", "intake classifier: one message, model + lexicon flags", 610.0, "µs"),
    ]
