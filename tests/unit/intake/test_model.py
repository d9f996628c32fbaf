"""The trained classifier: compiled like scikit-learn, files that load without unpickling,
the triage threshold, retraining and the refusal of a worse model."""

import json
from pathlib import Path

import numpy as np
import pytest

from services.intake import model, models, training
from services.intake.app import load_lexicon
from services.intake.domain import Prediction, classify, without_identity
from shared.events import ContactKind, LegalField

DATA = Path(__file__).parents[2] / "data"
CORPUS = DATA / "intake_corpus.jsonl"
HOLDOUT = DATA / "intake_holdout.jsonl"


@pytest.fixture(scope="module")
def examples() -> list[model.Example]:
    return training.read_examples([CORPUS])


@pytest.fixture(scope="module")
def trained(examples) -> model.Trained:
    return model.train(examples)


def test_the_compiled_classifier_scores_exactly_as_the_fitted_pipeline(examples, trained):
    texts = [e.text for e in training.read_examples([HOLDOUT])]
    fitted = model.linear().fit([e.text for e in examples], [e.legal_field for e in examples])
    expected = fitted.decision_function(texts)
    got = np.array([trained.classifier.logits(t) for t in texts])
    assert np.abs(expected - got).max() < 1e-9


def test_a_saved_model_loads_as_the_same_classifier_and_the_newest_version_wins(trained, tmp_path):
    first = models.save(trained.classifier, tmp_path, report={})
    second = models.save(trained.classifier, tmp_path, report={"note": "again"})
    assert (first.name, second.name) == ("model-v0001.npz", "model-v0002.npz")
    loaded, meta = models.load_newest(tmp_path)
    assert meta["version"] == 2 and meta["report"] == {"note": "again"}
    for text in ("ly hon don phuong", "công ty nợ lương 3 tháng", "xin chào"):
        assert loaded.predict(text).legal_field == trained.classifier.predict(text).legal_field
        assert loaded.predict(text).probability == pytest.approx(
            trained.classifier.predict(text).probability, abs=1e-5
        )
    assert loaded.threshold == trained.classifier.threshold
    assert trained.classifier.dispute_coef is not None  # the corpus labels disputes
    for text in ("hàng xóm lấn chiếm đất nhà tôi", "thủ tục sang tên sổ đỏ"):
        assert loaded.predict(text).is_dispute == trained.classifier.predict(text).is_dispute


