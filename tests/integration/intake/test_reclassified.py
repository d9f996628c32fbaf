"""Staff's correction over the real broker and database: intake loads its newest model,
republishes the case as a correction and keeps the text as a labelled example."""

from pathlib import Path

import pytest

from services.intake import model, models, training
from tests.integration.intake.test_intake_flow import contact, intake, send, staff_event

__all__ = ["intake"]  # the fixture, shared with the intake flow's tests

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[2] / "data" / "intake_corpus.jsonl"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a small model (the lexicon's corpus) and an older, other version."""
    directory = tmp_path_factory.mktemp("models")
    trained = model.train(training.read_examples([CORPUS]))
    models.save(trained.classifier, directory, report={"note": "old"})
    models.save(trained.classifier, directory, report={"note": "newest"})
    return directory


async def test_a_correction_republishes_the_case_and_becomes_a_labelled_example(intake, model_dir):
    kafka = await intake(intake_model_dir=str(model_dir))
    first = contact(
        customer={"name": "Lê Thị Hoa", "phone": "0912 345 678"},
        message="Em là Hoa, sđt 0912345678: cty sắp giải thể mà còn nợ lương e 3 tháng",
    )
    await send(kafka, first)
    [opened] = await kafka.events("case.classified", count=1)
    assert opened["correction"] is False
    assert "model" in opened["explanation"]  # the trained model decided, not the lexicon

    correction = staff_event(
        "case.reclassified",
        case_id=opened["case_id"],
        legal_field="civil_commercial",
        agent_id="care-03",
        reason="the customer lent the company money",
    )
    await kafka.send("case.reclassified", correction, key=opened["case_id"])
    again = (await kafka.events("case.classified", count=2))[1]
    assert again["correction"] is True and again["new_case"] is False
    assert (again["case_id"], again["legal_field"], again["needs_triage"]) == (
        opened["case_id"], "civil_commercial", False,
    )  # fmt: skip
    assert again["correlation_id"] == correction["event_id"]
    assert again["contact"] == opened["contact"]

    stored = await kafka.value(f"correction/{opened['case_id']}")
    assert stored is not None
    assert (stored["legal_field"], stored["previous_field"]) == (
        "civil_commercial", opened["legal_field"],
    )  # fmt: skip
    assert "giải thể" in stored["text"]
    assert "0912345678" not in stored["text"] and "Hoa" not in stored["text"]

    # What `python -m services.intake train` reads from the database: this example.
    [example] = training.corrections_as_examples(
        await training.stored_corrections(kafka.db, kafka.partitions)
    )
    assert (example.text, example.legal_field) == (stored["text"], "civil_commercial")