def test_no_model_file_is_said_so_and_a_pickled_array_is_never_loaded(tmp_path):
    with pytest.raises(models.NoModel):
        models.load_newest(tmp_path)
    evil = tmp_path / "model-v0001.npz"
    np.savez(evil, meta=np.array([{"not": "arrays"}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        models.load(evil)


def test_the_threshold_is_the_most_accurate_within_the_triage_cap():
    rows = [
        model.Example("a", LegalField.LAND),
        model.Example("b", LegalField.LAND),
        model.Example("c", LegalField.FAMILY),
        model.Example("d", LegalField.OTHER),
    ]
    predictions = [
        Prediction(LegalField.LAND, 0.9),
        Prediction(LegalField.LAND, 0.5),
        Prediction(LegalField.LAND, 0.4),  # wrong field, unsure: better triaged
        Prediction(LegalField.LAND, 0.3),  # not a legal question: triage is right
    ]
    loose = model.choose_threshold(rows, predictions, max_triage=1.0)
    assert (loose.threshold, loose.accuracy) == (0.41, 0.75)  # the middle of 0.31–0.50
    assert loose.precision == 1.0 and loose.triage_rate == pytest.approx(1 / 3)  # c triaged
    capped = model.choose_threshold(rows, predictions, max_triage=0.0)
    assert capped.triage_rate == 0.0 and capped.threshold <= 0.40  # c kept, d triaged


def test_below_the_threshold_the_case_is_other_and_needs_triage():
    lexicon = load_lexicon()
    sure = classify(
        message="tranh chấp đất", kind=ContactKind.INQUIRY, form_field=None, lexicon=lexicon,
        threshold=0.5, prediction=Prediction(LegalField.LAND, 0.8),
    )  # fmt: skip
    unsure = classify(
        message="tranh chấp đất", kind=ContactKind.INQUIRY, form_field=None, lexicon=lexicon,
        threshold=0.5, prediction=Prediction(LegalField.LAND, 0.45),
    )  # fmt: skip
    assert (sure.legal_field, sure.needs_triage, sure.confidence) == (LegalField.LAND, False, 0.8)
    assert sure.explanation is not None and sure.explanation.startswith("matched: ")
    assert (unsure.legal_field, unsure.needs_triage) == (LegalField.OTHER, True)
    assert unsure.is_dispute == sure.is_dispute  # the flags do not depend on the threshold


def test_a_dispute_is_read_by_the_lexicon_or_the_model():
    lexicon = load_lexicon()
    quiet = "chồng giấu tiền bán nhà chung"  # no dispute phrase of the lexicon

    def dispute(text: str, model_says: bool) -> bool:
        prediction = Prediction(LegalField.FAMILY, 0.9, is_dispute=model_says)
        return classify(
            message=text, kind=ContactKind.INQUIRY, form_field=None, lexicon=lexicon,
            threshold=0.5, prediction=prediction,
        ).is_dispute  # fmt: skip

    assert dispute(quiet, True) and not dispute(quiet, False)
    assert dispute("tranh chấp quyền nuôi con, muốn khởi kiện", False)  # the lexicon's


def test_trained_on_the_corpus_the_model_beats_the_lexicons_floor_on_the_holdout(trained):
    scores = model.evaluate(trained.classifier, training.read_examples([HOLDOUT]))
    assert scores.accuracy >= 0.75  # the lexicon's floor on the same messages (test_corpus)


def write(path: Path, rows: list[model.Example]) -> Path:
    lines = [json.dumps({"text": e.text, "legal_field": e.legal_field.value}) for e in rows]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_retraining_keeps_a_model_no_worse_and_refuses_a_worse_one(
    examples, trained, tmp_path, capsys
):
    per_field: dict[LegalField, list[model.Example]] = {}
    for e in examples:
        per_field.setdefault(e.legal_field, []).append(e)
    few = write(tmp_path / "few.jsonl", [e for rows in per_field.values() for e in rows[:4]])
    correction = _correction("cty giữ bằng đại học của e, nghỉ việc rồi ko trả", LegalField.LABOR)
    # No model yet: the first one is accepted, trained on the corpus and the corrections.
    code, said = training.run(
        corpus=[few], blind=HOLDOUT, model_dir=tmp_path, corrections=[correction]
    )
    assert code == 0 and said.endswith("model-v0001.npz")
    assert "1 corrections" in capsys.readouterr().out
    assert models.load_newest(tmp_path)[1]["report"]["corrections"] == 1
    # A better model is current now: the small corpus's model would be worse, refused.
    models.save(trained.classifier, tmp_path, report={})
    code, said = training.run(corpus=[few], blind=HOLDOUT, model_dir=tmp_path)
    assert code == 1 and said.startswith("refused: accuracy on the blind set would drop")
    assert [p.name for _, p in models.versions(tmp_path)] == ["model-v0001.npz", "model-v0002.npz"]
    printed = capsys.readouterr().out
    assert "before (" in printed and "after:" in printed


def _correction(text: str, legal_field: LegalField):
    from datetime import UTC, datetime

    from services.intake.state import Correction

    return Correction(
        case_id="case-1", text=text, legal_field=legal_field, previous_field=LegalField.OTHER,
        agent_id="care-1", corrected_at=datetime(2026, 11, 24, tzinfo=UTC),
    )  # fmt: skip


def test_a_labelled_example_keeps_no_identity():
    text = (
        "Tôi là Nguyễn Văn An, sđt 0912 345 678, mail an.nguyen@example.vn, CCCD 001099012345. "
        "An toàn lao động ở công ty kém, anh An bị tai nạn"
    )
    got = without_identity(text, names=["Nguyễn Văn An"])
    assert "0912" not in got and "example.vn" not in got and "001099012345" not in got
    assert "Nguyễn" not in got and "anh <name>" in got
    assert "toàn lao động" in got


def test_a_name_is_removed_whatever_its_case_and_a_text_without_it_is_left_as_it_is():
    shouted = without_identity("NGUYỄN VĂN AN gọi lại giúp tôi", names=["Nguyễn Văn An"])
    assert shouted == "<name> gọi lại giúp tôi"
    text = "Công ty nợ lương ba tháng, tôi muốn kiện"
    assert without_identity(text, names=["Trần Thị Bình"]) == text
